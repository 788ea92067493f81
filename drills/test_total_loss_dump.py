"""Total database loss with layer-1 SQL dumps (the portable format a manual `turso db dump` setup makes),
whatever drill_backup_format says: both formats are drilled on every run."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.total_loss import TOTAL_LOSS_DUMP


@pytest.mark.drill
def test_total_loss_dump(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(TOTAL_LOSS_DUMP)
    assert result.verdict == "pass", result.explain()
    assert result.details["backup_format"] == "dump"
    assert result.details["backup_id"], "recovered without a layer-1 backup"
