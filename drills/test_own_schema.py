"""Drill your own database: the scenarios run unchanged on a custom schema (tests/fixtures_data/own_schema.sql:
composite keys, a WITHOUT ROWID table, triggers, a view, a self-referencing foreign key, a table without a
primary key), seeded from a SQL dump and written by the schema-derived workload."""

from collections.abc import Callable

import pytest

from fixtures.drill import Drill
from fixtures.schema_workload import SchemaWriter
from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.region_outage import REGION_OUTAGE
from scenarios.row_deletion import ROW_DELETION_REWIND, ROW_DELETION_SURGICAL
from scenarios.total_loss import TOTAL_LOSS

OWN_SEED = "tests/fixtures_data/own_schema.sql"
# every table the workload can write; audit_log is written by a trigger only
WRITTEN = {"accounts", "projects", "memberships", "tasks", "events"}


def _check_workload(drill: Drill) -> None:
    assert isinstance(drill.writer, SchemaWriter), type(drill.writer)
    touched = {c.table for w in drill.ledger.acked() for c in w.changes}
    assert touched == WRITTEN, f"the workload wrote {sorted(touched)}, expected {sorted(WRITTEN)}"
    assert any(isinstance(c.key, tuple) for w in drill.ledger.acked() for c in w.changes if c.table == "tasks")


@pytest.mark.drill
@pytest.mark.drill_seed(OWN_SEED)
@pytest.mark.parametrize(
    "scenario", [TOTAL_LOSS, REGION_OUTAGE, ROW_DELETION_SURGICAL, ROW_DELETION_REWIND], ids=lambda s: s.name
)
def test_own_schema(scenario: Scenario, drill: Drill, run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(scenario)
    assert result.verdict == "pass", result.explain()
    _check_workload(drill)
    assert not [c for c in result.checks if c["name"].startswith("app:")], "builtin app checks ran on a custom seed"
    assert set(result.details["row_counts"]) == WRITTEN, result.details["row_counts"]
