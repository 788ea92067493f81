"""Row deletion (layers 2 + 3): while the application writes, someone deletes rows it never meant to
delete — a few seed orders with their items and attachments, and some loose order items. These
deletions are not application writes (not in the ledger), so a correct recovery brings the rows back
and layer 3 finds the seed + ledger state; a wrong one fails row counts and checksums.

Two recoveries from the same layer-2 fork (the namespace just before the incident, from the WAL that
bottomless streamed to S3):
- rewind: every table of the live database is made equal to the fork (in place, through sqld);
  every later write is lost (RPO > 0);
- surgical: the rows the incident removed are found by diffing the fork against the live database
  within the incident's scope, and inserted back; no later write is lost (RPO 0)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fixtures.seed import TABLES, install_seed
from fixtures.workload import WRITER_ID_BASE
from layers.pitr import (
    PITR_ARGS,
    PRODUCTION_BATCH_INTERVAL,
    Fork,
    Layer2,
    RowScope,
    bottomless_env,
    missing_rows,
    namespace_dir,
    point_before,
    reinsert,
    rewind_in_place,
)
from reports.result import Objectives
from scenarios.base import Scenario

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.seed import SeedInfo
    from reports.stopwatch import Stopwatch

NAMESPACE = "shop"
STAGING = "pitr-staging"
DATABASE_ID = "drill"
WATCHED = ("orders", "order_items", "attachments")  # the app check: historical (seed) rows never vanish


@dataclass(frozen=True)
class IncidentPlan:
    """What the incident deletes and when. Rows are picked as fractions of the seed's id range (so a
    plan fits any scale): whole orders go with their items and attachments; loose items go alone.
    `offset` is when, as a fraction of the batch interval after a bottomless batch flush."""

    orders: tuple[float, ...] = (0.1, 0.5, 0.9)
    loose_items: tuple[float, ...] = (0.3, 0.7)
    offset: float = 0.5

    def __post_init__(self) -> None:
        picks = (*self.orders, *self.loose_items, self.offset)
        if not self.orders or any(not 0 <= p < 1 for p in picks):
            raise ValueError(f"incident plan {self}: give at least one order; every pick and the offset in [0, 1)")

    def targets(self, seed: SeedInfo) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(order ids, loose order_item ids) in the seed."""

        def ids(picks: tuple[float, ...], table: str) -> tuple[int, ...]:
            top = seed.max_ids[table]
            return tuple(sorted({1 + int(p * top) for p in picks}))

        return ids(self.orders, "orders"), ids(self.loose_items, "order_items")

    def scopes(self, seed: SeedInfo) -> tuple[RowScope, ...]:
        """The incident's footprint, as the operator reads it from the audit log: its WHERE clauses."""
        orders, items = self.targets(seed)
        in_orders = f"order_id IN ({','.join(map(str, orders))})"
        in_items = f"id IN ({','.join(map(str, items))})" if items else "0"
        return (
            RowScope("attachments", in_orders),
            RowScope("order_items", f"{in_orders} OR {in_items}"),
            RowScope("orders", f"id IN ({','.join(map(str, orders))})"),
        )


# -- arming: the primary streams its WAL to the primary region (layer 2) ---------------------------------
def layer2_of(drill: Drill) -> Layer2:
    assert drill.primary is not None
    info = drill.details["layer2"]
    assert isinstance(info, dict)
    return Layer2(
        http_url=drill.primary.http_url,
        admin_url=drill.primary.admin_url,
        namespace=info["namespace"],
        database_id=info["database_id"],
        bucket=info["bucket"],
        s3=drill.primary_region.client(),
        batch_interval=info["batch_interval_secs"],
        timeout=drill.config.startup_timeout,
    )


def arm(drill: Drill) -> None:
    region, interval = drill.primary_region, drill.config.pitr_batch_interval
    bucket = drill.new_bucket(region, "layer2")
    server = drill.new_server(
        "primary", env=bottomless_env(region.endpoint, bucket, DATABASE_ID, interval), args=PITR_ARGS
    )
    install_seed(drill.seed, namespace_dir(server, NAMESPACE) / "data")
    server.start()
    drill.primary = server
    drill.details["sqld_version"] = server.version()
    drill.details["layer2"] = {
        "namespace": NAMESPACE,
        "database_id": DATABASE_ID,
        "bucket": bucket,
        "region": region.name,
        "batch_interval_secs": interval,
        "production_batch_interval_secs": PRODUCTION_BATCH_INTERVAL,
    }
    layer2_of(drill).create()  # adopts the seed file and snapshots it to S3
    drill.target_headers.update(layer2_of(drill).headers())
    drill.start_workload()


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
        orders, items = plan.targets(drill.seed)
        deleted: dict[str, int] = {}
        with layer2_of(drill).session() as s:
            sent = time.time()
            s.execute("BEGIN IMMEDIATE")
            for scope in plan.scopes(drill.seed):
                deleted[scope.table] = s.execute(f"DELETE FROM {scope.table} WHERE {scope.where}").affected
            s.execute("COMMIT")
            acked = time.time()
        drill.details["incident"] = {
            "at": datetime.fromtimestamp(sent, UTC).isoformat(),
            "at_epoch": sent,  # the statement was sent: it committed at or after this instant
            "acked_at_epoch": acked,
            "orders": list(orders),
            "loose_items": list(items),
            "deleted": deleted,
            "offset_in_batch": plan.offset,
        }

    return run


