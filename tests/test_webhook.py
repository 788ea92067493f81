"""Webhooks (drill_notify_url) against a real HTTP server on 127.0.0.1: Slack-compatible `text` plus
structured fields, retries with backoff on 5xx, no retry on 4xx, order kept, secrets never posted and the
URL (which carries its token) never in a message."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fixtures.config import ConfigError, DrillConfig
from layers.notify import Event
from layers.webhook import Backoff, WebhookError, WebhookSender, drill_payload, post_json, run_payload
from reports.audit import audit
from reports.frame import to_frame
from reports.result import DrillError
from tests import synthetic_history as synth
from tests.webhook_server import webhook_server

FAST = Backoff(attempts=4, first_wait=0.01, max_wait=0.02, timeout=5)


def test_a_post_is_retried_on_5xx_until_it_is_delivered() -> None:
    with webhook_server([503, 500]) as hook:
        assert post_json(hook.url, {"text": "hello", "n": 1}, FAST) == 200
    assert [status for _, status, _ in hook.requests] == [503, 500, 200]
    assert hook.delivered == [{"n": 1, "text": "hello"}]


def test_a_4xx_is_not_retried_and_the_error_names_only_the_host() -> None:
    with webhook_server([404]) as hook, pytest.raises(WebhookError) as failed:
        post_json(hook.url, {"text": "x"}, FAST)
    assert len(hook.requests) == 1
    assert str(failed.value) == "webhook to 127.0.0.1 failed: HTTP 404"
    assert "T0KEN" not in str(failed.value)


def test_every_attempt_failing_is_one_failure_after_the_attempts() -> None:
    with webhook_server([503] * 10) as hook, pytest.raises(WebhookError, match="HTTP 503"):
        post_json(hook.url, {"text": "x"}, FAST)
    assert len(hook.requests) == FAST.attempts


def test_backup_events_drill_and_run_verdicts_arrive_in_order_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "whSecretMarker9f3a1c"
    monkeypatch.setenv("DRILL_S3_US_EAST_SECRET_ACCESS_KEY", secret)
    passed = synth.result("total-loss", "process", 0)
    crashed = replace(synth.result("region-outage", "container", 0),
                      error=DrillError("recover", "RuntimeError", f"endpoint said {secret}"))  # fmt: skip
    with webhook_server([503]) as hook:
        sender = WebhookSender(hook.url, FAST)
        sender.send({"text": "backup", **Event(1, "failure", 1.0, {"key": secret}, f"denied {secret}").detail})
        sender.send(drill_payload(passed))
        sender.send(drill_payload(crashed))
        sender.send(run_payload(["run00"], [passed, crashed]))
        sender.flush()
    assert sender.failures == [] and sender.delivered == 4
    assert all(secret.encode() not in body for _, _, body in hook.requests)
    events = [p.get("event") for p in hook.delivered]
    assert events == [None, "drill.verdict", "drill.verdict", "run.verdict"]
    ok, bad, run = hook.delivered[1:]
    assert ok["verdict"] == "pass" and ok["text"].startswith("drill total-loss [process, 2MB] passed: RTO")
    assert bad["verdict"] == "error" and "CRASHED" in bad["text"] and "crashed in recover: RuntimeError" in bad["text"]
    assert run["verdict"] == "error" and run["counts"] == {"pass": 1, "fail": 0, "error": 1}
    assert run["not_passed"] == ["region-outage [container, 2MB] CRASHED"]
    assert json.dumps(run).count(hook.url) == 0


def test_a_bad_notify_url_is_named_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as bad:
        DrillConfig.from_values({"notify_url": "ftp://tok3nvalue@host/x"})
    assert "drill_notify_url is not an http(s) URL" in str(bad.value) and "tok3nvalue" not in str(bad.value)
    config = DrillConfig.from_values({"notify_url": "https://hooks.example/T0/secretpart"})
    assert config.notify_url.endswith("secretpart") and "secretpart" not in repr(config)


def test_the_audit_names_the_webhook_by_its_host_only() -> None:
    config = DrillConfig.from_values({"notify_url": "https://hooks.example/T0/secretpart"})
    frame = to_frame(synth.records(synth.history(1, scenarios=("total-loss",))))
    item = next(i for i in audit(frame, now=synth.T0, config=config).items if "notifications" in i.question)
    assert item.why.endswith("; webhook to hooks.example") and "secretpart" not in item.why


def test_a_dead_endpoint_gets_one_attempt_per_post_once_it_is_known_down() -> None:
    with webhook_server([503] * 20) as hook:
        sender = WebhookSender(hook.url, FAST)
        for n in range(5):
            sender.send({"text": f"backup {n}", "event": "backup.success"})
        sender.flush()
    assert len(hook.requests) == FAST.attempts + 4  # the first post retried, the rest tried once
    assert len(sender.failures) == 5 and sender.delivered == 0
    assert all(f == "backup.success: webhook to 127.0.0.1 failed: HTTP 503" for f in sender.failures)
