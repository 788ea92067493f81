"""One run id across a CI matrix (drill_run_id): several runners append their manifests and results to one
history (a file, or s3://), and `certify --run ID` certifies the union of what they collected and recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.config import ConfigError, DrillConfig
from fixtures.session import DrillSession
from reports.certify import CERTIFIED, NOT_CERTIFIED, Certificate, certify
from reports.history import FileHistory, History, S3History
from reports.manifest import ExpectedCase, RunManifest
from reports.render import load_history
from tests import synthetic_history as synth
from tests.drillrun import ROOT, run_pytest

RUN = "2026-12-monthly-4711"
# each runner of the matrix drills some scenarios (one backend each)
RUNNERS = {"runner-a": ("total-loss", "table-corruption-page"), "runner-b": ("row-deletion-rewind", "region-outage")}


def _append_runner(history: History, runner: str, scenarios: tuple[str, ...], *, skip: str = "") -> None:
    results = [replace(synth.result(s, "process", 0), run_id=RUN, case=f"drills/test_{s}.py::test[process]",
                       machine={"node": runner}) for s in scenarios]  # fmt: skip
    cases = tuple(ExpectedCase(r.case, r.scenario, "process") for r in results)
    history.append(RunManifest(RUN, results[0].started_at, cases, {"node": runner}, {}).to_dict())
    for r in results:
        if r.scenario != skip:
            history.append(r.to_dict())


def _matrix(history: History, *, skip: str = "") -> None:
    for runner, scenarios in RUNNERS.items():
        _append_runner(history, runner, scenarios, skip=skip)
    for record in synth.records(synth.history(1)):  # an unrelated earlier run in the same history
        history.append(record)


def _cli_certify(uri: str, out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports.cli", "certify", "--history", uri, "--run", RUN, "--out",
                           str(out)], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def _certify(uri: str, out: Path) -> tuple[Certificate, subprocess.CompletedProcess[str]]:
    loaded = load_history(uri, manifests_suffice=True)
    return certify(loaded.frame, [RUN], manifests=loaded.manifests), _cli_certify(uri, out)


def test_the_union_of_every_runner_is_certified_in_a_file_history(tmp_path: Path) -> None:
    history = FileHistory(tmp_path / "h.jsonl")
    _matrix(history)
    cert, done = _certify(f"file:{history.path}", tmp_path / "cert")
    assert cert.verdict == CERTIFIED and [v.verdict for v in cert.layers] == [CERTIFIED] * 4
    assert {s.scenario for s in cert.scenarios} == {s for ss in RUNNERS.values() for s in ss}
    assert done.returncode == 0 and done.stdout.strip().endswith("CERTIFIED"), done.stdout + done.stderr


def test_a_case_one_runner_never_recorded_is_named(tmp_path: Path) -> None:
    history = FileHistory(tmp_path / "h.jsonl")
    _matrix(history, skip="region-outage")
    cert, done = _certify(f"file:{history.path}", tmp_path / "cert")
    assert cert.verdict == NOT_CERTIFIED
    assert any("drills/test_region-outage.py::test[process]" in c and "never recorded" in c
               for c in cert.cases_not_passed)  # fmt: skip
    assert done.returncode == 1 and "never recorded" in done.stdout


def test_the_union_is_certified_in_an_s3_history(moto_region, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = moto_region.new_bucket("matrix", "history")
    _matrix(S3History(bucket, "fleet/drills", moto_region.client()))
    endpoint = moto_region.endpoint
    env = {"DRILL_HISTORY_S3_ENDPOINT": endpoint.url, "DRILL_HISTORY_S3_ACCESS_KEY_ID": endpoint.access_key,
           "DRILL_HISTORY_S3_SECRET_ACCESS_KEY": endpoint.secret_key}  # fmt: skip
    done = _cli_certify(f"s3://{bucket}/fleet/drills", tmp_path / "cert", env)
    assert done.returncode == 0 and done.stdout.strip().endswith("CERTIFIED"), done.stdout + done.stderr


def test_the_run_id_setting_names_the_run(tmp_path: Path) -> None:
    assert DrillConfig.from_values({"run_id": RUN}).run_id == RUN
    with pytest.raises(ConfigError, match="drill_run_id='a b' is not a run id"):
        DrillConfig.from_values({"run_id": "a b"})
    run = run_pytest(["drills/test_total_loss.py", "--collect-only", "-q", f"--drill-run-id={RUN}"], tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert [m["run_id"] for m in run.manifests] == [RUN]
    assert json.dumps(run.manifests).count("drills/test_total_loss.py") >= 1


def test_runners_sharing_a_run_id_name_their_buckets_apart(tmp_path: Path) -> None:
    config = DrillConfig.from_values({"run_id": RUN, "history": f"file:{tmp_path / 'h.jsonl'}"})
    one, other = DrillSession(config, tmp_path, run_id=RUN), DrillSession(config, tmp_path, run_id=RUN)
    assert one.run_id == other.run_id == RUN
    assert one.tag != other.tag
