"""Row deletion as a random sequence (hypothesis RuleBasedStateMachine): on one drill's bottomless primary,
rules write (the workload's transactions, acknowledged into the ledger), delete (an incident planned from
the schema), checkpoint (a new bottomless generation) and recover (surgically, from a fork); whenever no
incident is pending, the invariant holds that the database equals the seed plus every acknowledged write
(layer 3's checks against the ledger). The sequence runs before the measured window; then one more
incident, which the runner detects, recovers and verifies like any drill."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from fixtures.workload import open_client
from layers.pitr import PitrError, point_before
from layers.verify import verify
from reports.result import Objectives
from reports.stopwatch import Stopwatch
from scenarios import row_deletion as rd
from scenarios.base import Scenario
from scenarios.incident import Picks

if TYPE_CHECKING:
    from fixtures.drill import Drill

_pick = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)
PLANS = st.builds(rd.IncidentPlan, picks=st.builds(Picks, rows=st.lists(_pick, min_size=1, max_size=4).map(tuple),
                                                  loose=st.lists(_pick, max_size=3).map(tuple)))  # fmt: skip


@dataclass
class SequenceLog:
    """What one drill's sequence did, for its result."""

    steps: list[str] = field(default_factory=list)
    recoveries: int = 0
    invariant_checks: int = 0
    pending: bool = False  # an incident not yet recovered
    violation: str = ""  # the first time the invariant did not hold: every later step is a no-op


def _checkpoint(drill: Drill, log: SequenceLog) -> None:
    try:
        rd.layer2_of(drill).checkpoint()
        log.steps.append("checkpoint")
    except PitrError as exc:  # not the recovery under test: the sequence goes on, the result says so
        log.steps.append(f"checkpoint refused: {exc}"[:200])


def _check_invariant(drill: Drill, log: SequenceLog) -> None:
    """The database equals seed + every acknowledged write; a violation is kept, not raised: hypothesis
    would replay the sequence on a database that has moved on."""
    seed = drill.seed
    checked = verify(drill.serving().http_url, tables=seed.verified, base=seed.tables, writes=drill.ledger.writes,
                     headers=drill.target_headers)  # fmt: skip
    log.invariant_checks += 1
    failed = [f"{c.name}: {c.detail}" for c in checked.checks if not c.ok]
    if failed or checked.loss.lost:
        log.violation = f"after {log.steps}: {failed}; {len(checked.loss.lost)} acknowledged write(s) lost"


def _machine(drill: Drill, log: SequenceLog) -> type[RuleBasedStateMachine]:
    if drill.writer is None:
        raise RuntimeError("row deletion sequence: the workload was never started")
    write_one = drill.writer.write

    class RowDeletionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.client = open_client(drill.serving().http_url, drill.target_headers)

        @rule(count=st.integers(min_value=1, max_value=12))
        def write(self, count: int) -> None:
            if log.violation:
                return
            for _ in range(count):
                write_one(self.client)
            log.steps.append(f"write {count}")

        @precondition(lambda self: not log.pending)
        @rule(plan=PLANS)
        def delete(self, plan: rd.IncidentPlan) -> None:
            if log.violation:
                return
            rd.damage(plan)(drill)
            log.pending = True
            log.steps.append(f"delete {drill.details['incident']['deleted']}")  # type: ignore[index]

        @rule()
        def checkpoint(self) -> None:
            if not log.violation:
                _checkpoint(drill, log)

        @precondition(lambda self: log.pending)
        @rule()
        def recover(self) -> None:
            if log.violation:
                return
            rd.recover_surgical(point_before, rd.repair_surgically)(drill, Stopwatch())
            log.pending = False
            log.recoveries += 1
            log.steps.append("recover")

        @invariant()
        def equals_seed_plus_ledger(self) -> None:
            if not (log.pending or log.violation):
                _check_invariant(drill, log)

        def teardown(self) -> None:
            if log.pending:  # the next sequence (and the scenario's own incident) start from a sound database
                self.recover()
            self.client.close()

    return RowDeletionMachine


def sequence(examples: int, steps: int, plan: rd.IncidentPlan) -> Callable[[Drill], None]:
    """Outside the measured window: layer 2 streaming, then `examples` sequences of up to `steps` rules
    one after the other on the same primary (the invariant carries over: it is about the database and the
    ledger, not a fresh server), each one's last incident recovered if pending; the scenario's damage is the
    incident after them."""

    def run(drill: Drill) -> None:
        rd.prepare(plan)(drill)
        traffic = drill.traffic
        if traffic is None:
            raise RuntimeError("row deletion sequence: the workload was never started")
        traffic.pause_writers()  # the machine's `write` rule is the workload now: writes happen between steps only
        log = SequenceLog()
        run_state_machine_as_test(_machine(drill, log), settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None, database=None,
            phases=(Phase.generate,), suppress_health_check=list(HealthCheck)))  # fmt: skip
        traffic.unpause_writers()  # the application writes again before the scenario's own incident
        drill.details["sequence"] = {"steps": log.steps, "recoveries": log.recoveries,
                                     "invariant_checks": log.invariant_checks}  # fmt: skip
        if log.violation:
            raise AssertionError(f"the database no longer equals seed + ledger {log.violation}")

    return run


def row_deletion_sequence(name: str, examples: int, steps: int) -> Scenario:
    """`examples` random sequences of up to `steps` rules on one drill, then one more incident, recovered
    surgically and verified by the runner."""
    plan = rd.IncidentPlan()
    return Scenario(
        name=name,
        title="random writes, deletions, checkpoints and surgical recoveries; the database equals the ledger between",
        layers=(2,),
        objectives=Objectives(rpo_seconds=0.0, rto_seconds=60.0, rpo_writes=0),
        arm=rd.arm,
        damage=rd.damage(plan),
        detect=rd.detect_missing_rows,
        recover=rd.recover_surgical(point_before, rd.repair_surgically),
        prepare=sequence(examples, steps, plan),
        fits=rd.fits(plan),
    )
