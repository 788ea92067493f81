"""The primary's database file damaged on disk (a table's pages, an index's pages, truncation, the
header), detected as an operator would, recovered by layer 1 behind an integrity gate (rolled forward by
layer 2 when it is armed), verified by layer 3."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.table_corruption import SCENARIOS


@pytest.mark.drill
@pytest.mark.parametrize("scenario", [pytest.param(s, id=form) for form, s in SCENARIOS.items()])
def test_table_corruption(scenario: Scenario, run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(scenario)
    assert result.verdict == "pass", result.explain()
    assert result.details["detected_by"], "the damage was never detected"
    recovered_by = str(result.details["recovered_by"])
    if scenario is not SCENARIOS["table-bottomless"]:
        assert recovered_by.startswith("layer 1: full backup "), recovered_by  # no layer 2 armed: layer 1 alone
    else:  # defense in depth: layer 2 alone brought the corruption back
        assert str(result.details["layer2_naive_restore"]).startswith("refused"), result.details["layer2_naive_restore"]
        # ...while a fork to just before the damage passes the gate and rolls forward past the backup, unless
        # the newest backup was taken after the fork's second (then it is the newer copy, and it is served)
        roll_forward = str(result.details.get("roll_forward"))
        if not roll_forward.endswith("the backup is newer"):
            assert result.details["recovered_by"] == "layer 1 + layer 2 roll-forward", roll_forward
        assert isinstance(result.details["rpo_backup_only_writes"], int), "the backup-only loss was not measured"
        assert result.details["rolled_forward_to"], "the roll-forward point was not recorded"
        assert result.rpo_writes <= result.details["rpo_backup_only_writes"], "rolling forward lost more"
