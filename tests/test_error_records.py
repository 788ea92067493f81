"""An `error` record (a crashed drill) is carried by every report: the frame, the HTML tables, the charts
and the certificate; and it round-trips through DrillResult."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from reports.certify import certify
from reports.frame import to_frame
from reports.render import render_report
from reports.result import DrillError, DrillResult
from tests import synthetic_history as synth


def _crashed(r: DrillResult) -> DrillResult:
    error = DrillError("recover", "APIError", "500 Server Error: container start failed")
    return replace(r, error=error, failures=[error.describe()], rto_seconds=0.4, phases={"detect": 0.4},
                   rpo_seconds=0.0, rpo_writes=0)  # fmt: skip


def _history_with_a_crash() -> tuple[list[DrillResult], DrillResult]:
    results = synth.history(3)
    index = next(
        i for i, r in enumerate(results) if (r.run_id, r.scenario, r.backend) == ("run02", "total-loss", "container")
    )
    results[index] = _crashed(results[index])
    return results, results[index]


def test_an_error_record_round_trips_and_has_its_own_verdict() -> None:
    _, crashed = _history_with_a_crash()
    assert crashed.verdict == "error" and crashed.to_dict()["kind"] == "drill"
    again = DrillResult.from_dict(crashed.to_dict())
    assert again == crashed and again.error is not None and again.error.phase == "recover"
    assert "crashed in recover: APIError" in again.explain()


def test_reports_show_the_crash(tmp_path: Path) -> None:
    results, _ = _history_with_a_crash()
    frame = to_frame(synth.records(results))
    row = frame[frame["verdict"] == "error"]
    assert len(row) == 1 and row.iloc[0]["error"]["phase"] == "recover"
    assert row["restore_mb_per_s"].isna().all(), "a crashed drill has no restore throughput"
    rendered = render_report(frame, ["run02"], tmp_path / "report")
    html = rendered.html.read_text()
    assert '<td class="error">error</td>' in html and "crashed in recover: APIError" in html
    assert all(path.stat().st_size > 10_000 for path in rendered.charts.values())
    certificate = certify(frame, ["run02"])
    assert certificate.verdict == "not certified" and certificate.exit_code() == 1
    assert any("total-loss [container, 2MB] failed (crashed in recover" in layer.reason for layer in certificate.layers)
