"""Region outage with layer 2 offsite too (layers 1 + 2 + 4): the primary in us-east streams its WAL to a
us-east bucket (bottomless) and takes layer-1 backups; each offsite cycle seals the newest layer-1 backup
AND every bottomless object (snapshots, WAL batches) not yet in eu-west. Then us-east disappears whole.

Recovery uses eu-west alone: (a) the newest offsite layer-1 backup that authenticates is replayed into a
fresh server; (b) the sealed bottomless objects are decrypted into a scratch bucket on a new local S3
endpoint and a fresh sqld with bottomless pointed there restores the newest generation by itself on an empty
data dir. Both are handed to the runner, which verifies each against the ledger and serves the newer sound one. With the WAL the loss is bounded by
the offsite interval (plus a batch), not by the backup interval plus the offsite interval."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fixtures.s3 import MOTO_CREDENTIALS, MotoServer, Region, S3Endpoint
from fixtures.wait import NotReady
from layers.backup import NoUsableBackup
from layers.offsite import Keyring, OffsiteKey, OffsiteSource, TamperedObject, keyring, offsite_ids, restore_objects
from layers.pitr import bottomless_env
from layers.store import S3Store
from layers.verify import Check, Verification
from reports.result import Objectives
from scenarios.base import Judged, Recovery, Scenario, Served, detect_by_monitor
from scenarios.region_outage import damage as region_damage
from scenarios.region_outage import refuses_connections, tls_details
from scenarios.table_corruption import LAYER2_ARGS, LAYER2_DATABASE_ID

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.sqld import SqldServer
    from reports.stopwatch import Stopwatch

LAYER2_PREFIX = f"ns-{LAYER2_DATABASE_ID}:default-"  # bottomless's objects of the default database


@dataclass
class OutageState:
    """Drill.state of this scenario: when us-east went away (wall clock)."""

    outage_at: float = 0.0


def arm(drill: Drill) -> None:
    config, east = drill.config, drill.primary_region
    bucket = drill.new_layer2_bucket(east)
    env = bottomless_env(east.endpoint, bucket, LAYER2_DATABASE_ID, config.pitr_batch_interval)
    drill.start_primary(env=env, args=LAYER2_ARGS)
    drill.start_workload()
    scheduler = drill.arm_backups()
    scheduler.wait_for(1, config.startup_timeout + 10 * config.backup_interval)
    key = OffsiteKey.from_env() or OffsiteKey.generate()
    drill.details["layer4_key"] = f"{key.key_id} ({key.source})"
    offsite = drill.arm_offsite(key)
    offsite.copy_objects(S3Store(east.client(), bucket), LAYER2_PREFIX)
    drill.details.update(tls_details(drill))
    cycle = config.offsite_interval + config.backup_interval + 2 * scheduler.last_seconds
    offsite.wait_for(1, 2 * cycle + 5)
    offsite.wait_cycles(1, cycle + 5)  # at least one cycle has copied layer 2's objects
    drill.details["offsite_copies_before_outage"] = len(offsite.copies)
    drill.details["layer2_objects_before_outage"] = offsite.objects_copied
    time.sleep(random.uniform(0, config.offsite_interval))  # the outage falls anywhere in the offsite cycle


def damage(drill: Drill) -> None:
    drill.state(OutageState).outage_at = time.time()
    region_damage(drill, None)


def _scratch_region(drill: Drill) -> Region:
    """A new, empty, plain-HTTP S3 endpoint "in eu-west" for the decrypted layer-2 objects (killed with the drill)."""
    west = drill.offsite_region
    server = MotoServer(f"{west.name}-scratch", drill.artifacts / "moto-scratch.log", reaper=drill.session.reaper,
                        timeout=drill.config.startup_timeout).start()  # fmt: skip
    drill.cleanups.append(server.kill)
    return Region(west.name, S3Endpoint(west.name, server.url, *MOTO_CREDENTIALS), server)


def _from_layer2(drill: Drill, offsite: S3Store, keys: Keyring) -> tuple[SqldServer | None, dict[str, Any]]:
    """Decrypt layer 2's offsite objects into a scratch bucket and start a fresh bottomless sqld on it
    (empty data dir: it restores the newest generation). (None, why) when that fails."""
    scratch = _scratch_region(drill)
    bucket = scratch.new_bucket(drill.session.tag + drill.backend[0], "layer2-restore")
    try:
        got = restore_objects(offsite, keys, S3Store(scratch.client(), bucket))
    except TamperedObject as exc:
        return None, {"layer2_restore_error": str(exc)}
    env = bottomless_env(scratch.endpoint, bucket, LAYER2_DATABASE_ID, drill.config.pitr_batch_interval)
    server = drill.new_server("eu-west-wal", env=env, args=LAYER2_ARGS)
    info = {"layer2_objects_restored": got.objects, "layer2_sealed_bytes": got.sealed_bytes,
            "layer2_scratch_endpoint": scratch.endpoint.url}  # fmt: skip
    try:
        server.start()  # empty data dir: bottomless restores the newest generation
    except NotReady as exc:
        return None, {**info, "layer2_restore_error": f"sqld refused to start: {str(exc)[:300]}"}
    return server, info


def _bounded_by_offsite_interval(drill: Drill, rpo_with_wal: float | None) -> Check:
    """The loss with the WAL copies stays within one offsite cycle (interval plus the longest cycle), a WAL
    batch, and a second of upload slack: the backup interval plays no part."""
    assert drill.offsite is not None
    config = drill.config
    bound = config.offsite_interval + drill.offsite.cycle_seconds_max + config.pitr_batch_interval + 1.0
    return Check("rpo_bounded_by_offsite_interval", rpo_with_wal is not None and rpo_with_wal <= bound,
                 f"RPO with the WAL {rpo_with_wal} s; bound {bound:.2f} s = offsite interval {config.offsite_interval:g} "
                 f"+ longest cycle {drill.offsite.cycle_seconds_max:.2f} + batch {config.pitr_batch_interval} + 1")  # fmt: skip


def _from_layer1(drill: Drill, source: OffsiteSource, watch: Stopwatch) -> tuple[Served | None, dict[str, Any]]:
    """The newest offsite layer-1 backup that passes the gate, serving (with what the gate found in a page
    file before it served); None when none does."""
    try:
        won = drill.restore([source], watch.mark, role="eu-west")
    except NoUsableBackup as exc:
        return None, {"offsite_backup_id": None, "offsite_restore_error": str(exc)}
    details = {"offsite_backup_id": won.entry.id, "offsite_backup_taken_at": won.entry.created_at,
               "offsite_backup_format": won.entry.format, "offsite_refused": won.refused_pairs}  # fmt: skip
    return Served("layer1", won.server, won.verification), details


def _judge(drill: Drill, outage_at: float, wal: dict[str, Any]) -> Callable[[Mapping[str, Verification], str], Judged]:
    """The checks that compare the two candidates' verifications: the WAL copy restored sound, the newer
    one won, and the loss with the WAL stays within one offsite cycle."""

    def judge(verified: Mapping[str, Verification], winner: str) -> Judged:
        v_wal, v_backup = verified.get("layer2"), verified.get("layer1")

        def rpo(v: Verification | None) -> tuple[float | None, int | None]:
            return (round(v.loss.rpo_seconds(outage_at), 3), len(v.loss.lost)) if v is not None else (None, None)

        (rpo_b, lost_b), (rpo_w, lost_w) = rpo(v_backup), rpo(v_wal)
        sound = {name for name, v in verified.items() if v.ok}
        wal_problem = wal.get("layer2_restore_error") or ("; ".join(v_wal.failures) if v_wal and not v_wal.ok else "")
        checks = [
            Check("layer2_offsite_restored", v_wal is not None and v_wal.ok,
                  wal_problem or f"{wal.get('layer2_objects_restored')} object(s) restored, sound"),
            Check("newest_recovery_wins", (winner == "layer2" and "layer2" in sound) or (
                  winner == "layer1" and v_wal is not None and v_backup is not None and v_backup.loss.cut > v_wal.loss.cut),
                  f"winner {winner if winner in sound else 'none'}: cut layer1={v_backup.loss.cut if v_backup else None} "
                  f"layer2={v_wal.loss.cut if v_wal else None}"),
            _bounded_by_offsite_interval(drill, rpo_w),
        ]  # fmt: skip
        return checks, {"recovered_by": winner if winner in sound else "none",
                        "rpo_backup_only_seconds": rpo_b, "rpo_backup_only_writes": lost_b,
                        "rpo_with_wal_seconds": rpo_w, "rpo_with_wal_writes": lost_w}  # fmt: skip

    return judge


def recover(drill: Drill, watch: Stopwatch) -> Recovery:
    """Both eu-west candidates brought up (the WAL copy, then the newest sound offsite backup); the runner
    verifies each and serves the newer sound one."""
    assert drill.offsite is not None and isinstance(drill.offsite.offsite, S3Store)
    east, west = drill.primary_region, drill.offsite_region
    offsite = S3Store(west.client(), drill.offsite.offsite.bucket)  # all recovery reads: eu-west and the key
    keys = keyring(drill.offsite.key)
    east_before, west_before = east.requests, west.requests
    wal_server, wal = _from_layer2(drill, offsite, keys)  # (b) layer 2 from its offsite copies
    watch.mark("restore")
    backup, restored = _from_layer1(drill, OffsiteSource(offsite, keys), watch)  # (a) the newest sound backup
    candidates = tuple(c for c in (Served("layer2", wal_server) if wal_server else None, backup) if c is not None)
    if not candidates:  # nothing came up: an empty server shows layer 3 what that costs
        drill.primary = drill.new_server("empty").start()
    east_requests, west_requests = east.requests - east_before, west.requests - west_before
    east_dead = refuses_connections(east.endpoint.url)
    east_in_env = [s.spec.name for s in (wal_server,) if s and east.endpoint.url in s.spec.env.values()]
    untouched = Check("primary_region_untouched", east_requests == 0 and east_dead and not east_in_env,
                      f"{east_requests} request(s) to {east.name} during recovery; its endpoint "
                      f"{'refuses connections' if east_dead else 'ANSWERS'}; {west_requests} request(s) to {west.name}"
                      + (f"; {east_in_env} configured with {east.endpoint.url}" if east_in_env else ""))  # fmt: skip
    details = {
        **restored, **wal,
        "requests_during_recovery": {east.name: east_requests, west.name: west_requests},
        "offsite_copies": len(drill.offsite.copies),
        "offsite_copies_held": len(offsite_ids(offsite)),
        "layer2_objects_copied": drill.offsite.objects_copied,
        "offsite_interval_seconds": drill.config.offsite_interval,
        "offsite_cycle_seconds_max": round(drill.offsite.cycle_seconds_max, 3),
        "backup_interval_seconds": drill.config.backup_interval,
    }  # fmt: skip
    return Recovery(details, (untouched,), candidates, _judge(drill, drill.state(OutageState).outage_at, wal))


REGION_OUTAGE_WAL = Scenario(
    name="region-outage-wal",
    title="primary region lost (sqld + S3); restored in the offsite region from layer-1 and layer-2 copies",
    layers=(1, 2, 4),
    # RPO: an offsite interval plus a WAL batch (the layer-2 copy), not a backup interval on top.
    objectives=Objectives(rpo_seconds=10.0, rto_seconds=60.0),
    arm=arm,
    damage=damage,
    detect=detect_by_monitor,
    recover=recover,
)
