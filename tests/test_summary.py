"""The table at the end of `pytest drills/`: per drill, RPO and RTO beside the objectives, and why it failed."""

from __future__ import annotations

from reports.summary import summary_lines
from tests.synthetic_history import history, with_failure


def test_summary_shows_figures_objectives_and_failures() -> None:
    good, bad = history(runs=1)[:2]
    bad = with_failure(bad, "row_counts: orders: 10 rows, expected 12")
    lines = summary_lines([good, bad])
    header, rule, *rows = lines
    assert header.split()[:3] == ["drill", "backend", "seed"]
    assert set(rule) <= {"-", " "}
    assert f"{good.rto_seconds:.2f} ({good.objectives.rto_seconds:g})" in rows[0] and rows[0].endswith("PASS")
    assert rows[1].endswith("FAIL")
    assert rows[2] == f"{bad.scenario} [{bad.backend}]: row_counts: orders: 10 rows, expected 12"
