"""Region outage (layers 1 + 4): the whole primary region (us-east) disappears while the workload writes:
its sqld with its disk and its S3 endpoint with every layer-1 backup. A new server is provisioned "in
eu-west" and the newest offsite copy that decrypts and authenticates is replayed into it; nothing is
read from us-east (the recovery is handed the eu-west store alone, and requests per region are counted).

Variants damage the newest offsite copy as well (altered in place, truncated, sealed under a wrong key):
the recovery must refuse it, say why, and fall back to the previous copy."""

from __future__ import annotations

import functools
import io
import random
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fixtures.tls import handshake
from layers.backup import NoUsableBackup
from layers.offsite import (
    PRODUCTION_POLICY,
    Keyring,
    OffsiteKey,
    OffsiteSource,
    keyring,
    object_key,
    offsite_ids,
    open_sealed,
    seal,
)
from layers.store import ObjectStore, S3Store
from layers.verify import Check
from reports.result import Objectives
from scenarios.base import Recovery, Scenario, detect_by_monitor

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from reports.stopwatch import Stopwatch


# -- faults of the offsite copy --------------------------------------------------------------------
def _rewrite(store: ObjectStore, key: str, change: Callable[[bytes], bytes]) -> None:
    """Replace an object's bytes in place, keeping its metadata (as an attacker or a bad disk would)."""
    with tempfile.TemporaryFile() as buf:
        meta = store.get(key, buf)
        buf.seek(0)
        store.put_bytes(key, change(buf.read()), meta)


def alter_in_place(store: ObjectStore, backup_id: str, key: OffsiteKey) -> str:
    def flip(data: bytes) -> bytes:
        at = len(data) // 2
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]

    _rewrite(store, object_key(backup_id), flip)
    return "one bit flipped in the middle of the sealed object"


def truncate(store: ObjectStore, backup_id: str, key: OffsiteKey) -> str:
    _rewrite(store, object_key(backup_id), lambda data: data[: len(data) // 2])
    return "sealed object cut to half its size"


def reseal_under_wrong_key(store: ObjectStore, backup_id: str, key: OffsiteKey) -> str:
    """The object decrypted and sealed again under another 256-bit key carrying the same key id."""
    impostor = OffsiteKey(key.key_id, OffsiteKey.generate().secret, "impostor")
    name = object_key(backup_id)

    def reseal(data: bytes) -> bytes:
        plain, sealed = io.BytesIO(), io.BytesIO()
        open_sealed(io.BytesIO(data), plain, keyring(key), name)
        plain.seek(0)
        seal(plain, sealed, impostor, name)
        return sealed.getvalue()

    _rewrite(store, name, reseal)
    return f"object re-sealed under a different key labelled {key.key_id}"


@dataclass(frozen=True)
class OffsiteFault:
    name: str
    apply: Callable[[ObjectStore, str, OffsiteKey], str]  # (offsite store, backup id, key) -> what was done
    caught_by: str  # words the refusal must contain


FAULTS = (
    OffsiteFault("tampered", alter_in_place, "authentication failed"),
    OffsiteFault("truncated", truncate, "truncated"),
    OffsiteFault("wrong-key", reseal_under_wrong_key, "authentication failed at chunk 0"),
)


# -- the scenario steps ------------------------------------------------------------------------------
def arm(drill: Drill, fault: OffsiteFault | None) -> None:
    drill.start_primary()
    drill.start_workload()
    scheduler = drill.arm_backups()
    config = drill.config
    scheduler.wait_for(1, config.startup_timeout + 10 * config.backup_interval)
    key = OffsiteKey.from_env() or OffsiteKey.generate()
    drill.details["layer4_key"] = f"{key.key_id} ({key.source})"
    offsite = drill.arm_offsite(key)
    drill.details.update(tls_details(drill))
    # A fault case needs an older copy to fall back to. Fewer copies are recorded, not fatal: the
    # recovery then shows what an outage without them costs (and the drill goes red).
    wanted = 1 if fault is None else 2
    cycle = config.offsite_interval + config.backup_interval + 2 * scheduler.last_seconds  # a copy ~ a backup
    offsite.wait_for(wanted, (wanted + 1) * cycle + 5)
    drill.details["offsite_copies_before_outage"] = len(offsite.copies)
    time.sleep(random.uniform(0, config.offsite_interval))  # the outage falls anywhere in the offsite cycle


def tls_details(drill: Drill) -> dict[str, Any]:
    endpoint = drill.offsite_region.endpoint
    if not endpoint.url.startswith("https://"):
        return {"offsite_tls": f"none: {endpoint.url} is plain HTTP (use {drill.config.offsite_region}=moto+tls)"}
    ca = endpoint.verify if isinstance(endpoint.verify, str) else None
    if ca is None:
        return {"offsite_tls": "system CA bundle (not measured)"}
    seen = handshake(endpoint.url, ca)
    return {"offsite_tls": f"{seen.version} {seen.cipher}, verified against the drill CA"}


def damage(drill: Drill, fault: OffsiteFault | None) -> None:
    assert drill.primary is not None and drill.scheduler is not None and drill.offsite is not None
    drill.region_outage(drill.primary_region)  # us-east's S3 endpoint and every layer-1 backup: gone
    drill.primary.destroy_storage()  # us-east's sqld and its disk: gone
    drill.scheduler.stop()  # the layer-1 and layer-4 jobs ran in us-east: gone with it
    drill.offsite.stop()
    if fault is not None:
        store = drill.offsite.offsite
        held = offsite_ids(store)
        if held:
            drill.details["offsite_fault"] = (
                f"{fault.name} on {held[0]}: {fault.apply(store, held[0], drill.offsite.key)}"
            )


def refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 80), timeout=1).close()
    except OSError:
        return True
    return False


