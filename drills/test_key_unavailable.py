"""Key unavailable: the primary region lost and the key service down at recovery time; the layer-4 key is
unwrapped from its escrow (drill_recovery_key) as RTO phase "key", and the offsite copies restore under it."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.key_unavailable import KEY_UNAVAILABLE


@pytest.mark.drill(scenario="key-unavailable")
def test_key_unavailable(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(KEY_UNAVAILABLE)
    assert result.verdict == "pass", result.explain()
    obtained = result.details["key_obtained"]
    assert obtained["via"] == "escrow", obtained
    assert any("did not answer" in p for p in obtained["problems"]), "the key service was not down"
    assert result.phases["key"] > 0 and result.details["offsite_backup_id"]
