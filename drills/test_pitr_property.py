"""Random damage (layers 2 + 3): hypothesis picks which seed rows an incident deletes, how many, and
when relative to bottomless batch boundaries; after the surgical recovery the database must equal the
seed plus every acknowledged write (nothing lost, every deleted row back). Each example runs real
servers, so the example count is small by default (--drill-property-examples, ini drill_property_examples)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fixtures.session import DrillSession
from reports.result import DrillResult
from scenarios.incident import Picks
from scenarios.row_deletion import IncidentPlan, row_deletion

_pick = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)
plans = st.builds(
    IncidentPlan,
    picks=st.builds(Picks, rows=st.lists(_pick, min_size=1, max_size=6).map(tuple),
                    loose=st.lists(_pick, max_size=4).map(tuple)),
    offset=st.sampled_from((0.0, 0.05, 0.5, 0.9, 0.99)) | _pick,
)  # fmt: skip


@pytest.mark.drill(scenario="row-deletion-random")
def test_surgical_recovery_restores_random_deletions(
    drill_session: DrillSession, run_scenario: Callable[..., DrillResult]
) -> None:
    results: list[DrillResult] = []

    @settings(
        max_examples=drill_session.config.property_examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: every example starts real servers
        suppress_health_check=list(HealthCheck),
    )
    @given(plan=plans)
    def example(plan: IncidentPlan) -> None:
        result = run_scenario(row_deletion("row-deletion-random", plan, "surgical"), fresh=True)
        results.append(result)
        assert result.verdict == "pass", f"{plan}\n{result.explain()}"
        incident = result.details["incident"]
        touched = sum(incident["deleted"].values()) + sum(incident["nulled"].values())
        assert result.details["rows_restored_total"] == touched, (plan, result.details)
        assert result.rpo_writes == 0 and result.rpo_rows == 0, result.explain()

    example()
    assert 1 <= len(results) <= drill_session.config.property_examples
