"""Reports from the drill history: the frame, the charts, regressions, certification, the readiness audit,
the HTML/Markdown report, the CLI and the pytest plugin's drill_report / drill_compare_fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from fixtures.config import ConfigError, DrillConfig, parse_threshold, parse_thresholds
from reports.audit import FAIL, PASS, UNCHECKABLE, AuditPolicy, audit
from reports.certify import CERTIFIED, NOT_CERTIFIED, certify
from reports.charts import rpo_over_time, rto_over_time, rto_phases, write_charts
from reports.frame import HistoryFormatError, changes, latest_run_ids, to_frame
from reports.history import FileHistory
from reports.regression import find_regressions
from reports.render import render_report, session_report
from reports.result import PHASES
from reports.tables import changes_table
from tests import synthetic_history as synth
from tests.drillrun import ROOT, run_pytest

PNG = b"\x89PNG\r\n\x1a\n"


def frame_of(results: list) -> pd.DataFrame:  # type: ignore[type-arg]
    return to_frame(synth.records(results))


# -- frame ---------------------------------------------------------------------------------------------
def test_frame_has_one_row_per_result_and_phases_as_columns() -> None:
    results = synth.history(3)
    frame = frame_of(results)
    assert len(frame) == len(results)
    for phase in ("detect", "provision", "restore", "verify"):
        assert f"{phase}_seconds" in frame.columns
    row = frame[(frame["run_id"] == "run02") & (frame["scenario"] == "total-loss") & (frame["scale"] == "100MB")].iloc[
        0
    ]
    source = next(r for r in results if r.run_id == "run02" and r.scale == "100MB")
    assert row["restore_seconds"] == pytest.approx(source.phases["restore"])
    assert row["restore_mb_per_s"] == pytest.approx(source.db_bytes / 1e6 / source.phases["restore"])
    assert frame["started_at"].is_monotonic_increasing
    assert latest_run_ids(frame) == ["run02"]


def test_a_record_that_is_not_a_drill_result_is_named() -> None:
    good = synth.records(synth.history(1))
    with pytest.raises(HistoryFormatError, match=r"record #3 .* lacks rto_seconds"):
        to_frame([*good[:2], {k: v for k, v in good[2].items() if k != "rto_seconds"}])


def test_changes_compare_with_the_previous_comparable_result() -> None:
    results = synth.history(2)
    frame = frame_of(results)
    table = changes(frame, ["run01"])
    row = table[(table["scenario"] == "total-loss") & (table["backend"] == "process") & (table["scale"] == "2MB")].iloc[
        0
    ]
    before = next(
        r for r in results if (r.run_id, r.scenario, r.backend, r.scale) == ("run00", "total-loss", "process", "2MB")
    )
    now = next(
        r for r in results if (r.run_id, r.scenario, r.backend, r.scale) == ("run01", "total-loss", "process", "2MB")
    )
    assert row["previous_run"] == "run00"
    assert row["rto_seconds_delta"] == pytest.approx(now.rto_seconds - before.rto_seconds)
    first = changes(frame, ["run00"])
    assert first["previous_run"].isna().all()
    rows = changes_table(frame, ["run00"]).rows
    assert rows and all(r[3] == "first result" and r[4].startswith("- -> ") and r[7] == "- -> pass" for r in rows)


# -- charts --------------------------------------------------------------------------------------------
def test_charts_are_png_files(tmp_path: Path) -> None:
    paths = write_charts(frame_of(synth.history(4)), tmp_path)
    assert set(paths) == {"rto_over_time", "rto_phases", "rpo_over_time", "restore_throughput"}
    for path in paths.values():
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, (path, len(data))
    empty = write_charts(to_frame([]), tmp_path / "empty")
    assert all(p.read_bytes().startswith(PNG) for p in empty.values())


def _ydata(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_ydata())]


def _panel(fig, title: str):  # type: ignore[no-untyped-def]
    return next(ax for ax in fig.axes if ax.get_title().split("\n")[0] == title)


def test_charts_plot_the_measured_values_and_the_objectives() -> None:
    """One panel per scenario and scale (a line per backend) with the objective, and the phases stacked per
    run in one panel per scenario, backend and scale."""
    results = synth.history(3)
    frame = frame_of(results)
    ax = _panel(rto_over_time(frame), "total-loss [2MB]")
    lines = {line.get_label(): line for line in ax.get_lines()}
    measured = [
        r.rto_seconds for r in results if (r.scenario, r.backend, r.scale) == ("total-loss", "container", "2MB")
    ]
    assert _ydata(lines["container"]) == pytest.approx(measured)
    assert set(_ydata(lines["objective 60 s"])) == {60.0}
    rpo = {line.get_label(): line for line in _panel(rpo_over_time(frame), "row-deletion-rewind [2MB]").get_lines()}
    assert set(_ydata(rpo["objective 5 s"])) == {5.0}
    bars = _panel(rto_phases(frame), "total-loss [process, 100MB]")
    big = [r for r in results if r.scale == "100MB"]
    stacked = [p for container in bars.containers for p in container if isinstance(p, Rectangle)]
    assert len(stacked) == len(PHASES) * len(big)  # every phase of a run (detect .. repoint)
    assert sum(p.get_height() for p in stacked) == pytest.approx(sum(r.rto_seconds for r in big))


# -- regression thresholds -----------------------------------------------------------------------------
def test_threshold_specs_parse_like_benchmark_compare_fail() -> None:
    relative, absolute = parse_threshold("rto_seconds:20%"), parse_threshold("rpo_seconds:5")
    assert (relative.metric, relative.limit, relative.relative) == ("rto_seconds", 0.2, True)
    assert (absolute.metric, absolute.limit, absolute.relative) == ("rpo_seconds", 5.0, False)
    assert relative.exceeded(12.1, 10.0) and not relative.exceeded(11.9, 10.0)
    assert absolute.exceeded(10.1, 5.0) and not absolute.exceeded(10.0, 5.0)
    assert [t.spec for t in parse_thresholds(["rto_seconds:20%, restore_seconds:1.5"])] == [
        "rto_seconds:20%",
        "restore_seconds:1.5",
    ]
    for bad in ("rto:20%", "rto_seconds", "rto_seconds:-1", "rto_seconds:fast"):
        with pytest.raises(ConfigError, match="METRIC:LIMIT"):
            parse_threshold(bad)


def test_every_regression_is_collected_and_reported_once(tmp_path: Path) -> None:
    """Through session_report, as the pytest plugin reports drill_compare_fail at the end of a run."""
    base = synth.history(4)
    newest = [
        synth.result("total-loss", "process", 4, rto_factor=1.6),  # RTO +60%
        synth.result("region-outage", "container", 4, rto_factor=1.5, rpo_factor=3.0),  # RTO +50%, RPO +8s
        synth.result("row-deletion-rewind", "process", 4),  # unchanged
    ]
    history = FileHistory(tmp_path / "history.jsonl")
    for record in synth.records(base + newest):
        history.append(record)

    def report(run_ids: list[str], *specs: str) -> tuple[list[str], list[str]]:
        config = DrillConfig(compare_fail=parse_thresholds(specs))
        outcome = session_report(run_ids, history, config, tmp_path)
        return outcome.lines, sorted(f"{r.scenario} {r.backend} {r.threshold.metric}" for r in outcome.regressions)

    lines, found = report(["run04"], "rto_seconds:20%", "rpo_seconds:5")
    assert found == [
        "region-outage container rpo_seconds",
        "region-outage container rto_seconds",
        "total-loss process rto_seconds",
    ]
    assert lines[0] == "drill results regressed (rto_seconds:20%, rpo_seconds:5):"
    assert "\n".join(lines).count("drill results regressed") == 1
    assert sum("exceeds" in line for line in lines) == 3 and len(lines) == 4
    assert report(["run04"], "rto_seconds:100%", "rpo_seconds:50") == ([], [])  # within limits
    assert report(["run00"], "rto_seconds:20%", "rpo_seconds:5") == ([], [])  # a first result has no baseline


def test_baseline_is_the_same_scenario_backend_and_scale() -> None:
    base = synth.history(3)
    # a 2MB result as slow as the 100MB ones: a regression against 2MB, whatever the 100MB runs took
    slow = synth.result("total-loss", "process", 3, rto_factor=4)
    found = find_regressions(frame_of([*base, slow]), ["run03"], parse_thresholds(["rto_seconds:50%"]))
    assert [(r.scale, r.baseline_runs) for r in found] == [("2MB", 3)]
    assert found[0].baseline < 2.0


# -- certification -------------------------------------------------------------------------------------
def test_all_layers_drilled_and_passing_is_certified(tmp_path: Path) -> None:
    frame = frame_of(synth.history(2))
    cert = certify(frame, ["run01"], history="file:h.jsonl")
    assert cert.verdict == CERTIFIED and cert.reasons == [] and cert.exit_code() == 0
    assert [v.verdict for v in cert.layers] == [CERTIFIED] * 4
    as_json, as_md = cert.write(tmp_path)
    data = json.loads(as_json.read_text())
    assert data["sqld_versions"] == ["sqld 0.24.32 (40c272de 2025-02-14)"]
    assert data["backends"] == ["container", "process"] and data["commits"] == ["c0ffee01"]
    scenario = next(s for s in data["scenarios"] if s["scenario"] == "total-loss" and s["backend"] == "process"
                    and s["scale"] == "2MB")  # fmt: skip
    source = next(
        r
        for r in synth.history(2)
        if (r.run_id, r.scenario, r.backend, r.scale) == ("run01", "total-loss", "process", "2MB")
    )
    assert scenario["measured"]["rto_seconds"] == pytest.approx(source.rto_seconds)
    assert scenario["objectives"]["rto_seconds"] == 60
    assert data["started"].startswith("2026-10-08")
    assert "**Verdict: CERTIFIED**" in as_md.read_text()


def test_a_layer_without_a_drill_is_not_certified_and_says_why() -> None:
    frame = frame_of(synth.history(1, scenarios=("total-loss", "region-outage")))
    cert = certify(frame, ["run00"])
    layer2 = cert.layers[1]
    assert (layer2.layer, layer2.verdict) == (2, NOT_CERTIFIED)
    assert layer2.reason == "no drill of layer 2 in run run00"
    assert cert.verdict == NOT_CERTIFIED and any("layer 2" in r for r in cert.reasons)
    assert cert.exit_code() == 0 and cert.exit_code(strict=True) == 1


def test_a_missed_objective_fails_certification() -> None:
    results = synth.history(1)
    slow = synth.result("row-deletion-rewind", "container", 0, rpo_factor=20)  # RPO 10s+ against 5s
    slow = synth.with_failure(slow, "RPO exceeds the objective")
    results = [slow if (r.scenario, r.backend) == ("row-deletion-rewind", "container") else r for r in results]
    cert = certify(frame_of(results), ["run00"])
    assert cert.exit_code() == 1 and cert.objectives_missed
    assert (
        cert.layers[1].verdict == NOT_CERTIFIED
        and "row-deletion-rewind [container, 2MB] failed" in cert.layers[1].reason
    )
    assert any(r.startswith("row-deletion-rewind [container, 2MB]: RPO") for r in cert.reasons)
    assert "RPO exceeds the objective" in cert.to_markdown()


# -- readiness audit -----------------------------------------------------------------------------------
def _status(result, question: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    item = next(i for i in result.items if question in i.question)
    return item.status, item.why


def test_a_healthy_history_passes_every_checkable_item() -> None:
    frame = frame_of(synth.history(4))
    result = audit(frame, now=synth.T0 + timedelta(days=25))
    bad = [(i.question, i.why) for i in result.items if i.status == FAIL]
    assert bad == []
    assert {i.status for i in result.items} == {PASS, UNCHECKABLE}
    assert _status(result, "an owner per layer")[0] == UNCHECKABLE
    assert _status(result, "retention adequate")[1].startswith("kept 30 days >= 30")


def test_audit_items_fail_for_what_is_wrong() -> None:
    results = synth.history(2)
    broken = []
    for r in results:
        if r.scenario == "total-loss" and r.run_id == "run01":
            r = replace(r, details={**r.details, "layer1_policy": "every 2s, kept 7 days"},
                        checks=[{**c, "ok": False, "detail": "0 success notification(s)"} if c["name"] == "layer1_notified"
                                else c for c in r.checks])  # fmt: skip
        if r.scenario == "region-outage" and r.run_id == "run01":
            r = replace(r, details={**r.details, "offsite_tls": "none: http://127.0.0.1:1 is plain HTTP"})
        broken.append(r)
    result = audit(frame_of(broken), now=synth.T0 + timedelta(days=90))
    assert (
        _status(result, "retention adequate")[0] == FAIL and "keeps 7 days" in _status(result, "retention adequate")[1]
    )
    assert _status(result, "notifications delivered") == (
        FAIL,
        "total-loss [container, 2MB]: 0 success notification(s); "
        "total-loss [process, 100MB]: 0 success notification(s); "
        "total-loss [process, 2MB]: 0 success notification(s)",
    )
    assert _status(result, "encryption applied")[0] == FAIL and "plain HTTP" in _status(result, "encryption applied")[1]
    assert _status(result, "monthly restore test")[0] == FAIL  # 83 days since the last drill
    assert _status(result, "regular verification")[0] == FAIL


def test_a_missing_layer_fails_planning_and_leaves_its_items_uncheckable() -> None:
    frame = frame_of(synth.history(2, scenarios=("total-loss", "row-deletion-rewind")))
    result = audit(frame, now=synth.T0 + timedelta(days=10), policy=AuditPolicy())
    assert _status(result, "all four layers planned") == (FAIL, "no drill of layer(s) 4 (offsite copies)")
    assert _status(result, "backup in another region") == (
        UNCHECKABLE,
        "no layer-4 (offsite copies) drill in the history",
    )
    assert _status(result, "every layer working")[0] == FAIL


def test_backup_older_than_the_rpo_objective_fails() -> None:
    results = synth.history(1, scenarios=("total-loss",))
    old = results[0]
    results[0] = replace(old, details={**old.details, "backup_taken_at": "2026-09-30T00:00:00+00:00"})
    status, why = _status(audit(frame_of(results), now=synth.T0), "no older than the RPO objective")
    assert status == FAIL and "total-loss [container, 2MB]" in why


# -- HTML and Markdown ---------------------------------------------------------------------------------
def test_report_files_are_self_contained(tmp_path: Path) -> None:
    results = synth.history(4)
    results.append(synth.with_failure(synth.result("total-loss", "container", 4), "row_counts: customers 499 != 500"))
    frame = frame_of(results)
    rendered = render_report(
        frame, ["run04"], tmp_path, thresholds=parse_thresholds(["rto_seconds:1%"]), history="file:x"
    )
    html = rendered.html.read_text()
    assert html.count('src="data:image/png;base64,') == 4
    assert "http://" not in html and "https://" not in html and "<script" not in html
    for key in ("latest", "changes", "checks", "audit"):
        assert f'<table id="{key}">' in html
    assert "row_counts: customers 499 != 500" in html  # the failure, in the failures table and the latest table
    assert '<td class="fail">fail</td>' in html
    text = re.sub(r'src="data:[^"]+"', "", html)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)  # a missing earlier value shows as '-'
    assert "None" not in text
    md = rendered.markdown.read_text()
    assert "## Latest run" in md and "| total-loss | container | 2MB | 1+3 |" in md
    assert "![rto_over_time](charts/rto_over_time.png)" in md
    assert "## Readiness audit" in md


# -- command line --------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def _history_file(tmp_path: Path, results: list) -> str:  # type: ignore[type-arg]
    history = FileHistory(tmp_path / "history.jsonl")
    for record in synth.records(results):
        history.append(record)
    return f"file:{history.path}"


def test_cli_render_writes_the_report_and_fails_on_regressions(tmp_path: Path) -> None:
    uri = _history_file(tmp_path, [*synth.history(3), synth.result("total-loss", "process", 3, rto_factor=2),
                                   synth.result("region-outage", "process", 3, rto_factor=2)])  # fmt: skip
    out = tmp_path / "report"
    done = _cli("render", "--history", uri, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (out / "charts").iterdir()} == {"rto_over_time.png", "rto_phases.png", "rpo_over_time.png",
                                                            "restore_throughput.png"}  # fmt: skip
    assert (out / "report.html").stat().st_size > 100_000 and (out / "summary.md").exists()
    done = _cli("render", "--history", uri, "--out", str(out), "--compare-fail", "rto_seconds:20%")
    assert done.returncode == 1
    assert done.stderr.count("REGRESSION") == 2
    assert "total-loss [process, 2MB]" in done.stderr and "region-outage [process, 2MB]" in done.stderr


def test_cli_certify_exits_1_on_a_missed_objective(tmp_path: Path) -> None:
    good = _history_file(tmp_path / "good", synth.history(1))
    done = _cli("certify", "--history", good, "--out", str(tmp_path / "good"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "good" / "certificate.json").read_text())["verdict"] == CERTIFIED
    slow = synth.with_failure(synth.result("total-loss", "process", 1, rto_factor=100), "RTO exceeds the objective")
    bad = _history_file(tmp_path / "bad", [*synth.history(1), slow])
    done = _cli("certify", "--history", bad, "--out", str(tmp_path / "bad"))
    assert done.returncode == 1
    assert "total-loss [process, 2MB]: RTO" in done.stdout
    assert "layer 2" in done.stdout  # run01 holds only that one drill
    assert (tmp_path / "bad" / "certificate.md").exists()


def test_cli_names_bad_input(tmp_path: Path) -> None:
    done = _cli("render", "--history", f"file:{tmp_path / 'none.jsonl'}", "--out", str(tmp_path))
    assert done.returncode == 2 and "holds no drill results" in done.stderr and "Traceback" not in done.stderr
    uri = _history_file(tmp_path, synth.history(1))
    done = _cli("render", "--history", uri, "--out", str(tmp_path), "--compare-fail", "speed:2")
    assert done.returncode == 2 and "'speed:2' is not METRIC:LIMIT" in done.stderr
    done = _cli("certify", "--history", uri, "--out", str(tmp_path), "--run", "nope")
    assert done.returncode == 2 and "run nope is not in the history" in done.stderr


# -- the pytest plugin ---------------------------------------------------------------------------------
def test_bad_compare_fail_setting_is_a_usage_error(tmp_path: Path) -> None:
    run = run_pytest(["drills/test_total_loss.py", "--collect-only", "-q", "--drill-compare-fail=rto:fast"], tmp_path)
    assert run.returncode == 4 and "'rto:fast' is not METRIC:LIMIT" in run.output and "Traceback" not in run.output


def test_plugin_writes_the_report_and_fails_the_run_on_regressions(tmp_path: Path) -> None:
    """A real drill against a history whose earlier runs were (impossibly) fast: the drill passes, every
    regression is listed once, the run fails, and the report is written."""
    earlier = [replace(synth.result("total-loss", "process", run, rto_factor=0.01), run_id=f"earlier{run}")
               for run in range(3)]  # fmt: skip
    history = FileHistory(tmp_path / "history.jsonl")  # the file run_pytest points the drills at
    for record in synth.records(earlier):
        history.append(record)
    report = tmp_path / "report"
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=process", f"--drill-report={report}",
                      "--drill-compare-fail=rto_seconds:50%", "--drill-compare-fail=restore_seconds:50%"],
                     tmp_path, timeout=300)  # fmt: skip
    assert "1 passed" in run.output, run.output[-3000:]
    assert run.returncode == 1, run.output[-3000:]
    assert run.output.count("drill results regressed") == 1
    assert "total-loss [process, 2MB]: rto_seconds" in run.output
    assert "total-loss [process, 2MB]: restore_seconds" in run.output
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "rto_seconds:50%" in html
    assert len(run.history) == 4  # the three earlier records and this run's
