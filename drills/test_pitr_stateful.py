"""Row deletion as random sequences (layers 2 + 3): a hypothesis state machine draws sequences of writes,
deletions (incidents planned from the schema), checkpoints and surgical recoveries; each sequence runs on a
fresh drill of its own (scenarios/row_deletion_stateful.py), which checks after every step with no incident
pending that the database equals the seed plus every acknowledged write, then recovers one last incident
and verifies it. --drill-property-examples sequences of up to STEPS steps (small in CI, larger monthly);
no shrinking (every sequence starts real servers): hypothesis prints the falsifying sequence."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from fixtures.session import DrillSession
from reports.result import DrillResult
from scenarios.incident import Picks
from scenarios.row_deletion import IncidentPlan
from scenarios.row_deletion_stateful import Checkpoint, Delete, Recover, Step, Write, row_deletion_sequence

STEPS = 8  # rules per sequence; an incident rule is a delete and its recovery
_pick = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)
PLANS = st.builds(IncidentPlan, picks=st.builds(Picks, rows=st.lists(_pick, min_size=1, max_size=4).map(tuple),
                                                loose=st.lists(_pick, max_size=3).map(tuple)))  # fmt: skip


@pytest.mark.drill(scenario="row-deletion-sequence")
def test_random_sequences_keep_the_database_equal_to_the_ledger(
    drill_session: DrillSession, run_scenario: Callable[..., DrillResult]
) -> None:
    examples = drill_session.config.property_examples
    results: list[DrillResult] = []

    class Sequences(RuleBasedStateMachine):
        """Draws the steps; its teardown runs them on a fresh drill. Hypothesis tries rules in (argument
        count, name) order, so its simplest sequence repeats `incident_again`: one incident after another,
        each right after the previous repair (what lost rows before layers/pitr_repair.py)."""

        def __init__(self) -> None:
            super().__init__()
            self.steps: list[Step] = []
            self.last = IncidentPlan()

        @rule()
        def incident_again(self) -> None:
            """The last incident (the default plan at first) again, recovered at once: the same job re-run."""
            self.steps += [Delete(self.last), Recover()]

        @rule(plan=PLANS, writes=st.integers(min_value=0, max_value=12), checkpoint=st.booleans())
        def incident(self, plan: IncidentPlan, writes: int, checkpoint: bool) -> None:
            """An incident; while it is pending, writes and maybe a checkpoint; then its recovery."""
            self.last = plan
            self.steps += [Delete(plan), *([Write(writes)] if writes else []), *([Checkpoint()] if checkpoint else []),
                           Recover()]  # fmt: skip

        @rule(count=st.integers(min_value=1, max_value=12))
        def write(self, count: int) -> None:
            self.steps.append(Write(count))

        @rule()
        def new_generation(self) -> None:
            self.steps.append(Checkpoint())

        def teardown(self) -> None:
            result = run_scenario(row_deletion_sequence("row-deletion-sequence", tuple(self.steps)), fresh=True)
            results.append(result)
            assert result.verdict == "pass", result.explain()
            sequence = result.details["sequence"]
            assert sequence["invariant_checks"] >= 1 and result.rpo_writes == 0, sequence

    run_state_machine_as_test(Sequences, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
        phases=(Phase.generate,), suppress_health_check=list(HealthCheck)))  # fmt: skip
    assert results, "no sequence ran"  # hypothesis may run one more than max_examples (its simplest first)
