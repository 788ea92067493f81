"""Row deletion as random sequences (layers 2 + 3): a hypothesis state machine writes, deletes rows,
checkpoints and recovers on one drill's bottomless primary, checking after every step with no incident
pending that the database equals the seed plus every acknowledged write; its last incident is then
recovered and verified by the runner. --drill-property-examples sequences (small in CI, larger monthly)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.session import DrillSession
from reports.result import DrillResult
from scenarios.row_deletion_stateful import row_deletion_sequence

STEPS = 8


@pytest.mark.drill(scenario="row-deletion-sequence")
def test_random_sequences_keep_the_database_equal_to_the_ledger(
    drill_session: DrillSession, run_scenario: Callable[..., DrillResult]
) -> None:
    examples = drill_session.config.property_examples
    result = run_scenario(row_deletion_sequence("row-deletion-sequence", examples, STEPS))
    assert result.verdict == "pass", result.explain()
    sequence = result.details["sequence"]
    assert sequence["invariant_checks"] >= examples and result.rpo_writes == 0, sequence
