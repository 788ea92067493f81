"""Does this sqld stall or lock up its writers under concurrent writer connections? sqld 0.24.32 does: a
waiter that gets SQLITE_BUSY during another connection's autocheckpoint leaves its entry in the write
queue, the lock is later handed to it after it has gone, and every other writer and checkpoint spins on it
(README, "Load"). Each try: a fresh sqld, `--writers` connections each writing rows of 8-32 KB (so
autocheckpoints come often) with a fresh Hrana stream per transaction, as libsql-client does, for
`--seconds`; then the writers stop and the table says whether sqld still answers: an admin checkpoint and a
new write within 5 s (neither: STUCK), its CPU while nobody asks it anything (high after many writes: the
replication log is compacted), the longest time no write was acknowledged (1 s or more: stalled).

    .venv/bin/python bench/sqld_write_lock.py [--tries 4] [--writers 8] [--seconds 20] [--sqld-args "..."]

Run it against a new sqld (`--sqld-binary`) to see whether the bug is still there."""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from bench.procstat import cpu_seconds  # noqa: E402
from fixtures.binary import sqld_binary  # noqa: E402
from fixtures.hrana import HranaError, HranaSession  # noqa: E402
from fixtures.sqld import SqldSpec  # noqa: E402
from fixtures.sqld_process import ProcessSqld  # noqa: E402
from reports.text import text_table  # noqa: E402

ANSWER = 5.0  # seconds sqld has to answer a probe
STALL = 1.0  # seconds without an acknowledged write that count as a stall (sqld 0.24.32: its 5 s TXN_TIMEOUT)


@dataclass
class Load:
    acked: list[float]
    busy: int = 0
    failed: int = 0


def _write(url: str, load: Load, lock: threading.Lock) -> None:
    with HranaSession(url, timeout=ANSWER) as stream:  # a fresh stream per transaction
        try:
            stream.execute("INSERT INTO t(b) VALUES (randomblob(?))", [random.randint(8_000, 32_000)])
        except HranaError as exc:
            with lock:
                load.busy += "BUSY" in str(exc.code)
                load.failed += "BUSY" not in str(exc.code)
            return
        except requests.RequestException:
            with lock:
                load.failed += 1
            return
    with lock:
        load.acked.append(time.monotonic())


def _writer(url: str, load: Load, lock: threading.Lock, stop_at: float) -> None:
    while time.monotonic() < stop_at:
        _write(url, load, lock)


def _probe(server: ProcessSqld) -> tuple[str, str, float]:
    """(admin checkpoint, a new write, sqld's CPU % over 2 s) once the writers have stopped."""
    try:
        status = requests.post(f"{server.admin_url}/v1/namespaces/default/checkpoint", timeout=ANSWER).status_code
        checkpoint = f"HTTP {status}"
    except requests.RequestException as exc:
        checkpoint = type(exc).__name__
    before = cpu_seconds(server.pid) or 0.0
    time.sleep(2.0)
    cpu = 50 * ((cpu_seconds(server.pid) or 0.0) - before)
    try:
        with HranaSession(server.http_url, timeout=ANSWER) as stream:
            stream.execute("INSERT INTO t(b) VALUES (x'00')")
        write = "acknowledged"
    except (HranaError, requests.RequestException) as exc:
        write = type(exc).__name__
    return checkpoint, write, cpu


def one_try(n: int, args: argparse.Namespace, workdir: Path) -> list[str]:
    folder = workdir / f"try-{n}"
    spec = SqldSpec(f"try-{n}", folder, folder.with_suffix(".log"), {}, tuple(shlex.split(args.sqld_args)))
    server = ProcessSqld(spec, binary=str(sqld_binary(args.sqld_binary or None)))
    server.start()
    try:
        with HranaSession(server.http_url) as setup:
            setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
        load, lock, stop_at = Load([]), threading.Lock(), time.monotonic() + args.seconds
        writers = [threading.Thread(target=_writer, args=(server.http_url, load, lock, stop_at))
                   for _ in range(args.writers)]  # fmt: skip
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        checkpoint, write, cpu = _probe(server)
        stalled = max((b - a for a, b in zip(load.acked, load.acked[1:], strict=False)), default=args.seconds)
        stuck = checkpoint != "HTTP 200" or write != "acknowledged"
        verdict = "STUCK" if stuck else "stalled" if stalled >= STALL else "ok"
        return [str(n + 1), str(args.writers), f"{len(load.acked) / args.seconds:.0f}", str(load.busy),
                str(load.failed), f"{stalled:.2f}", checkpoint, write, f"{cpu:.0f}", verdict]  # fmt: skip
    finally:
        server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=4)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sqld-args", default="", help='extra sqld flags, e.g. "--checkpoint-interval-s 2"')
    parser.add_argument("--sqld-binary", default="")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sqld-write-lock-") as tmp:
        rows = [one_try(n, args, Path(tmp)) for n in range(args.tries)]
    print("\n".join(text_table(["try", "writers", "writes/s", "busy", "failed", "longest stall s",
                                "checkpoint after", "write after", "idle CPU %", "verdict"], rows)))  # fmt: skip
    print(f"stuck: {sum(r[-1] == 'STUCK' for r in rows)}, stalled: {sum(r[-1] == 'stalled' for r in rows)} "
          f"of {len(rows)} tries")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
