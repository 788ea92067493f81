"""Region outage: us-east (sqld + S3) lost whole, recovered in eu-west from layer-4 offsite copies alone;
and the same with the newest offsite copy altered, truncated or sealed under a wrong key."""

from collections.abc import Callable

import pytest

from reports.result import DrillResult
from scenarios.base import Scenario
from scenarios.region_outage import REGION_OUTAGE, REGION_OUTAGE_FAULTS
from scenarios.region_outage_wal import REGION_OUTAGE_WAL


@pytest.mark.drill(scenario="region-outage")
def test_region_outage(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(REGION_OUTAGE)
    assert result.verdict == "pass", result.explain()
    assert result.details["offsite_backup_id"], "recovered without an offsite copy"
    assert result.details["requests_during_recovery"]["us-east"] == 0


@pytest.mark.drill
@pytest.mark.parametrize("scenario", REGION_OUTAGE_FAULTS, ids=[s.name for s in REGION_OUTAGE_FAULTS])
def test_region_outage_with_a_damaged_offsite_copy(
    run_scenario: Callable[[Scenario], DrillResult], scenario: Scenario
) -> None:
    result = run_scenario(scenario)
    assert result.verdict == "pass", result.explain()
    refused = result.details["offsite_refused"]
    assert refused and refused[0][0] != result.details["offsite_backup_id"], "the damaged copy was not refused"


@pytest.mark.drill(scenario="region-outage-wal")
def test_region_outage_with_offsite_wal(run_scenario: Callable[[Scenario], DrillResult]) -> None:
    result = run_scenario(REGION_OUTAGE_WAL)
    assert result.verdict == "pass", result.explain()
    details = result.details
    assert details["requests_during_recovery"]["us-east"] == 0
    assert details["layer2_objects_restored"], "layer 2 was not restored from its offsite copies"
    # the newer of the two offsite recoveries is served (the WAL copy usually, the backup when WAL lags)
    assert result.rpo_writes == min(details["rpo_with_wal_writes"], details["rpo_backup_only_writes"])