# How the recovery gets the layer-4 key: (drill, watch, the offsite store) -> the keys; raises NoUsableBackup
KeysFor = Callable[["Drill", "Stopwatch", ObjectStore], Keyring]


def held_key(drill: Drill, watch: Stopwatch, offsite: ObjectStore) -> Keyring:
    """The key the layer-4 job sealed with (from the environment, or held in memory for the drill)."""
    assert drill.offsite is not None
    return keyring(drill.offsite.key)


def recover(drill: Drill, watch: Stopwatch, fault: OffsiteFault | None, keys_for: KeysFor = held_key) -> Recovery:
    assert drill.offsite is not None and isinstance(drill.offsite.offsite, S3Store)
    east, west = drill.primary_region, drill.offsite_region
    # Everything recovery may use: the eu-west bucket through a fresh eu-west client, and the key.
    offsite = S3Store(west.client(), drill.offsite.offsite.bucket)
    east_before, west_before = east.requests, west.requests
    try:
        keys = keys_for(drill, watch, offsite)
        won = drill.restore([OffsiteSource(offsite, keys)], watch.mark, role="eu-west")
        drill.primary = won.server
        restored: dict[str, Any] = {
            "offsite_backup_id": won.entry.id, "offsite_backup_taken_at": won.entry.created_at,
            "offsite_backup_format": won.entry.format,
            "offsite_backup_replicated_at": won.fetched.replicated_at, "offsite_key_id": won.fetched.key_id,
            "offsite_refused": won.refused_pairs, "recovery_bytes_downloaded": won.bytes_downloaded,
        }  # fmt: skip
    except NoUsableBackup as exc:  # a new empty server: verification says what that costs
        restored = {"offsite_backup_id": None, "offsite_restore_error": str(exc)}
        drill.primary = drill.new_server("eu-west").start()
        watch.mark("provision")
    east_requests, west_requests = east.requests - east_before, west.requests - west_before
    east_dead = refuses_connections(east.endpoint.url)
    checks = [
        Check("primary_region_untouched", east_requests == 0 and east_dead,
              f"{east_requests} request(s) to {east.name} during recovery; its endpoint "
              f"{'refuses connections' if east_dead else 'ANSWERS'}; {west_requests} request(s) to {west.name}"),
        Check("offsite_restored", restored["offsite_backup_id"] is not None,
              restored.get("offsite_restore_error") or f"restored offsite copy {restored['offsite_backup_id']}"),
    ]  # fmt: skip
    if fault is not None:
        refused = restored.get("offsite_refused") or []
        caught = bool(refused) and fault.caught_by in refused[0][1]
        checks.append(Check(f"offsite_{fault.name}_refused", caught,
                            f"refused: {refused[0][1] if refused else 'nothing'}; restored {restored['offsite_backup_id']}"))  # fmt: skip
    return Recovery(
        {
            **restored,
            "requests_during_recovery": {east.name: east_requests, west.name: west_requests},
            "offsite_copies": len(drill.offsite.copies),
            "offsite_copies_held": len(offsite_ids(offsite)),
            "offsite_bytes_moved": drill.offsite.bytes_moved,
            "offsite_copy_seconds_max": round(max((c.seconds for c in drill.offsite.copies), default=0.0), 4),
            "offsite_interval_seconds": drill.config.offsite_interval,
            "layer4_production_policy": PRODUCTION_POLICY.describe,
        },
        tuple(checks),
    )


def region_outage(fault: OffsiteFault | None = None) -> Scenario:
    suffix = f"-{fault.name}" if fault else ""
    return Scenario(
        name=f"region-outage{suffix}",
        title="primary region lost (sqld + S3); restored in the offsite region"
        + (f", newest offsite copy {fault.name}" if fault else ""),
        layers=(1, 4),
        # RPO: a backup interval plus an offsite interval (two of each when the newest copy is refused).
        objectives=Objectives(rpo_seconds=20.0, rto_seconds=60.0),
        arm=functools.partial(arm, fault=fault),
        damage=functools.partial(damage, fault=fault),
        detect=detect_by_monitor,
        recover=functools.partial(recover, fault=fault),
    )


REGION_OUTAGE = region_outage()
REGION_OUTAGE_FAULTS = tuple(region_outage(f) for f in FAULTS)
