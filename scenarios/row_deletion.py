"""Row deletion (layers 2 + 3), on any schema: while the application writes, an operator deletes rows it
never meant to delete (scenarios/incident.py plans them from the schema and the seed: rows of the largest
referenced table with every row that references them, and some loose rows). These deletions are not
application writes (not in the ledger), so a correct recovery brings the rows back and layer 3 finds the
seed + ledger state; a wrong one fails row counts and checksums.

Two recoveries from the same layer-2 fork (the namespace just before the incident, from the WAL that
bottomless streamed to S3):
- rewind: every table of the live database is made equal to the fork (in place, through sqld);
  every later write is lost (RPO > 0);
- surgical: within the incident's scope (per table, the rows it deleted or cleared), the fork's rows are
  put back into the live database; no later write is lost (RPO 0). Rows the fork cannot tell (an earlier
  repair of them too recent for any point before the incident) come from earlier points
  (layers/pitr_repair.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fixtures.seed import install_seed
from layers.pitr import (
    PITR_ARGS,
    PRODUCTION_BATCH_INTERVAL,
    Fork,
    Layer2,
    RepairPlan,
    RowScope,
    apply_repair,
    bottomless_env,
    namespace_dir,
    point_before,
    rewind_in_place,
)
from layers.pitr_repair import RepairSource, plan_across_points
from reports.result import Objectives
from scenarios.base import Recovery, Scenario
from scenarios.incident import Incident, Picks, pin_referenced, plan_incident, row_key
from scenarios.pitr_checks import granularity, historical_rows

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.hrana import HranaSession
    from fixtures.seed import SeedInfo
    from reports.stopwatch import Stopwatch

NAMESPACE = "shop"
STAGING = "pitr-staging"
DATABASE_ID = "drill"

Repair = Callable[[RepairSource, "HranaSession", tuple[RowScope, ...], "SeedInfo"], RepairPlan]


@dataclass(frozen=True)
class IncidentPlan:
    """What the incident deletes (Picks: fractions of the seed rows of the chosen tables) and when:
    `offset` as a fraction of the batch interval after a bottomless batch flush."""

    picks: Picks = field(default_factory=Picks)
    offset: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.offset < 1:
            raise ValueError(f"incident plan {self}: the offset is in [0, 1)")


@dataclass
class RowDeletionState:
    """One drill's run of the scenario: its layer 2 and the incident as it happened."""

    layer2: Layer2 | None = None
    incident: Incident | None = None
    sent_at: float = 0.0  # the incident's statements were sent: they committed at or after this instant
    forks: int = 0  # forks made so far (each recovery forks into namespaces of its own)

    def fork_name(self) -> str:
        """A new namespace name for the next fork."""
        self.forks += 1
        return STAGING if self.forks == 1 else f"{STAGING}{self.forks}"


def plan_for(seed: SeedInfo, plan: IncidentPlan) -> Incident:
    counts = {t: d.count for t, d in seed.tables.items()}
    return plan_incident(seed.schema, seed.path, counts, plan.picks)


def fits(plan: IncidentPlan) -> Callable[[SeedInfo], None]:
    """SchemaError (naming the tables and the fix) when the seed cannot carry the incident or its check."""

    def check(seed: SeedInfo) -> None:
        plan_for(seed, plan)
        historical_rows(seed)

    return check


# -- arming: the primary streams its WAL to the primary region (layer 2) ---------------------------------
def arm(drill: Drill) -> None:
    region, interval = drill.primary_region, drill.config.pitr_batch_interval
    bucket = drill.new_layer2_bucket(region, namespace=NAMESPACE, database_id=DATABASE_ID,
                                     production_batch_interval_secs=PRODUCTION_BATCH_INTERVAL)  # fmt: skip
    server = drill.new_server(
        "primary", env=bottomless_env(region.endpoint, bucket, DATABASE_ID, interval), args=PITR_ARGS
    )
    install_seed(drill.seed, namespace_dir(server, NAMESPACE) / "data")
    server.start()
    drill.primary = server
    drill.details["sqld_version"] = server.version()
    layer2 = Layer2(
        http_url=server.http_url, admin_url=server.admin_url, namespace=NAMESPACE, database_id=DATABASE_ID,
        bucket=bucket, s3=region.client(), batch_interval=interval, timeout=drill.config.startup_timeout,
    )  # fmt: skip
    drill.state(RowDeletionState).layer2 = layer2
    layer2.create()  # adopts the seed file and snapshots it to S3
    drill.target_headers.update(layer2.headers())
    drill.start_workload()


def layer2_of(drill: Drill) -> Layer2:
    layer2 = drill.state(RowDeletionState).layer2
    if layer2 is None:
        raise RuntimeError("row deletion: layer 2 was never armed")
    return layer2


def prepare(plan: IncidentPlan) -> Callable[[Drill], None]:
    """Layer 2 streams (two batches in S3), then wait for a batch flush and `plan.offset` of an interval."""

    def run(drill: Drill) -> None:
        layer2 = layer2_of(drill)
        layer2.wait_for_batches(2, timeout=layer2.batch_interval * 4 + drill.config.startup_timeout)
        flushed = layer2.wait_for_flush(timeout=layer2.batch_interval * 3 + 5)
        time.sleep(max(0.0, flushed + plan.offset * layer2.batch_interval - time.time()))

    return run


