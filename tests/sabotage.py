"""A pytest plugin that breaks one recovery on purpose (DRILL_SABOTAGE=<name>), loaded with
`-p tests.sabotage`, so tests/test_drills_go_red.py can show each drill fails when its recovery is broken."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest


def _total_loss_restore_noop() -> None:
    """Layer-1 restore that picks the newest backup but never replays it into the fresh server."""
    import scenarios.total_loss as total_loss
    from layers.backup import RestoreOutcome

    def restore_noop(catalog: Any, target_url: str) -> RestoreOutcome:
        entry = catalog.entries()[0]
        return RestoreOutcome(entry, (), entry.bytes)

    total_loss.restore_latest = restore_noop  # type: ignore[assignment]


def _region_outage_offsite_disabled() -> None:
    """Layer 4 switched off: the offsite replicator runs but never copies anything to eu-west."""
    from layers.offsite import OffsiteReplicator

    OffsiteReplicator.run_once = lambda self: None  # type: ignore[method-assign]


def _region_outage_wal_objects_skipped() -> None:
    """Layer 4 copies the layer-1 backups but never layer 2's objects: the WAL restore comes back empty."""
    from layers.offsite import OffsiteReplicator

    OffsiteReplicator._copy_objects = lambda self, source, prefix: None  # type: ignore[method-assign]


def _pitr_fork_after_incident() -> None:
    """Layer 2 forks to a point after the incident instead of just before it (the operator's typo)."""
    import math
    import time

    import scenarios.row_deletion as rd

    def after(incident_at: float) -> float:
        point = math.floor(incident_at) + 2.0
        time.sleep(max(0.0, point - time.time() + 0.1))  # the fork refuses points in the future
        return point

    rd.ROW_DELETION_SURGICAL = rd.row_deletion("row-deletion-surgical", rd.IncidentPlan(), "surgical", point=after)
    rd.ROW_DELETION_REWIND = rd.row_deletion("row-deletion-rewind", rd.IncidentPlan(), "rewind", point=after)


def _pitr_surgical_skipped() -> None:
    """The surgical repair finds the removed rows in the fork but never puts them back."""
    import scenarios.row_deletion as rd
    from layers.pitr import plan_repair

    def find_only(staging: Any, live: Any, scopes: Any, seed: Any) -> dict[str, int]:
        return plan_repair(staging, live, scopes).counts

    rd.ROW_DELETION_SURGICAL = rd.row_deletion("row-deletion-surgical", rd.IncidentPlan(), "surgical", repair=find_only)


def _pitr_repair_skips_a_table() -> None:
    """The surgical repair puts back every table of the incident but the last (children) one."""
    import scenarios.row_deletion as rd

    whole = rd.repair_surgically

    def all_but_last(staging: Any, live: Any, scopes: Any, seed: Any) -> dict[str, int]:
        return whole(staging, live, scopes[:-1], seed)

    rd.repair_surgically = all_but_last  # type: ignore[assignment]  # the random sequences repair with it too
    rd.ROW_DELETION_SURGICAL = rd.row_deletion(
        "row-deletion-surgical", rd.IncidentPlan(), "surgical", repair=all_but_last
    )


def _table_corruption_restore_skipped() -> None:
    """The integrity-gated layer-1 restore picks a backup but never replays it: the fresh server stays empty."""
    import scenarios.table_corruption as tc

    tc.restore_sound = lambda catalog, first, provision, tables: tc.SoundRestore(catalog.entries()[0], first, (), 0)  # type: ignore[assignment]


def _table_corruption_restore_damaged_copy() -> None:
    """The operator "restores" a file-level copy of the damaged database instead of a layer-1 backup."""
    import dataclasses
    import shutil

    import scenarios.table_corruption as tc

    def recover(drill: Any, watch: Any) -> dict[str, Any]:
        damaged = drill.primary.db_file

        def copy_back(catalog: Any, first: Any, provision: Any, tables: Any) -> Any:
            first.kill()
            first.db_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(damaged, first.db_file)
            return tc.SoundRestore(catalog.entries()[0], first.start(), (), 1)

        tc.restore_sound = copy_back  # type: ignore[assignment]
        return tc.recover(drill, watch)

    for name, scenario in tc.SCENARIOS.items():
        tc.SCENARIOS[name] = dataclasses.replace(scenario, recover=recover)


def _total_loss_recover_crashes() -> None:
    """The restore tool crashes after the fresh server is up, quoting a credential in its message."""
    import dataclasses

    import scenarios.total_loss as total_loss

    def crash(drill: Any, watch: Any) -> dict[str, Any]:
        drill.new_server("restored").start()
        watch.mark("provision")
        raise RuntimeError(f"restore tool crashed; its S3 secret was {os.environ.get('DRILL_SABOTAGE_SECRET', '')}")

    total_loss.TOTAL_LOSS = dataclasses.replace(total_loss.TOTAL_LOSS, recover=crash)


def _drill_setup_crashes() -> None:
    """The drill cannot even be set up (its fixture raises): no scenario step runs, no result is recorded."""
    from fixtures.drill import Drill

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("sabotage: the drill's resources cannot be set up")

    Drill.__init__ = refuse  # type: ignore[method-assign]


def _service_repointed_late() -> None:
    """The failover is reported done, but the service address follows the recovered server 2 s later."""
    import threading

    from fixtures.service_proxy import ServiceProxy

    real = ServiceProxy.repoint

    def late(self: ServiceProxy, upstream: tuple[str, int]) -> float:
        threading.Timer(2.0, real, args=(self, upstream)).start()
        return real(self, self.upstream)  # reports "done" without moving

    ServiceProxy.repoint = late  # type: ignore[method-assign]


SABOTAGE: dict[str, Callable[[], None]] = {
    "service-repointed-late": _service_repointed_late,
    "total-loss-recover-crashes": _total_loss_recover_crashes,
    "drill-setup-crashes": _drill_setup_crashes,
    "total-loss-restore-noop": _total_loss_restore_noop,
    "pitr-surgical-fork-after-incident": _pitr_fork_after_incident,
    "pitr-rewind-fork-after-incident": _pitr_fork_after_incident,
    "pitr-surgical-skipped": _pitr_surgical_skipped,
    "pitr-repair-skips-a-table": _pitr_repair_skips_a_table,
    "region-outage-offsite-disabled": _region_outage_offsite_disabled,
    "region-outage-wal-objects-skipped": _region_outage_wal_objects_skipped,
    "table-corruption-restore-skipped": _table_corruption_restore_skipped,
    "table-corruption-restore-damaged-copy": _table_corruption_restore_damaged_copy,
}


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get("DRILL_SABOTAGE", "")
    if name not in SABOTAGE:
        raise pytest.UsageError(f"DRILL_SABOTAGE={name!r}: use one of {', '.join(SABOTAGE)}")
    SABOTAGE[name]()
