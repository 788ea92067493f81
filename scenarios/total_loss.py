"""Total database loss (the seed: layers 1 + 3, full restore): the server and all its storage are
destroyed while the workload writes; a fresh server is provisioned and the newest verified layer-1
backup restored into it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from layers.backup import restore_latest
from reports.result import Objectives
from scenarios.base import Scenario, detect_by_monitor

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from reports.stopwatch import Stopwatch


def arm(drill: Drill) -> None:
    drill.start_primary()
    drill.start_workload()
    drill.arm_backups()


def damage(drill: Drill) -> None:
    assert drill.primary is not None
    drill.primary.destroy_storage()  # container (or process) and its storage, gone


def recover(drill: Drill, watch: Stopwatch) -> dict[str, Any]:
    assert drill.catalog is not None and drill.scheduler is not None
    drill.scheduler.stop()  # nothing left to back up
    fresh = drill.new_server("restored")
    fresh.start()
    watch.mark("provision")
    outcome = restore_latest(drill.catalog, fresh.http_url)
    watch.mark("restore")
    drill.primary = fresh
    return {
        "backup_id": outcome.entry.id,
        "backup_taken_at": outcome.entry.created_at,
        "backup_bytes": outcome.bytes,
        "backups_refused": [list(s) for s in outcome.skipped],
        "backups_taken": drill.scheduler.succeeded,
    }


TOTAL_LOSS = Scenario(
    name="total-loss",
    title="total database loss: server and storage destroyed",
    layers=(1,),
    objectives=Objectives(rpo_seconds=15.0, rto_seconds=60.0),
    arm=arm,
    damage=damage,
    detect=detect_by_monitor,
    recover=recover,
)
