"""Nothing is left running after a drill session: not after Ctrl-C or SIGTERM in the middle of a drill,
and what a SIGKILLed run left behind is ended by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures.reaper import labelled_containers
from tests.drillrun import ROOT


def _drill_processes(marker: str) -> list[int]:
    """Live sqld / moto_server processes whose command line mentions this run's artifacts folder."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and Path(cmd.split(" ", 1)[0]).name in ("sqld", "moto_server"):
                pids.append(int(proc.name))
    return pids


def _labelled_containers(marker: str) -> list[str]:
    """The drill containers mounting a folder under `marker` (this test's own)."""
    return labelled_containers(
        "drill-runner=1", lambda c: any(marker in m.get("Source", "") for m in c.attrs.get("Mounts", []))
    )


def _start_drill(tmp_path: Path, backend: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "drills/test_total_loss.py",
         f"--drill-backend={backend}", f"--drill-artifacts={tmp_path}/artifacts",
         f"--drill-history=file:{tmp_path}/history.jsonl"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_servers(tmp_path: Path, backend: str, timeout: float = 120) -> None:
    marker = str(tmp_path / "artifacts")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _labelled_containers(marker) if backend == "container" else _drill_processes(marker)
        if found:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {backend} server of the drill appeared within {timeout}s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("backend", ["process", "container"])
def test_interrupted_drill_leaves_nothing_running(tmp_path: Path, backend: str, sig: signal.Signals) -> None:
    proc = _start_drill(tmp_path, backend)
    try:
        _wait_for_servers(tmp_path, backend)
        os.kill(proc.pid, sig)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0, output[-2000:]
    marker = str(tmp_path / "artifacts")
    assert _drill_processes(marker) == [], output[-2000:]
    assert _labelled_containers(marker) == []


@pytest.mark.parametrize("backend", ["process", "container"])
def test_next_run_ends_what_a_killed_run_left(tmp_path: Path, backend: str) -> None:
    proc = _start_drill(tmp_path, backend)
    _wait_for_servers(tmp_path, backend)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner dies; its servers (own sessions) live on
    proc.wait()
    marker = str(tmp_path / "artifacts")
    leftovers = _labelled_containers(marker) if backend == "container" else _drill_processes(marker)
    assert leftovers, "SIGKILL should have left the drill's servers running (test premise)"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "drills"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # Any later run of this checkout sweeps it: under xdist another worker's drill run may have been first.
    killed_session = list((ROOT / ".drills" / "run").glob(f"{proc.pid}-*"))
    assert "ended leftovers" in done.stdout or not killed_session, done.stdout[-2000:]
    assert _drill_processes(marker) == []
    assert _labelled_containers(marker) == []
