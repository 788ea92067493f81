"""Soak: drills back to back in one pytest process for N minutes, against two moto_server regions that
outlive the drills (so leftover buckets can be counted), then one table: drills run and passed, writes
acknowledged, writes lost beyond each drill's RPO objective (must be 0), processes, containers and
buckets left behind (must be 0), and the runner's RSS growth.

    .venv/bin/python bench/soak.py --minutes 2 [--backend process] [-- -k "total_loss or region_outage"]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from reports.text import text_table  # noqa: E402

SAMPLE_SECONDS = 2.0


@dataclass(frozen=True)
class SoakRun:
    minutes: float
    backend: str
    drills: int
    passed: int
    acked_writes: int
    lost_beyond_rpo: int
    leaked_processes: int
    leaked_containers: int
    leaked_buckets: int
    rss_first_mb: float
    rss_last_mb: float
    exit_code: int

    @property
    def good(self) -> bool:
        leaks = self.leaked_processes + self.leaked_containers + self.leaked_buckets
        return self.drills > 0 and self.passed == self.drills and self.lost_beyond_rpo == 0 and leaks == 0


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _lost_beyond_rpo(record: dict[str, object]) -> int:
    """A drill that missed its RPO objective lost writes beyond it: all of them count."""
    objectives = record.get("objectives") or {}
    assert isinstance(objectives, dict)
    over = float(record.get("rpo_seconds") or 0) > float(objectives.get("rpo_seconds") or 0)  # type: ignore[arg-type]
    limit = objectives.get("rpo_writes")
    over = over or (limit is not None and int(record.get("rpo_writes") or 0) > int(limit))  # type: ignore[call-overload]
    return int(record.get("rpo_writes") or 0) if over else 0  # type: ignore[call-overload]


def _leaked_processes(artifacts: Path) -> int:
    """Processes still running with the soak's artifacts folder on their command line (sqld, moto)."""
    count = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and proc.name != str(os.getpid()):
            try:
                count += str(artifacts) in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return count


def _leaked_containers() -> int:
    from fixtures.engine import find_engine

    engine = find_engine()
    if engine is None:
        return 0
    client = engine.client()
    try:
        return len(client.containers.list(all=True, filters={"label": "drill-runner.server"}))
    finally:
        client.close()


def _drive(command: list[str], env: dict[str, str]) -> tuple[int, list[float]]:
    """Run the soak's pytest, sampling its RSS; (exit code, RSS samples in MB)."""
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[float] = []
    while proc.poll() is None:
        rss = _rss_mb(proc.pid)
        if rss is not None:
            samples.append(rss)
        time.sleep(SAMPLE_SECONDS)
    return proc.returncode, samples


def soak(minutes: float, backend: str, workdir: Path, extra: list[str]) -> SoakRun:
    """The drills over and over in one pytest process on the runner's own regions (so region outages run
    too); the soak plugin counts the drill buckets those regions still hold when the run ends."""
    history, artifacts, buckets = workdir / "history.jsonl", workdir / "artifacts", workdir / "buckets-left.txt"
    command = [sys.executable, "-m", "pytest", "drills", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "-p", "bench.soak_plugin", f"--soak-minutes={minutes}", f"--soak-buckets-file={buckets}",
               f"--drill-backend={backend}", f"--drill-history=file:{history}", f"--drill-artifacts={artifacts}",
               *extra]  # fmt: skip
    code, rss = _drive(command, dict(os.environ))
    records = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    results = [r for r in records if r.get("kind", "drill") == "drill"]
    left = int(buckets.read_text()) if buckets.exists() else -1  # -1: the plugin never counted (the run broke)
    return SoakRun(minutes, backend, len(results), sum(1 for r in results if r.get("verdict") == "pass"),
                   sum(int(r.get("acked_writes") or 0) for r in results), sum(_lost_beyond_rpo(r) for r in results),
                   _leaked_processes(artifacts), _leaked_containers() if backend == "container" else 0, left,
                   round(rss[min(len(rss) - 1, 15)] if rss else 0.0, 1), round(rss[-1] if rss else 0.0, 1), code)  # fmt: skip


def table(run: SoakRun) -> list[str]:
    head = ("minutes", "backend", "drills", "passed", "writes acked", "lost beyond RPO", "processes left",
            "containers left", "buckets left", "RSS MB (30 s -> end)")  # fmt: skip
    row = (f"{run.minutes:g}", run.backend, str(run.drills), str(run.passed), str(run.acked_writes),
           str(run.lost_beyond_rpo), str(run.leaked_processes), str(run.leaked_containers), str(run.leaked_buckets),
           f"{run.rss_first_mb:g} -> {run.rss_last_mb:g}")  # fmt: skip
    return text_table(head, [row])


def main(argv: list[str] | None = None) -> SoakRun:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--backend", default="process", choices=("process", "container"))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="after --: pytest arguments (e.g. -k total_loss)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="drill-soak-"))
    run = soak(args.minutes, args.backend, workdir, args.extra)
    for line in table(run):
        print(line)
    print(f"history: {workdir / 'history.jsonl'}   verdict: {'ok' if run.good else 'NOT OK'}")
    return run


if __name__ == "__main__":
    sys.exit(0 if main().good else 1)
