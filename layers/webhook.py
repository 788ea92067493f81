"""Webhook notifications (setting drill_notify_url): JSON POSTs for layer-1/4 backup success and failure,
each drill's verdict and the run's verdict. Each payload has a Slack-compatible `text` and structured fields.

Posts go out in order from one thread per process (a slow or dead endpoint never delays a backup or a
drill), retried with exponential backoff (tenacity) on connection errors, timeouts, 429 and 5xx.
`flush()` waits for what is queued (the plugin calls it at the end of the run). Secrets of the
environment are masked in every payload (reports.redact), and the URL, which often is the secret (a Slack
webhook), is never put into a payload, a message or a log: failures name only its host."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlparse

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from layers.notify import Event, Notifier
from reports.redact import redact
from reports.result import DrillResult

ATTEMPTS, TIMEOUT, FLUSH_TIMEOUT = 5, 10.0, 120.0
LAYER_NAMES = {1: "layer-1 backup", 2: "layer-2 PITR", 4: "layer-4 offsite copy"}
VERDICT_WORDS = {"pass": "passed", "fail": "FAILED", "error": "CRASHED"}


class WebhookError(RuntimeError):
    """The endpoint refused a post for good (4xx other than 429), or every attempt failed."""


@dataclass(frozen=True)
class Backoff:
    attempts: int = ATTEMPTS
    first_wait: float = 0.5  # seconds; doubles per attempt
    max_wait: float = 8.0
    timeout: float = TIMEOUT


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError))


def post_json(url: str, payload: dict[str, Any], backoff: Backoff = Backoff()) -> int:
    """POST `payload` (secrets masked) as JSON; returns the HTTP status; raises WebhookError naming the host."""
    body = redact(json.dumps(payload, sort_keys=True, default=str)).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})

    def attempt() -> int:
        with urllib.request.urlopen(request, timeout=backoff.timeout) as response:
            return int(response.status)

    retrying = Retrying(stop=stop_after_attempt(backoff.attempts), reraise=True, retry=retry_if_exception(_retryable),
                         wait=wait_exponential(multiplier=backoff.first_wait, max=backoff.max_wait))  # fmt: skip
    try:
        return int(retrying(attempt))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        why = f"HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else type(exc).__name__
        raise WebhookError(f"webhook to {urlparse(url).hostname} failed: {why}") from None


def backup_payload(event: Event, source: str) -> dict[str, Any]:
    what = LAYER_NAMES.get(event.layer, f"layer-{event.layer}")
    ok = event.kind == "success"
    text = f"{what} {'succeeded' if ok else 'FAILED'} ({source})" + ("" if ok else f": {event.error}")
    return {"text": text, "event": f"backup.{event.kind}", "source": source, **asdict(event)}


def drill_payload(result: DrillResult) -> dict[str, Any]:
    label = f"{result.scenario} [{result.backend}, {result.scale}]"
    text = f"drill {label} {VERDICT_WORDS[result.verdict]}: RTO {result.rto_seconds:.2f}s " \
           f"(objective {result.objectives.rto_seconds:g}s), RPO {result.rpo_seconds:.2f}s " \
           f"(objective {result.objectives.rpo_seconds:g}s)"  # fmt: skip
    reasons = [result.error.describe()] if result.error else list(result.failures)
    return {"text": text + "".join(f"\n- {r}" for r in reasons[:5]), "event": "drill.verdict",
            "verdict": result.verdict, "run_id": result.run_id, "case": result.case or result.drill,
            "scenario": result.scenario, "backend": result.backend, "scale": result.scale, "layers": result.layers,
            "rto_seconds": result.rto_seconds, "rpo_seconds": result.rpo_seconds, "rpo_writes": result.rpo_writes,
            "objectives": asdict(result.objectives), "reasons": reasons, "started_at": result.started_at}  # fmt: skip


def run_payload(run_ids: list[str], results: list[DrillResult]) -> dict[str, Any]:
    counts = {v: sum(1 for r in results if r.verdict == v) for v in VERDICT_WORDS}
    verdict = "pass" if counts["pass"] == len(results) else "error" if counts["error"] else "fail"
    bad = [f"{r.scenario} [{r.backend}, {r.scale}] {VERDICT_WORDS[r.verdict]}" for r in results if r.verdict != "pass"]
    text = (f"drill run {', '.join(run_ids)} {VERDICT_WORDS[verdict]}: {len(results)} drill(s), {counts['pass']} "
            f"passed, {counts['fail']} failed, {counts['error']} crashed") + "".join(f"\n- {b}" for b in bad)  # fmt: skip
    return {"text": text, "event": "run.verdict", "verdict": verdict, "run_ids": run_ids, "counts": counts,
            "not_passed": bad}  # fmt: skip


class WebhookSender:
    """One ordered queue of posts and the thread that delivers them; failures are kept in `failures`.
    While the endpoint is down (the last post failed for good) each post gets one attempt, so a dead
    endpoint costs a run seconds, not a backoff per queued backup event."""

    def __init__(self, url: str, backoff: Backoff = Backoff()) -> None:
        self.url, self.backoff = url, backoff
        self.failures: list[str] = []
        self.delivered = 0
        self._down = False
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._deliver, name="drill-webhook", daemon=True).start()

    def send(self, payload: dict[str, Any]) -> None:
        self._queue.put(payload)

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Wait until every queued payload was delivered or given up on, at most `timeout` seconds (what
        is left then is counted in `failures`)."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.failures.append(f"{self._queue.unfinished_tasks} post(s) still queued after {timeout:g}s")
                    return
                self._queue.all_tasks_done.wait(left)

    def _deliver(self) -> None:
        while True:
            payload = self._queue.get()
            try:
                post_json(self.url, payload, replace(self.backoff, attempts=1) if self._down else self.backoff)
                self.delivered += 1
                self._down = False
            except WebhookError as exc:
                self.failures.append(f"{payload.get('event')}: {exc}")
                self._down = True
            finally:
                self._queue.task_done()


_SENDERS: dict[str, WebhookSender] = {}
_LOCK = threading.Lock()


def sender_for(url: str) -> WebhookSender:
    """The process's sender for `url` (one queue, so drill and run verdicts arrive in order)."""
    with _LOCK:
        if url not in _SENDERS:
            _SENDERS[url] = WebhookSender(url)
        return _SENDERS[url]


def webhook_notifier(url: str, source: str) -> Notifier:
    """A layer Notifier posting backup success and failure (not retention) from `source` (the drill)."""
    sender = sender_for(url)

    def notify(event: Event) -> None:
        if event.kind in ("success", "failure"):
            sender.send(backup_payload(event, source))

    return notify


def flush_all() -> list[str]:
    """Deliver what every sender queued; returns their failures."""
    with _LOCK:
        senders = list(_SENDERS.values())
    for sender in senders:
        sender.flush()
    return [f for s in senders for f in s.failures]
