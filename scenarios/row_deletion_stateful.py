"""Row deletion as a random sequence: on one drill's bottomless primary, steps write (the workload's
transactions, acknowledged into the ledger), delete (an incident planned from the schema), checkpoint (a new
bottomless generation) and recover (surgically, from a fork); whenever no incident is pending, the database
must equal the seed plus every acknowledged write (layer 3's checks against the ledger). The steps are data
(drills/test_pitr_stateful.py draws them with a hypothesis state machine) and run before the measured
window; then one more incident, which the runner detects, recovers and verifies like any drill. A step
breaking the invariant ends the sequence and fails the drill's `sequence_invariant` check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fixtures.workload import open_client
from layers.pitr import PitrError, point_before
from layers.verify import Check, verify
from reports.result import Objectives
from reports.stopwatch import Stopwatch
from scenarios import row_deletion as rd
from scenarios.base import Recovery, Scenario

if TYPE_CHECKING:
    from fixtures.drill import Drill


@dataclass(frozen=True)
class Write:
    count: int  # workload transactions, one after the other


@dataclass(frozen=True)
class Delete:
    plan: rd.IncidentPlan  # only its picks matter: the step runs at once, not at an offset in a batch


@dataclass(frozen=True)
class Checkpoint:
    pass


@dataclass(frozen=True)
class Recover:
    pass


Step = Write | Delete | Checkpoint | Recover


@dataclass
class SequenceLog:
    """What one drill's sequence did, for its result."""

    steps: list[str] = field(default_factory=list)
    recoveries: int = 0
    invariant_checks: int = 0
    pending: bool = False  # an incident not yet recovered
    violation: str = ""  # the first time the invariant did not hold: the sequence stops there


def _checkpoint(drill: Drill, log: SequenceLog) -> None:
    try:
        rd.layer2_of(drill).checkpoint()
        log.steps.append("checkpoint")
    except PitrError as exc:  # not the recovery under test: the sequence goes on, the result says so
        log.steps.append(f"checkpoint refused: {exc}"[:200])


def _recover(drill: Drill, log: SequenceLog) -> None:
    details = rd.recover_surgical(point_before, rd.repair_surgically)(drill, Stopwatch()).details
    log.pending = False
    log.recoveries += 1
    earlier = details["pitr_earlier_points"]
    log.steps.append(f"recover {details['rows_restored']}" + (f" (earlier points {earlier})" if earlier else ""))


def _check_invariant(drill: Drill, log: SequenceLog) -> None:
    """The database equals seed + every acknowledged write; a violation is recorded with the steps so far."""
    seed = drill.seed
    checked = verify(drill.serving().http_url, tables=seed.verified, base=seed.tables, writes=drill.ledger.writes,
                     headers=drill.target_headers)  # fmt: skip
    log.invariant_checks += 1
    failed = [f"{c.name}: {c.detail}" for c in checked.checks if not c.ok]
    if failed or checked.loss.lost:
        log.violation = f"after {log.steps}: {failed}; {len(checked.loss.lost)} acknowledged write(s) lost"


def _run_step(drill: Drill, log: SequenceLog, step: Step, write_one: Callable[[Any], None], client: Any) -> None:
    if isinstance(step, Write):
        for _ in range(step.count):
            write_one(client)
        log.steps.append(f"write {step.count}")
    elif isinstance(step, Delete) and not log.pending:
        rd.damage(step.plan)(drill)
        log.pending = True
        log.steps.append(f"delete {drill.details['incident']['deleted']}")  # type: ignore[index]
    elif isinstance(step, Checkpoint):
        _checkpoint(drill, log)
    elif isinstance(step, Recover) and log.pending:
        _recover(drill, log)


def sequence(steps: tuple[Step, ...], plan: rd.IncidentPlan) -> Callable[[Drill], None]:
    """Outside the measured window: layer 2 streaming, then the steps with the background writers paused
    (the `write` steps are the workload), the invariant checked after each step with no incident pending; a
    last pending incident is recovered. The scenario's damage is the incident after them."""

    def run(drill: Drill) -> None:
        rd.prepare(plan)(drill)
        traffic, writer = drill.traffic, drill.writer
        if traffic is None or writer is None:
            raise RuntimeError("row deletion sequence: the workload was never started")
        log = drill.state(SequenceLog)
        traffic.pause_writers()
        client = open_client(drill.serving().http_url, drill.target_headers)
        try:
            _check_invariant(drill, log)  # before the first step too: the sequence starts from seed + ledger
            for step in steps:
                if log.violation:
                    break
                _run_step(drill, log, step, writer.write, client)
                if not log.pending:
                    _check_invariant(drill, log)
            if log.pending and not log.violation:
                _recover(drill, log)
        finally:
            client.close()
            traffic.unpause_writers()  # the application writes again before the scenario's own incident

    return run


def recover_after_sequence(drill: Drill, watch: Stopwatch) -> Recovery:
    """The scenario's own incident recovered surgically, with the sequence's record and invariant check."""
    recovery = rd.recover_surgical(point_before, rd.repair_surgically)(drill, watch)
    log = drill.state(SequenceLog)
    ok = log.invariant_checks > 0 and not log.violation
    detail = log.violation or f"{log.invariant_checks} check(s) after {len(log.steps)} step(s), all held"
    sequence = {"steps": log.steps, "recoveries": log.recoveries, "invariant_checks": log.invariant_checks}
    return Recovery({**recovery.details, "sequence": sequence},
                    (*recovery.checks, Check("sequence_invariant", ok, detail)))  # fmt: skip


def row_deletion_sequence(name: str, steps: tuple[Step, ...]) -> Scenario:
    """The steps on one drill, then one more incident, recovered surgically and verified by the runner."""
    plan = rd.IncidentPlan()
    return Scenario(
        name=name,
        title="random writes, deletions, checkpoints and surgical recoveries; the database equals the ledger between",
        layers=(2,),
        objectives=Objectives(rpo_seconds=0.0, rto_seconds=60.0, rpo_writes=0),
        arm=rd.arm,
        damage=rd.damage(plan),
        detect=rd.detect_missing_rows,
        recover=recover_after_sequence,
        prepare=sequence(steps, plan),
        fits=rd.fits(plan),
    )
