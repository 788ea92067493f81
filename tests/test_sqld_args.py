"""drill_sqld_args: the team's own sqld flags reach every drill server and are recorded with the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drillrun import run_pytest


@pytest.mark.parametrize("backend", ["process", "container"])
def test_the_teams_sqld_flags_reach_the_servers_and_the_record(tmp_path: Path, backend: str) -> None:
    run = run_pytest(["drills/test_total_loss.py", f"--drill-backend={backend}",
                      "--drill-sqld-args=--checkpoint-interval-s 60"], tmp_path)  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    (record,) = run.history
    assert record["details"]["sqld_args"] == ["--checkpoint-interval-s", "60"]


def test_a_flag_sqld_refuses_crashes_the_drill_with_sqlds_reason(tmp_path: Path) -> None:
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=process", "--drill-sqld-args=--no-such-flag"],
                     tmp_path)  # fmt: skip
    assert run.returncode == 1, run.output[-3000:]
    (record,) = run.history
    assert record["verdict"] == "error" and "--no-such-flag" in record["error"]["message"], record["error"]
