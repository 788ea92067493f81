"""Ransomware: tables dropped, every primary-region backup deleted, the offsite copies attacked with the keys
the primary region holds; recovered from the offsite bucket's locked versions (layer 4) into a clean server."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.ransomware import RANSOMWARE


@pytest.mark.drill(scenario="ransomware")
def test_ransomware(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(RANSOMWARE)
    assert result.verdict == "pass", result.explain()
    attack = result.details["attack"]
    assert attack["primary_objects_destroyed"] > 0, "the attack destroyed nothing in the primary region"
    assert attack["offsite_refused"] > 0 and attack["offsite_destroyed"] == 0, attack["offsite"]
    # the attacker's overwrites were offered first and refused: they do not authenticate
    assert any("version" in why for _, why in result.details["offsite_refused"]), result.details["offsite_refused"]
