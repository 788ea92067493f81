"""The plugin as a user meets it: bad settings fail with one clear message (no traceback, nothing
started), and a run records machine and commit info with every result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.binary import sqld_binary
from tests.drillrun import run_pytest

BAD_SETTINGS = [
    (["--drill-backend=kubernetes"], "unknown backend kubernetes"),
    (["--drill-scale=lots"], "drill_scale='lots' is not a scale"),
    (["--drill-scale=0MB"], "is not a scale"),
    (["--drill-history=ftp://x"], "is not a history location"),
    (["--drill-regions=us-east=moto"], "names 1 region(s)"),
    (["--drill-objective=total-loss.speed=3"], "is not SCENARIO.METRIC=NUMBER"),
]


@pytest.mark.parametrize(("args", "message"), BAD_SETTINGS, ids=[a[0] for a, _ in BAD_SETTINGS])
def test_bad_setting_fails_with_one_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    run = run_pytest(["drills/test_total_loss.py", *args], tmp_path, timeout=120)
    assert run.returncode == 4, run.output[-2000:]
    assert message in run.output
    assert "Traceback" not in run.output
    assert run.history == []


def test_unreachable_s3_endpoint_fails_with_one_clear_message(tmp_path: Path) -> None:
    run = run_pytest(
        ["drills/test_total_loss.py", "--drill-backend=process", "--drill-regions=us-east=http://127.0.0.1:9 eu-west=moto",
         "--drill-startup-timeout=3"],
        tmp_path, env={"DRILL_S3_US_EAST_ACCESS_KEY_ID": "k", "DRILL_S3_US_EAST_SECRET_ACCESS_KEY": "s"}, timeout=180,
    )  # fmt: skip
    assert run.returncode == 4, run.output[-2000:]
    assert "S3 endpoint of region us-east (http://127.0.0.1:9) does not answer" in run.output
    assert run.output.count("does not answer") == 1
    assert run.history == []


def test_missing_credentials_for_a_real_endpoint_are_named(tmp_path: Path) -> None:
    run = run_pytest(
        ["drills/test_total_loss.py", "--drill-backend=process", "--drill-regions=us-east=https://127.0.0.1:9 eu-west=moto"],
        tmp_path, env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, timeout=180,
    )  # fmt: skip
    assert run.returncode == 4, run.output[-2000:]
    assert "DRILL_S3_US_EAST_ACCESS_KEY_ID" in run.output


def test_ini_settings_apply_and_flags_win(tmp_path: Path) -> None:
    """The same setting from the ini file and from a flag: the flag wins (checked on a bad value)."""
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\npythonpath = .\ndrill_scale = nonsense\n")
    run = run_pytest(["-c", str(ini), "--rootdir=.", "drills/test_total_loss.py", "--collect-only", "-q"], tmp_path)
    assert run.returncode == 4 and "drill_scale='nonsense'" in run.output
    run = run_pytest(
        ["-c", str(ini), "--rootdir=.", "drills/test_total_loss.py", "--collect-only", "-q", "--drill-scale=1MB",
         "--drill-backend=process"],
        tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-2000:]
    assert "test_total_loss[process]" in run.output


def test_the_property_drill_runs_on_your_own_seed(tmp_path: Path) -> None:
    """The property drill goes through run_scenario like every drill, and its incidents are planned from the
    schema: on a user's own seed it runs (it crashed there on the builtin schema's namespace before)."""
    run = run_pytest(["drills/test_pitr_property.py", "--drill-backend=process", "--drill-property-examples=2",
                      "--drill-seed=tests/fixtures_data/own_schema.sql"], tmp_path)  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    assert "1 passed" in run.output and len(run.manifests) == 1
    assert [(r["scenario"], r["verdict"]) for r in run.history] == [("row-deletion-random", "pass")] * 2
    assert all(r["scale"] == "seed:own_schema.sql" and r["details"]["incident"]["deleted"] for r in run.history)


def test_the_plugin_is_an_entry_point_that_drills_a_foreign_repository(tmp_path: Path) -> None:
    """Installed (setup installs this repository into the venv), the plugin loads from its `pytest11` entry
    point in a folder that has no conftest.py and none of this repository's files."""
    from importlib.metadata import entry_points

    assert "fixtures.plugin" in {e.value for e in entry_points(group="pytest11")}
    repo = tmp_path / "their-repo"
    repo.mkdir()
    (repo / "test_their_drill.py").write_text(
        "import pytest\nfrom scenarios.total_loss import TOTAL_LOSS\n\n\n"
        "@pytest.mark.drill(scenario='total-loss')\ndef test_total_loss(run_scenario):\n"
        "    result = run_scenario(TOTAL_LOSS)\n    assert result.verdict == 'pass', result.explain()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_their_drill.py", "--drill-backend=process",
         f"--drill-sqld-binary={sqld_binary()}", "--drill-backup-interval=1"],
        cwd=repo, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout and "disaster-recovery drills" in done.stdout
    records = [json.loads(line) for line in (repo / ".drills" / "history.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["manifest", "drill"] and records[1]["verdict"] == "pass"