# -- the incident ------------------------------------------------------------------------------------------
def damage(plan: IncidentPlan) -> Callable[[Drill], None]:
    def run(drill: Drill) -> None:
        state = drill.state(RowDeletionState)
        incident = plan_for(drill.seed, plan)
        with layer2_of(drill).session() as s:
            sent = time.time()
            s.execute("BEGIN IMMEDIATE")
            pin_referenced(incident, drill.seed.schema, s)
            affected = {}
            for table, sql, args in incident.statements():
                affected[table] = s.execute(sql, args).affected
            s.execute("COMMIT")
            acked = time.time()
        state.incident, state.sent_at = incident, sent
        drill.details["incident"] = {
            **incident.describe(), "statements_affected": affected, "offset_in_batch": plan.offset,
            "at": datetime.fromtimestamp(sent, UTC).isoformat(), "at_epoch": sent, "acked_at_epoch": acked,
        }  # fmt: skip

    return run


def detect_missing_rows(drill: Drill) -> float:
    """The application's own check, derived from the schema: historical (seed) rows never disappear.
    Polls every probe interval; the monotonic instant the check first fails."""
    query, expected = historical_rows(drill.seed)
    deadline = time.monotonic() + drill.config.startup_timeout
    with layer2_of(drill).session(timeout=10) as s:
        while time.monotonic() < deadline:
            counts = tuple(s.execute(query).rows[0])
            if counts != tuple(expected.values()):
                drill.details["detected_by"] = f"app check: seed rows {dict(zip(expected, counts, strict=True))}"
                return time.monotonic()
            time.sleep(drill.config.probe_interval)
    raise TimeoutError(f"the app check saw every seed row present for {drill.config.startup_timeout:g}s")


# -- recoveries --------------------------------------------------------------------------------------------
def _fork(drill: Drill, point: Callable[[float], float]) -> tuple[Layer2, Fork, Incident]:
    state = drill.state(RowDeletionState)
    if state.incident is None:
        raise RuntimeError("row deletion: no incident happened")
    layer2 = layer2_of(drill)
    return layer2, layer2.fork(state.fork_name(), point(state.sent_at)), state.incident


def _granularity(drill: Drill, layer2: Layer2, fork: Fork) -> dict[str, Any]:
    return granularity(drill, layer2, fork, drill.state(RowDeletionState).sent_at)


def repair_surgically(
    source: RepairSource, live: HranaSession, scopes: tuple[RowScope, ...], seed: SeedInfo
) -> RepairPlan:
    """Put back, from the fork (and earlier points for rows it cannot tell), the rows within the incident's
    scopes; the plan written."""
    plan = plan_across_points(source, live, scopes)
    columns = {s.table: [c.name for c in seed.schema.table(s.table).columns] for s in scopes}
    apply_repair(live, plan, scopes, columns)
    return plan


def recover_surgical(point: Callable[[float], float], repair: Repair) -> Callable[[Drill, Stopwatch], Recovery]:
    def run(drill: Drill, watch: Stopwatch) -> Recovery:
        layer2, fork, incident = _fork(drill, point)
        watch.mark("provision")
        state = drill.state(RowDeletionState)
        source = RepairSource(layer2, fork, state.sent_at, state.fork_name)
        with layer2.session() as live:
            plan = repair(source, live, incident.scopes(), drill.seed)
        watch.mark("restore")
        restored = plan.counts
        return Recovery({"recovery": "surgical", "rows_restored": restored,
                         "rows_restored_total": sum(restored.values()), "pitr_earlier_points": list(plan.earlier),
                         **_granularity(drill, layer2, fork)})  # fmt: skip

    return run


def recover_rewind(point: Callable[[float], float]) -> Callable[[Drill, Stopwatch], Recovery]:
    def run(drill: Drill, watch: Stopwatch) -> Recovery:
        layer2, fork, _ = _fork(drill, point)
        watch.mark("provision")
        schema = drill.seed.schema
        tables = [(t, row_key(schema.table(t)), [c.name for c in schema.table(t).columns])
                  for t in schema.insertion_order()]  # fmt: skip
        with layer2.session(fork.namespace) as staging, layer2.session() as live:
            changed = rewind_in_place(staging, live, tables)
        watch.mark("restore")
        sent_at = drill.state(RowDeletionState).sent_at
        return Recovery(
            {
                "recovery": "rewind (in place)",
                "rows_rewritten": {t: up for t, (up, _) in changed.items() if up},
                "rows_removed": {t: drop for t, (_, drop) in changed.items() if drop},
                "writes_acked_after_incident": sum(1 for w in drill.ledger.acked() if w.acked_at > sent_at),
                **_granularity(drill, layer2, fork),
            }
        )

    return run


def row_deletion(
    name: str, plan: IncidentPlan, recovery: str, *, point: Callable[[float], float] = point_before,
    repair: Repair = repair_surgically,
) -> Scenario:  # fmt: skip
    """The scenario for one incident plan and one recovery ('surgical' or 'rewind'), forking layer 2 at
    `point(incident instant)` (just before the incident)."""
    if recovery == "surgical":
        recover, objectives = (
            recover_surgical(point, repair),
            Objectives(rpo_seconds=0.0, rto_seconds=60.0, rpo_writes=0),
        )
    elif recovery == "rewind":
        # loses the writes since the last batch flushed before the incident's second: batch interval + 1 s
        recover, objectives = recover_rewind(point), Objectives(rpo_seconds=5.0, rto_seconds=60.0)
    else:
        raise ValueError(f"recovery {recovery!r}: use 'surgical' or 'rewind'")
    return Scenario(
        name=name,
        title=f"rows deleted by mistake, {recovery} recovery from a point-in-time fork",
        layers=(2,),
        objectives=objectives,
        arm=arm,
        damage=damage(plan),
        detect=detect_missing_rows,
        recover=recover,
        prepare=prepare(plan),
        fits=fits(plan),
    )


ROW_DELETION_SURGICAL = row_deletion("row-deletion-surgical", IncidentPlan(), "surgical")
ROW_DELETION_REWIND = row_deletion("row-deletion-rewind", IncidentPlan(), "rewind")
