"""Rows deleted by mistake, recovered by layer 2 (point-in-time fork from bottomless) and verified by
layer 3: a whole-database rewind (later writes lost) and a surgical repair (nothing lost)."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.row_deletion import ROW_DELETION_REWIND, ROW_DELETION_SURGICAL


@pytest.mark.drill(scenario="row-deletion-surgical")
def test_row_deletion_surgical(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(ROW_DELETION_SURGICAL)
    assert result.verdict == "pass", result.explain()
    incident = result.details["incident"]
    touched = sum(incident["deleted"].values()) + sum(incident["nulled"].values())
    assert incident["deleted"] and result.details["rows_restored_total"] == touched, result.details


@pytest.mark.drill(scenario="row-deletion-rewind")
def test_row_deletion_rewind(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(ROW_DELETION_REWIND)
    assert result.verdict == "pass", result.explain()
    assert result.details["pitr_newest_write_in_fork"], "the rewind landed before any workload write"
