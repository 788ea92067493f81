"""Does the drill's application hold the write rate it asks for, and what takes it away? Side by side in one
run, per backend: the application (drill_writers connections through the service address, readers, the
health monitor) for `--seconds` with

- nothing else running, the service address a proxy process of its own (as in every drill);
- the same with the proxy inside the runner's process (its byte pumps sharing the GIL with the
  application: the way it was before);
- layer-1 page snapshots every drill_backup_interval, the replica synced in its own process (as the
  runner does: layers/replica_sync.py);
- the same with the replica synced inside the runner's process (libsql_experimental holds the GIL for the
  whole sync: the way it was before);
- page snapshots (own process) and layer-4 offsite copies (sealed and uploaded to the offsite region by
  the replicator thread in the runner, as region-outage drills run them);

and for each the acknowledged writes per second against the request, write latency p50/p99, and the longest
stall of a 2 ms ticker thread in the runner (a stall is every thread of the runner stopped: writers,
readers, proxy), and the CPU the runner, sqld (process backend) and the moto_servers used in the window
(% of one core).

    .venv/bin/python bench/load_held.py [--backends process,container] [--writers 4] [--rate 400] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import fixtures.traffic as traffic_module  # noqa: E402
import layers.snapshot as snapshot  # noqa: E402
from bench.procstat import cpu_seconds  # noqa: E402
from fixtures.config import DrillConfig  # noqa: E402
from fixtures.drill import Drill  # noqa: E402
from fixtures.service_proxy import ServiceProxy  # noqa: E402
from fixtures.session import DrillSession  # noqa: E402
from layers.offsite import OffsiteKey  # noqa: E402
from reports.text import text_table  # noqa: E402

MODES = (
    "application alone",
    "application alone, proxy in the runner",
    "page snapshots, sync in its own process",
    "page snapshots, sync in the runner",
    "page snapshots + offsite copies",
)


@dataclass(frozen=True)
class Row:
    backend: str
    mode: str
    requested: float
    achieved: float
    p50_ms: float
    p99_ms: float
    stall_ms: float
    backups: int
    cpu: dict[str, float]  # process -> % of one core over the window


class Ticker:
    """A thread that wakes every 2 ms; the longest gap it saw is how long the runner stood still."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.002):
            now = time.monotonic()
            self.longest, last = max(self.longest, now - last), now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sync_in_process(self: snapshot.PageSnapshots) -> int:
    """The old sync: libsql_experimental in the runner's own process."""
    import libsql_experimental

    conn = libsql_experimental.connect(str(self.replica), sync_url=self.server_url)
    try:
        conn.sync()
    finally:
        conn.close()
    return snapshot.replication_index(self.replica)


@contextmanager
def as_before(mode: str) -> Iterator[None]:
    """The runner as it was, for the modes that compare with it: the replica synced, or the service proxy
    run, inside the runner's own process."""
    with ExitStack() as stack:
        if mode == "page snapshots, sync in the runner":
            stack.enter_context(patch.object(snapshot.PageSnapshots, "sync", sync_in_process))
        if mode == "application alone, proxy in the runner":
            in_runner = lambda upstream, reaper=None: ServiceProxy(upstream)  # noqa: E731
            stack.enter_context(patch.object(traffic_module, "ServiceAddress", in_runner))
        yield


def _arm(drill: Drill, mode: str) -> None:
    if mode.startswith("application alone"):
        return
    drill.arm_backups("page").wait_for(1, 60)
    if mode == "page snapshots + offsite copies":
        drill.arm_offsite(OffsiteKey.generate()).wait_for(1, 60)


def _pids(session: DrillSession, drill: Drill) -> dict[str, int | None]:
    """The processes whose CPU the table shows (sqld: the process backend's only; a container's is not ours)."""
    moto = {f"moto {name}": r.server.pid if r.server else None for name, r in session.regions().items()}
    sqld = getattr(drill.primary, "pid", None) if drill.primary else None
    proxy = getattr(drill.traffic.proxy, "pid", None) if drill.traffic else None
    return {"runner": os.getpid(), "proxy": proxy, "sqld": sqld if isinstance(sqld, int) else None, **moto}


def measure(session: DrillSession, backend: str, mode: str, seconds: float) -> Row:
    drill = Drill(session, backend, f"bench-load-{MODES.index(mode)}")
    try:
        with as_before(mode):
            drill.start_primary()
            traffic = drill.start_workload()
            _arm(drill, mode)
            time.sleep(1.0)  # connections set up
            pids = _pids(session, drill)
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            acked, started = len(drill.ledger.acked()), time.time()
            with Ticker() as ticker:
                time.sleep(seconds)
            ended = time.time()
            cpu = {name: 100 * (after - before) / (ended - started) for name, pid in pids.items()
                   if (before := cpu_before[name]) is not None and (after := cpu_seconds(pid)) is not None}  # fmt: skip
            window = [w for w in drill.ledger.acked() if started <= w.started < ended]
            latencies = sorted(w.acked_at - w.started for w in window) or [0.0]
            return Row(backend, mode, traffic.load.rate, round((len(drill.ledger.acked()) - acked) / (ended - started), 1),
                       round(1000 * latencies[len(latencies) // 2], 1),
                       round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
                       round(1000 * ticker.longest, 1), drill.scheduler.succeeded if drill.scheduler else 0, cpu)  # fmt: skip
    finally:
        drill.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="process,container")
    parser.add_argument("--writers", default="4")
    parser.add_argument("--rate", default="400", help="writes per second over all writers")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    config = DrillConfig.from_values({"writers": args.writers, "writer_rate": args.rate, "readers": "2",
                                      "history": "file:.drills/bench-load-history.jsonl"})  # fmt: skip
    session = DrillSession(config, ROOT)
    try:
        rows = [measure(session, b, m, args.seconds) for b in args.backends.split(",") for m in MODES]
    finally:
        session.close()
    print("\n".join(text_table(["backend", "mode", "requested/s", "achieved/s", "held", "p50 ms", "p99 ms",
                      "longest stall ms", "backups", "CPU % of a core"],
                     [[r.backend, r.mode, f"{r.requested:g}", f"{r.achieved:g}", f"{r.achieved / r.requested:.0%}",
                       f"{r.p50_ms:g}", f"{r.p99_ms:g}", f"{r.stall_ms:g}", str(r.backups),
                       ", ".join(f"{k} {v:.0f}" for k, v in r.cpu.items())] for r in rows])))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
