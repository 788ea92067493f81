"""A crashed drill is a failed drill: it leaves an `error` record (step reached, exception, secrets
redacted), shows in the summary, and a certificate of its run names it; a case that never recorded a
result at all is named too, from the run's manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.drillrun import ROOT, DrillRun, run_pytest

SECRET = "crashSecretMarker5f3a9c"


def _certify(history: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reports.cli", "certify", f"--history=file:{history}", f"--out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _sabotaged(tmp: Path, sabotage: str) -> DrillRun:
    return run_pytest(["drills/test_total_loss.py", "-p", "tests.sabotage", "--drill-backend=process"], tmp,
                      env={"DRILL_SABOTAGE": sabotage, "DRILL_SABOTAGE_SECRET": SECRET})  # fmt: skip


def test_a_drill_that_raises_in_a_step_is_recorded_as_error_and_not_certified(tmp_path: Path) -> None:
    run = _sabotaged(tmp_path, "total-loss-recover-crashes")
    assert run.returncode == 1 and "1 failed" in run.output, run.output[-3000:]
    assert len(run.history) == 1 and len(run.manifests) == 1, (run.history, run.manifests)
    record = run.history[0]
    assert record["verdict"] == "error", record
    assert record["error"]["phase"] == "recover" and record["error"]["type"] == "RuntimeError", record["error"]
    assert "restore tool crashed" in record["error"]["message"] and SECRET not in str(record), record["error"]
    assert record["backend"] == "process" and record["scale"] and record["machine"] and record["commit"]
    assert record["phases"]["detect"] > 0 and "provision" in record["phases"], record["phases"]
    assert record["case"] == "drills/test_total_loss.py::test_total_loss[process]"
    summary = run.output[run.output.index("disaster-recovery drills") :]
    assert "ERROR" in summary and "crashed in recover: RuntimeError" in summary, summary

    certified = _certify(tmp_path / "history.jsonl", tmp_path / "report")
    assert certified.returncode == 1, certified.stdout + certified.stderr
    assert "NOT CERTIFIED" in certified.stdout
    assert "drills/test_total_loss.py::test_total_loss[process] (total-loss, process): ERROR" in certified.stdout


def test_a_collected_case_that_left_no_record_fails_certification(tmp_path: Path) -> None:
    run = _sabotaged(tmp_path, "drill-setup-crashes")
    assert run.returncode == 1 and "1 error" in run.output, run.output[-3000:]
    assert run.history == [] and len(run.manifests) == 1, run.history
    assert run.manifests[0]["cases"] == [
        {"case": "drills/test_total_loss.py::test_total_loss[process]", "scenario": "total-loss", "backend": "process"}
    ]
    certified = _certify(tmp_path / "history.jsonl", tmp_path / "report")
    assert certified.returncode == 1, certified.stdout + certified.stderr
    assert "test_total_loss[process] (total-loss, process): collected in run" in certified.stdout
    assert "never recorded a result" in certified.stdout
