"""The reaper finds what a killed run started even when the run died before recording it: a process by
the session named in its environment (a real `sleep` here; the drills' sqld, moto and key service carry it
the same way)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from fixtures.reaper import SESSION_ENV, Reaper, tagged_processes

DEAD_OWNER = 2**22 + 12345  # above pid_max on Linux: no process has it


def _unrecorded_child_of_a_dead_session(root: Path, session: str) -> subprocess.Popen[bytes]:
    (root / session).mkdir(parents=True)
    (root / session / "owner").write_text(str(DEAD_OWNER))  # the run that started it is gone
    return subprocess.Popen(["sleep", "60"], env={**os.environ, SESSION_ENV: session}, start_new_session=True)


def test_a_process_the_killed_run_never_recorded_is_ended_by_the_next_run(tmp_path: Path) -> None:
    child = _unrecorded_child_of_a_dead_session(tmp_path, "4242-deadbeef")
    try:
        assert tagged_processes("4242-deadbeef") == [child.pid]
        assert not list((tmp_path / "4242-deadbeef").glob("pid-*")), "premise: nothing recorded"
        swept = Reaper(tmp_path).sweep_stale()
        assert "4242-deadbeef" in swept
        deadline = time.monotonic() + 10
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.returncode is not None, "the tagged process must be ended"
        assert not (tmp_path / "4242-deadbeef").exists()
    finally:
        if child.poll() is None:
            child.kill()


def test_a_live_session_and_untagged_processes_are_left_alone(tmp_path: Path) -> None:
    mine = Reaper(tmp_path)
    child = subprocess.Popen(["sleep", "60"], env={**os.environ, **mine.env}, start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert Reaper(tmp_path).sweep_stale() == []  # its owner (this process) is alive
        time.sleep(0.2)
        assert child.poll() is None and other.poll() is None
        mine.reap()  # the session's own end: its tagged process goes, the untagged one stays
        child.wait(timeout=10)
        assert other.poll() is None
    finally:
        for proc in (child, other):
            if proc.poll() is None:
                proc.kill()