def detect_missing_rows(drill: Drill) -> float:
    """The application's own check: historical (seed) rows never disappear. Polls their counts every
    probe interval; the monotonic instant the check first fails."""
    seed, interval = drill.seed, drill.config.probe_interval
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t} WHERE id <= {seed.max_ids[t]})" for t in WATCHED)
    expected = tuple(seed.tables[t].count for t in WATCHED)
    deadline = time.monotonic() + drill.config.startup_timeout
    with layer2_of(drill).session(timeout=10) as s:
        while time.monotonic() < deadline:
            counts = s.execute(query).rows[0]
            if tuple(counts) != expected:
                drill.details["detected_by"] = f"app check: seed rows {dict(zip(WATCHED, counts, strict=True))}"
                return time.monotonic()
            time.sleep(interval)
    raise TimeoutError(f"the app check saw every seed row present for {drill.config.startup_timeout:g}s")


# -- recoveries --------------------------------------------------------------------------------------------
def restore_point(incident_at: float) -> float:
    """Just before the incident (a module-level step, so a sabotage can move it)."""
    return point_before(incident_at)


def _incident_at(drill: Drill) -> float:
    incident = drill.details["incident"]
    assert isinstance(incident, dict)
    return float(incident["at_epoch"])


def _fork(drill: Drill) -> tuple[Layer2, Fork]:
    layer2 = layer2_of(drill)
    return layer2, layer2.fork(STAGING, restore_point(_incident_at(drill)))


def _granularity(drill: Drill, layer2: Layer2, fork: Fork) -> dict[str, Any]:
    """Where the fork landed against the ledger: the newest workload order it holds and the first it
    lacks (their acknowledgement instants), against the requested point and the incident."""
    with layer2.session(fork.namespace) as s:
        newest = s.execute("SELECT max(id) FROM orders WHERE id > ?", [WRITER_ID_BASE]).rows[0][0]
    placed = {
        c.key: w.acked_at for w in drill.ledger.acked() if w.op == "place" for c in w.changes if c.table == "orders"
    }
    included = placed.get(newest) if newest is not None else None
    excluded = min((at for key, at in placed.items() if newest is None or int(key) > int(newest)), default=None)  # type: ignore[call-overload]
    incident = _incident_at(drill)

    def iso(at: float | None) -> str | None:
        return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()

    return {
        "pitr_requested_point": fork.timestamp + "Z",
        "pitr_newest_write_in_fork": iso(included),
        "pitr_first_write_not_in_fork": iso(excluded),
        "pitr_gap_before_incident_seconds": None if included is None else round(incident - included, 3),
        "pitr_point_to_fork_state_seconds": None if included is None else round(included - fork.requested, 3),
        "pitr_fork_seconds": round(fork.seconds, 3),
        "pitr_upload_proof": fork.proof.describe(),
    }


def recover_surgical(plan: IncidentPlan) -> Callable[[Drill, Stopwatch], dict[str, Any]]:
    def run(drill: Drill, watch: Stopwatch) -> dict[str, Any]:
        layer2, fork = _fork(drill)
        watch.mark("provision")
        with layer2.session(fork.namespace) as staging, layer2.session() as live:
            lost = missing_rows(staging, live, plan.scopes(drill.seed))
            restored = reinsert(live, lost, TABLES)
        watch.mark("restore")
        return {
            "recovery": "surgical",
            "rows_restored": {t: len(rows) for t, rows in lost.items()},
            "rows_restored_total": restored,
            **_granularity(drill, layer2, fork),
        }

    return run


def recover_rewind(drill: Drill, watch: Stopwatch) -> dict[str, Any]:
    layer2, fork = _fork(drill)
    watch.mark("provision")
    with layer2.session(fork.namespace) as staging, layer2.session() as live:
        changed = rewind_in_place(staging, live, TABLES)
    watch.mark("restore")
    incident = _incident_at(drill)
    return {
        "recovery": "rewind (in place)",
        "rows_rewritten": {t: up for t, (up, _) in changed.items() if up},
        "rows_removed": {t: drop for t, (_, drop) in changed.items() if drop},
        "writes_acked_after_incident": sum(1 for w in drill.ledger.acked() if w.acked_at > incident),
        **_granularity(drill, layer2, fork),
    }


def row_deletion(name: str, plan: IncidentPlan, recovery: str) -> Scenario:
    """The scenario for one incident plan and one recovery ('surgical' or 'rewind')."""
    if recovery == "surgical":
        recover, objectives = recover_surgical(plan), Objectives(rpo_seconds=0.0, rto_seconds=60.0, rpo_writes=0)
    elif recovery == "rewind":
        # loses the writes since the last batch flushed before the incident's second: batch interval + 1 s
        recover, objectives = recover_rewind, Objectives(rpo_seconds=5.0, rto_seconds=60.0)
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
        builtin_schema_only=True,
    )


ROW_DELETION_SURGICAL = row_deletion("row-deletion-surgical", IncidentPlan(), "surgical")
ROW_DELETION_REWIND = row_deletion("row-deletion-rewind", IncidentPlan(), "rewind")
