"""Wall time of the whole drill suite (`pytest drills/`) serially and with pytest-xdist workers, measured
one after the other in one run, with a check that parallel workers stayed isolated: every drill case left
exactly one whole history record, and each worker wrote under its own run id.

    .venv/bin/python bench/suite_time.py --workers 1,2 [--backend process] [--scale 2MB] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from fixtures.config import ConfigError, parse_backends, parse_scale  # noqa: E402
from reports.text import text_table  # noqa: E402

_COUNT = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


@dataclass(frozen=True)
class SuiteRun:
    workers: int
    backend: str
    scale: str
    seconds: float
    passed: int
    failed: int  # failed + errors
    records: int  # history records the run appended (a property drill appends one per example)
    drills: int  # distinct drill ids among them
    run_ids: int  # distinct run ids among them (one per pytest process that ran drills)
    exit_code: int
    failures: tuple[str, ...] = ()  # "scenario [backend]: what failed" of each result that did not pass

    @property
    def isolated(self) -> bool:
        """No drill recorded twice or lost to a clobbered append, and no more run ids than worker processes."""
        return self.records == self.drills and self.run_ids <= self.workers


def read_history(path: Path) -> list[dict[str, object]]:
    """Every line must be one whole JSON record (a torn or interleaved append fails here)."""
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise RuntimeError(
                f"{path}:{n} is not one whole JSON record ({exc}): parallel appends interleaved"
            ) from None
    return records


def run_suite(workers: int, backend: str, scale: str, workdir: Path, extra: list[str]) -> SuiteRun:
    history = workdir / f"history-{backend}-{scale}-{workers}.jsonl"
    history.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "drills", "-q", "-p", "no:cacheprovider",
               f"--drill-backend={backend}", f"--drill-scale={scale}", f"--drill-history=file:{history}",
               *(["-n", str(workers)] if workers > 1 else ["-p", "no:xdist"]), *extra]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=6 * 3600)
    seconds = time.monotonic() - started
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts: dict[str, int] = {}
    for number, what in _COUNT.findall(tail):
        counts[what] = counts.get(what, 0) + int(number)
    if not counts:
        raise RuntimeError(
            f"pytest printed no result line (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    records = [r for r in read_history(history) if r.get("kind") != "manifest"]  # drill results only
    return SuiteRun(workers, backend, scale, seconds, counts.get("passed", 0),
                    counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0),
                    len(records), len({r.get("drill") for r in records}), len({r.get("run_id") for r in records}),
                    proc.returncode, tuple(_failure(r) for r in records if r.get("verdict") != "pass"))  # fmt: skip


def _failure(record: dict[str, object]) -> str:
    why = record.get("failures") or [record.get("error")]
    text = "; ".join(map(str, why)) if isinstance(why, list) else str(why)
    return f"{record.get('scenario')} [{record.get('backend')}]: {text[:400]}"


def table(runs: list[SuiteRun]) -> list[str]:
    """Speed-up is against the serial run of the same backend and scale; `isolated` also needs the same
    number of history records as that serial run."""
    serial = {(r.backend, r.scale): r for r in runs if r.workers == 1}
    head = ("workers", "backend", "scale", "wall s", "speed-up", "passed", "failed", "records", "run ids", "isolated")
    body = [
        (str(r.workers), r.backend, r.scale, f"{r.seconds:.1f}",
         f"{serial[(r.backend, r.scale)].seconds / r.seconds:.2f}x" if (r.backend, r.scale) in serial else "-",
         str(r.passed), str(r.failed), str(r.records), str(r.run_ids), "yes" if isolated(r, serial) else "NO")
        for r in runs
    ]  # fmt: skip
    return text_table(head, body)


def isolated(run: SuiteRun, serial: dict[tuple[str, str], SuiteRun]) -> bool:
    alone = serial.get((run.backend, run.scale))
    return run.isolated and (alone is None or alone.records == run.records)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to time, e.g. 1,2 (1 = no xdist)")
    parser.add_argument("--backend", default="process", help="drill backend(s), e.g. process or container,process")
    parser.add_argument("--scale", default="2MB", help="drill scale, e.g. 2MB or 100MB")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".drills" / "bench", help="where run histories go")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --), e.g. -k total_loss")
    args = parser.parse_args(argv)
    try:
        args.worker_list = [int(w) for w in args.workers.split(",") if w.strip()]
        parse_scale(args.scale)
        parse_backends(args.backend)
    except ValueError:
        parser.error(f"--workers={args.workers!r}: use whole numbers separated by commas, e.g. 1,2")
    except ConfigError as exc:
        parser.error(str(exc))
    if not args.worker_list or min(args.worker_list) < 1:
        parser.error(f"--workers={args.workers!r}: each count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> list[SuiteRun]:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"load before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="suite-") as tmp:
        for workers in args.worker_list:
            run = run_suite(workers, args.backend, args.scale, Path(tmp), args.pytest_args)
            runs.append(run)
            print("\n".join(table([run])[2:] + [f"  {workers} worker(s): {f}" for f in run.failures]), flush=True)
    print()
    print("\n".join(table(runs)))
    load = os.getloadavg()
    print(f"load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return runs


def all_good(runs: list[SuiteRun]) -> bool:
    serial = {(r.backend, r.scale): r for r in runs if r.workers == 1}
    return all(r.exit_code == 0 and isolated(r, serial) for r in runs)


if __name__ == "__main__":
    runs = main()
    sys.exit(0 if all_good(runs) else 1)
