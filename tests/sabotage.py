"""A pytest plugin that breaks one recovery on purpose (DRILL_SABOTAGE=<name>), loaded with
`-p tests.sabotage`, so tests/test_drills_go_red.py can show each drill fails when its recovery is broken."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest


def _restore_noop() -> None:
    """A layer-1 restore that picks the newest backup but never restores it: a page snapshot is never
    placed as the fresh server's database, a dump never replayed. The fresh server serves an empty database."""
    import layers.recovery as recovery

    def place_nothing(database: Any, server: Any) -> None:
        server.db_dir.mkdir(parents=True, exist_ok=True)

    recovery.place = place_nothing  # type: ignore[assignment]
    recovery.replay_dump = lambda gz, url, timeout=120: None  # type: ignore[assignment]


def _page_checksum_mismatch() -> None:
    """Every page snapshot's object is altered between its checksum and its upload (a bad disk or a bad
    agent): no snapshot's SHA-256 holds, so the restore has nothing it may use."""
    import layers.snapshot as snapshot

    upload = snapshot.upload

    def flip_then_upload(catalog: Any, spool: Any, entry: Any) -> Any:
        spool.seek(spool.tell() // 2)
        byte = spool.read(1)
        spool.seek(-1, 1)
        spool.write(bytes([byte[0] ^ 0xFF]))
        return upload(catalog, spool, entry)

    snapshot.upload = flip_then_upload  # type: ignore[assignment]


def _page_corrupt_file() -> None:
    """Every downloaded page snapshot comes out of decompression with order_items' pages overwritten: the
    gate must refuse each one before any server starts on it."""
    import layers.recovery as recovery
    from fixtures.damage import damage_object

    materialize = recovery.materialize

    def corrupted(entry: Any, spool: Any, workdir: Any) -> Any:
        path = materialize(entry, spool, workdir)
        if entry.format == "page":
            damage_object(path, "order_items")
        return path

    recovery.materialize = corrupted  # type: ignore[assignment]


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
    from layers.pitr_repair import plan_across_points

    def find_only(source: Any, live: Any, scopes: Any, seed: Any) -> Any:
        return plan_across_points(source, live, scopes)

    rd.ROW_DELETION_SURGICAL = rd.row_deletion("row-deletion-surgical", rd.IncidentPlan(), "surgical", repair=find_only)


def _pitr_repair_skips_a_table() -> None:
    """The surgical repair puts back every table of the incident but the last (children) one."""
    import scenarios.row_deletion as rd

    whole = rd.repair_surgically

    def all_but_last(source: Any, live: Any, scopes: Any, seed: Any) -> Any:
        return whole(source, live, scopes[:-1], seed)

    rd.repair_surgically = all_but_last  # type: ignore[assignment]  # the random sequences repair with it too
    rd.ROW_DELETION_SURGICAL = rd.row_deletion(
        "row-deletion-surgical", rd.IncidentPlan(), "surgical", repair=all_but_last
    )


def _table_corruption_restore_damaged_copy() -> None:
    """The operator "restores" a file-level copy of the damaged database instead of a layer-1 backup: the
    drill's restore serves that copy, past the gate."""
    import shutil

    from fixtures.drill import Drill
    from layers.recovery import Candidate, Fetched, Offer

    def copy_back(drill: Any, sources: Any, mark: Any, role: str = "restored") -> Any:
        damaged = drill.primary.db_file  # the damaged server, killed, its files left in place
        server = drill.new_server(role)
        server.db_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(damaged, server.db_file)
        offer = Offer(1, "sabotage", drill.catalog.entries()[0], lambda workdir: Fetched(damaged, 0))
        mark("restore")
        return Candidate(offer, Fetched(damaged, 0), server.start(), None, (), 0)

    Drill.restore = copy_back  # type: ignore[method-assign,assignment]


def _total_loss_recover_crashes() -> None:
    """The restore tool crashes after the fresh server is up, quoting a credential in its message."""
    import dataclasses

    import scenarios.total_loss as total_loss

    def crash(drill: Any, watch: Any) -> Any:
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

    from fixtures.service_address import ServiceAddress

    real = ServiceAddress.repoint

    def late(self: ServiceAddress, upstream: tuple[str, int]) -> float:
        threading.Timer(2.0, real, args=(self, upstream)).start()
        return real(self, self.upstream)  # reports "done" without moving

    ServiceAddress.repoint = late  # type: ignore[method-assign]


def _ransomware_defences(**removed: bool) -> Callable[[], None]:
    """The ransomware drill's offsite bucket with some defences removed (fixtures.iam_regions.Defences)."""

    def apply() -> None:
        import scenarios.ransomware as rw
        from fixtures.iam_regions import Defences

        rw.RANSOMWARE = rw.ransomware(Defences(**removed))

    return apply


def _key_escrow_lost() -> None:
    """The escrowed data key never reaches the offsite bucket (the write is reported, never made)."""
    import scenarios.key_unavailable as ku
    from layers.key_escrow import escrow_key

    ku.put_escrow = lambda store, key, recovery: escrow_key(key.key_id)  # type: ignore[assignment]


def _protect_layer1_not_restarted() -> None:
    """After the recovery nobody re-arms layer 1: the pre-incident schedule (stopped with its server) stays."""
    import scenarios.protection as protection

    protection.layer1_job = lambda drill, fmt, home: drill.scheduler  # type: ignore[assignment,return-value]


def _protect_layer1_unrestorable() -> None:
    """Layer 1 is re-armed and its first backup lands, but the object is damaged in the bucket (a bad disk
    or agent): it does not restore."""
    import scenarios.protection as protection

    first_backup = protection.first_backup

    def damaged(scheduler: Any, already: int, url: str, timeout: float) -> Any:
        entry = first_backup(scheduler, already, url, timeout)
        scheduler.catalog.store.put_bytes(entry.key, b"not a backup")
        return entry

    protection.first_backup = damaged  # type: ignore[assignment]


def _protect_layer2_not_rearmed() -> None:
    """A layer-2 bucket is made for the recovered server, but sqld is never restarted with bottomless: it
    keeps running as the recovery started it."""
    import scenarios.protection as protection
    from scenarios.rearm_layer2 import Layer2Target, streams

    arm = protection.arm_layer2

    def bucket_only(step: Any, armed: Any, home: Any) -> Any:
        if streams(step.server):
            return arm(step, armed, home)
        bucket = step.drill.new_bucket(home, "layer2-after")
        db_name = f"ns-{armed['LIBSQL_BOTTOMLESS_DATABASE_ID']}:default"
        return Layer2Target(home, bucket, db_name, frozenset(), "bucket made, sqld never restarted with it")

    protection.arm_layer2 = bucket_only  # type: ignore[assignment]


def _protect_layer4_not_restarted() -> None:
    """After the region outage nobody re-arms layer 4: the stopped replicator of the lost region stays."""
    import scenarios.protection as protection

    protection.layer4_job = lambda drill, old, region: old  # type: ignore[assignment]


SABOTAGE: dict[str, Callable[[], None]] = {
    "key-escrow-lost": _key_escrow_lost,
    # Object Lock removed (and the versioning it implies): the writer's keys overwrite and delete the only copies
    "ransomware-no-object-lock": _ransomware_defences(object_lock=False, versioning=False),
    # both removed: a versioned bucket written with the primary's s3:* keys; the attacker deletes every version
    "ransomware-no-lock-shared-credentials": _ransomware_defences(
        object_lock=False, versioning=True, separate_credentials=False
    ),
    # only separate credentials removed: Object Lock alone must still hold (the drill stays green)
    "ransomware-shared-credentials": _ransomware_defences(separate_credentials=False),
    "service-repointed-late": _service_repointed_late,
    "total-loss-recover-crashes": _total_loss_recover_crashes,
    "drill-setup-crashes": _drill_setup_crashes,
    "total-loss-restore-noop": _restore_noop,
    "total-loss-page-checksum-mismatch": _page_checksum_mismatch,
    "total-loss-page-corrupt-file": _page_corrupt_file,
    "pitr-surgical-fork-after-incident": _pitr_fork_after_incident,
    "pitr-rewind-fork-after-incident": _pitr_fork_after_incident,
    "pitr-surgical-skipped": _pitr_surgical_skipped,
    "pitr-repair-skips-a-table": _pitr_repair_skips_a_table,
    "region-outage-offsite-disabled": _region_outage_offsite_disabled,
    "region-outage-wal-objects-skipped": _region_outage_wal_objects_skipped,
    "table-corruption-restore-skipped": _restore_noop,
    "table-corruption-restore-damaged-copy": _table_corruption_restore_damaged_copy,
    "protect-layer1-not-restarted": _protect_layer1_not_restarted,
    "protect-layer1-unrestorable": _protect_layer1_unrestorable,
    "protect-layer2-not-rearmed": _protect_layer2_not_rearmed,
    "protect-layer4-not-restarted": _protect_layer4_not_restarted,
}


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get("DRILL_SABOTAGE", "")
    if name not in SABOTAGE:
        raise pytest.UsageError(f"DRILL_SABOTAGE={name!r}: use one of {', '.join(SABOTAGE)}")
    SABOTAGE[name]()
