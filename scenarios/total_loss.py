"""Total database loss (the seed: layers 1 + 3, full restore): the server and all its storage are
destroyed while the workload writes; the newest layer-1 backup that passes the gate is restored into a
fresh server (a page snapshot by file, checked before the server starts on it; a dump by replay)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from layers.backup import NoUsableBackup
from layers.recovery import Layer1Source
from layers.verify import Check
from reports.result import Objectives
from scenarios.base import Recovery, Scenario, detect_by_monitor

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from reports.stopwatch import Stopwatch


def arm(drill: Drill, fmt: str | None) -> None:
    drill.start_primary()
    drill.start_workload()
    drill.arm_backups(fmt)


def damage(drill: Drill) -> None:
    assert drill.primary is not None
    drill.primary.destroy_storage()  # container (or process) and its storage, gone


def recover(drill: Drill, watch: Stopwatch) -> Recovery:
    assert drill.catalog is not None and drill.scheduler is not None
    drill.scheduler.stop()  # nothing left to back up
    taken = {"backup_cycle_seconds": [round(s, 3) for s in drill.scheduler.seconds]}
    try:
        won = drill.restore([Layer1Source(drill.catalog)], watch.mark)
    except NoUsableBackup as exc:  # nothing serves: an empty server shows layer 3 what that costs
        drill.primary = drill.new_server("empty").start()
        watch.mark("provision")
        return Recovery({**taken, "backup_id": None}, (Check("layer1_restored", False, str(exc)[:1000]),))
    drill.primary = won.server
    return Recovery(
        {
            **taken,
            "backup_id": won.entry.id,
            "backup_taken_at": won.entry.created_at,
            "backup_bytes": won.entry.bytes,
            "backup_replication_index": won.entry.replication_index,
            "restored_by": "file, verified before serving" if won.verification else "dump replay, gated over Hrana",
            "backups_refused": won.refused_pairs,
        }
    )


def total_loss(fmt: str | None = None) -> Scenario:
    """`fmt`: the layer-1 format this drill backs up with (None: drill_backup_format)."""
    return Scenario(
        name="total-loss" + (f"-{fmt}" if fmt else ""),
        title="total database loss: server and storage destroyed" + (f" ({fmt} backups)" if fmt else ""),
        layers=(1,),
        objectives=Objectives(rpo_seconds=15.0, rto_seconds=60.0),
        arm=functools.partial(arm, fmt=fmt),
        damage=damage,
        detect=detect_by_monitor,
        recover=recover,
    )


TOTAL_LOSS = total_loss()  # drill_backup_format (default page)
TOTAL_LOSS_DUMP = total_loss("dump")  # the portable format, drilled on every run too
