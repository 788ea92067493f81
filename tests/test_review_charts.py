"""Charts a review can read: small multiples (a panel per scenario and scale, its own y scale), the
objective as a band with the value as a percent of it, phases stacked per run, and the month-over-month
table with its regressions marked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from matplotlib.patches import Rectangle

from reports.charts import rto_over_time, rto_phases
from reports.frame import to_frame
from reports.tables import monthly_table
from tests import synthetic_history as synth


def _titles(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_visible() and ax.get_title()]


def test_sixteen_series_get_a_panel_each_not_one_crowded_legend() -> None:
    names = [f"scenario-{i}" for i in range(8)]
    results = []
    for run in range(3):
        for i, name in enumerate(names):
            for backend in synth.BACKENDS:
                r = synth.result("total-loss", backend, run, at=synth.T0 + timedelta(days=7 * run, minutes=i))
                results.append(r.__class__(**{**r.__dict__, "scenario": name}))
    frame = to_frame(synth.records(results))
    over_time = rto_over_time(frame)
    assert sorted(_titles(over_time)) == [f"{n} [2MB]" for n in names]
    for ax in over_time.axes:
        if ax.get_title():
            legend = ax.get_legend()
            assert legend is not None and len(legend.get_texts()) <= 4  # backends + objective, per panel
    assert len(_titles(rto_phases(frame))) == 16  # one per scenario, backend and scale


def test_a_sub_second_rto_fills_its_panel_and_reads_as_a_percent_of_the_objective() -> None:
    frame = to_frame(synth.records(synth.history(3, scenarios=("total-loss",))))
    fig = rto_over_time(frame)
    ax = next(a for a in fig.axes if a.get_title().startswith("total-loss [2MB]"))
    low, high = ax.get_ylim()
    largest = frame[(frame["scale"] == "2MB")]["rto_seconds"].max()
    assert low == 0 and largest < high <= largest * 1.5  # scaled to the values, not to the 60 s objective
    assert "(objective 60 s is above this axis)" in ax.get_title()
    newest_container = frame[(frame["backend"] == "container")]["rto_seconds"].iloc[-1]
    assert f"container {newest_container:.2f} s ({100 * newest_container / 60:.1f}%)" in ax.get_title()
    percent_axis = [c for c in ax.child_axes if c.get_ylabel() == "% of objective"]
    assert len(percent_axis) == 1


def test_an_objective_near_the_values_is_drawn_as_a_band() -> None:
    slow = [synth.result("total-loss", "process", run, rto_factor=30) for run in range(3)]  # ~45-55 s against 60
    fig = rto_over_time(to_frame(synth.records(slow)))
    ax = next(a for a in fig.axes if a.get_title().startswith("total-loss [2MB]"))
    bands = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_y() == pytest.approx(60.0)]
    assert len(bands) == 1 and ax.get_ylim()[1] >= 60 * 1.2
    assert "above this axis" not in ax.get_title()


def test_the_month_over_month_table_marks_a_regression() -> None:
    results = []
    for r in synth.history(8, scenarios=("total-loss",)):  # runs 0-4 in October, 5-7 in November
        if r.backend == "container" and r.scale == "2MB" and int(r.run_id[3:]) >= 5:
            r = synth.result("total-loss", "container", int(r.run_id[3:]), rto_factor=1.6)
        results.append(r)
    table = monthly_table(to_frame(synth.records(results)))
    rows = {(row[0], row[1]): row for row in table.rows}
    slow = rows[("total-loss [container, 2MB]", "2026-11")]
    assert slow[2] == "3" and slow[4].startswith("+") and slow[-1] == "regressed"
    assert rows[("total-loss [process, 2MB]", "2026-11")][-1] == "ok"
    assert rows[("total-loss [process, 2MB]", "2026-10")][-1] == "first month"
    assert table.header[table.status_column or 0] == "status"
