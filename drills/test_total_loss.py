"""Total database loss, recovered by layer 1 (latest full backup) and verified by layer 3."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.total_loss import TOTAL_LOSS


@pytest.mark.drill(scenario="total-loss")
def test_total_loss(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(TOTAL_LOSS)
    assert result.verdict == "pass", result.explain()
    assert result.details["backup_id"], "recovered without a layer-1 backup"
