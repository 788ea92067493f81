"""Restore tests of existing backups (history records of kind "restore-test") beside the drills: listed
on the certificate as layer-3 evidence (a failed one keeps layer 3 uncertified), shown in the report, and
left out of the drill frame."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reports.certify import CERTIFIED, NOT_CERTIFIED, certify
from reports.frame import to_frame
from reports.history import FileHistory
from reports.restore_tests import restore_tests
from reports.restore_tests_table import table
from tests import synthetic_history as synth
from tests.drillrun import ROOT

NOW = synth.T0 + timedelta(days=8)


def _test(source: str, ok: bool, days_ago: float = 1.0) -> dict[str, Any]:
    checks = [{"name": "restore", "ok": True, "detail": "1.00 MB in 0.50s", "seconds": 0.5},
              {"name": "row_counts", "ok": ok, "detail": "ok" if ok else "albums: 90 rows, 10.0% fewer than 100"}]  # fmt: skip
    return {"kind": "restore-test", "started_at": (NOW - timedelta(days=days_ago)).isoformat(), "source": source,
            "point_requested": "latest", "point_achieved": "2026-10-08T02:00:00Z", "ok": ok, "checks": checks,
            "restore_seconds": 0.5, "restore_mb_per_second": 2.0, "row_counts": {"albums": 100}}  # fmt: skip


def test_passing_restore_tests_certify_layer_3_beside_the_drills() -> None:
    records = [*synth.records(synth.history(2)), _test("bottomless:s3://team/prod", True)]
    assert len(to_frame(records)) == len(to_frame(synth.records(synth.history(2)))), "not a drill result"
    tests = restore_tests(records, NOW)
    cert = certify(to_frame(records), ["run01"], restore_tests=tests)
    layer3 = cert.layers[2]
    assert cert.verdict == CERTIFIED and layer3.verdict == CERTIFIED and "1 restore test(s)" in layer3.reason
    assert any(name.startswith("restore test bottomless:s3://team/prod") for name in layer3.scenarios)
    assert "## Layer 3 evidence: restore tests of existing backups" in cert.to_markdown()
    assert json.loads(cert.to_json())["restore_tests"][0]["source"] == "bottomless:s3://team/prod"


def test_a_failed_restore_test_keeps_layer_3_uncertified_and_names_it() -> None:
    records = [*synth.records(synth.history(2)), _test("dumps:/backups", True, days_ago=3),
               _test("dumps:/backups", False), _test("dump:/old.sql", False, days_ago=40)]  # fmt: skip
    tests = restore_tests(records, NOW)
    assert [(t.source, t.ok) for t in tests] == [("dumps:/backups", False)], "newest per source, within a month"
    cert = certify(to_frame(records), ["run01"], restore_tests=tests)
    assert cert.layers[2].verdict == NOT_CERTIFIED and cert.verdict == NOT_CERTIFIED
    assert "albums: 90 rows" in cert.layers[2].reason and any("layer 3" in r for r in cert.reasons)


def test_the_report_lists_every_restore_test(tmp_path: Path) -> None:
    rows = table([_test("dumps:/backups", True, 3), _test("dumps:/backups", False)]).rows
    assert [r[-1][:4] for r in rows] == ["fail", "pass"] and rows[0][1] == "dumps:/backups"
    assert "none in this history" in table([]).note


def test_cli_certify_and_render_read_restore_tests(tmp_path: Path) -> None:
    history = FileHistory(tmp_path / "history.jsonl")
    for record in synth.records(synth.history(1, scenarios=("total-loss", "region-outage"))):
        history.append(record)
    now = datetime.now(UTC)
    history.append({**_test("sqlite:/team.db", True), "started_at": (now - timedelta(hours=1)).isoformat()})
    for command in ("certify", "render"):
        done = subprocess.run([sys.executable, "-m", "reports.cli", command, "--history", f"file:{history.path}",
                               "--out", str(tmp_path / "out"), "--run", "all"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
    assert "sqlite:/team.db" in (tmp_path / "out" / "certificate.md").read_text()
    assert "Restore tests of existing backups" in (tmp_path / "out" / "summary.md").read_text()
    assert "sqlite:/team.db" in (tmp_path / "out" / "report.html").read_text()


def test_the_report_draws_the_restore_tests_over_time(tmp_path: Path) -> None:
    import numpy as np
    from matplotlib.collections import PathCollection

    from reports.charts import write_charts
    from reports.restore_tests_chart import restore_tests_over_time

    records = [_test("dumps:/backups", True, 3), _test("dumps:/backups", False, 1), _test("sqlite:/team.db", True, 2)]
    fig = restore_tests_over_time(records)
    assert fig is not None
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert (
        set(lines) == {"dumps:/backups", "sqlite:/team.db"}
        and np.asarray(lines["dumps:/backups"].get_xdata()).shape[0] == 2
    )
    circled = [
        c for c in fig.axes[0].collections if isinstance(c, PathCollection) and np.asarray(c.get_offsets()).shape[0]
    ]
    assert len(circled) == 1 and np.asarray(circled[0].get_offsets()).shape[0] == 1, "the failed test is circled"
    assert restore_tests_over_time(synth.records(synth.history(1))) is None  # no restore tests: no chart
    charts = write_charts(to_frame(synth.records(synth.history(1))), tmp_path, records)
    assert charts["restore_tests"].stat().st_size > 10_000
