"""Ransomware (layers 1 + 4, recovered through layer 4): an attacker holding what the primary region holds
(its credentials, and the layer-4 job's offsite writer keys, as that job runs there) stops the backup jobs,
drops the database's tables, deletes every object its keys reach in the primary region (the layer-1
backups), then tries to destroy the offsite copies with every key it holds: delete each version, overwrite
each object with an encrypted copy, delete it plainly, delete the bucket.

The drill runs on two accounts of its own (fixtures.iam_regions: one moto_server per region, IAM enforced).
Defences: separate credentials (the primary's keys are not valid in the offsite account; the offsite writer
may put, get, list and plainly delete, nothing else) and S3 Object Lock in COMPLIANCE mode with a default
retention (a locked version cannot be deleted, a plain delete only adds a delete marker, an overwrite only
adds a version). Recovery reads the offsite bucket version by version with a read-only identity kept apart
(layers.offsite_versions), skipping delete markers and refusing versions that do not authenticate (an
overwrite cannot: layer 4 is AES-256-GCM), into a clean server; nothing is read from the primary region."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fixtures.attacker import NOT_TRIED, Attacker
from fixtures.hrana import HranaSession
from fixtures.iam_regions import Defences, IamRegions, open_iam_regions
from layers.backup import NoUsableBackup
from layers.offsite import OffsiteKey, keyring
from layers.offsite_versions import Census, VersionedOffsiteSource, census, layer4_versions
from layers.store import STORE_ERRORS, S3Store
from layers.verify import Check
from reports.result import Objectives
from scenarios.base import Recovery, Scenario

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.s3 import Region
    from reports.stopwatch import Stopwatch

NO_SURVIVOR = "no offsite copy survived the attack"


@dataclass
class RansomwareState:
    regions: IamRegions | None = None
    key: OffsiteKey | None = None
    attacker: Attacker | None = None


def arm(drill: Drill, defences: Defences) -> None:
    config = drill.config
    names = (config.primary_region, config.offsite_region)
    regions = open_iam_regions(names, drill.artifacts, drill.session.reaper, config.startup_timeout, defences)
    drill.cleanups.append(regions.close)
    drill.own_regions = {regions.primary.name: regions.primary, regions.offsite.name: regions.offsite}
    state = drill.state(RansomwareState)
    state.regions, state.key = regions, OffsiteKey.from_env() or OffsiteKey.generate()
    drill.details.update(defences=defences.describe(), iam_enforced=regions.enforced,
                         layer4_key=f"{state.key.key_id} ({state.key.source})")  # fmt: skip
    drill.start_primary()
    drill.start_workload()
    scheduler = drill.arm_backups()
    scheduler.wait_for(1, config.startup_timeout + 10 * config.backup_interval)
    offsite = drill.arm_offsite(state.key, S3Store(regions.offsite.client(), regions.bucket))
    cycle = config.offsite_interval + config.backup_interval + 2 * scheduler.last_seconds
    offsite.wait_for(1, 2 * cycle + 5)
    drill.details["offsite_copies_before_attack"] = len(offsite.copies)


def drop_tables(url: str, headers: dict[str, str]) -> list[str]:
    """Every view and table of the database dropped (foreign keys off for the stream); the names dropped."""
    with HranaSession(url, timeout=30, headers=headers) as s:
        rows = s.execute("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'table') "
                         "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table'").rows  # fmt: skip
        s.execute("PRAGMA foreign_keys = OFF")
        for kind, name in rows:
            s.execute(f'DROP {str(kind).upper()} IF EXISTS "{str(name).replace(chr(34), chr(34) * 2)}"')
    return [str(name) for _, name in rows]


def damage(drill: Drill) -> None:
    assert drill.primary is not None and drill.scheduler is not None and drill.offsite is not None
    state = drill.state(RansomwareState)
    assert state.regions is not None
    regions, attacker = state.regions, Attacker()
    state.attacker = attacker
    drill.scheduler.stop()  # the attacker stops the backup jobs it finds on the host first
    drill.offsite.stop()
    started = time.monotonic()
    dropped = drop_tables(drill.primary.http_url, drill.target_headers)
    wiped = attacker.wipe(regions.primary, "primary")
    for region in regions.attacker_offsite:
        attacker.attack_offsite(region, region_identity(regions, region), regions.bucket)
    west = regions.offsite.name
    drill.details["attack"] = {
        "tables_dropped": len(dropped), "primary_objects_destroyed": wiped,
        "offsite": attacker.summary(west), "primary": attacker.summary(regions.primary.name),
        "offsite_refused": attacker.count("refused", west), "offsite_absorbed": attacker.count("absorbed", west),
        "offsite_destroyed": attacker.count("destroyed", west),
        "not_tried": list(NOT_TRIED), "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip


def region_identity(regions: IamRegions, region: Region) -> str:
    """Which key the attacker uses: the primary's, or the offsite writer's it found on the host."""
    if region.endpoint.access_key == regions.offsite.endpoint.access_key:
        return "offsite-writer" if regions.defences.separate_credentials else "primary"
    return "primary"


def detect_missing_tables(drill: Drill) -> float:
    """The application's view: its tables are gone. Polls every probe interval; the monotonic instant."""
    expected = set(drill.seed.tables)
    deadline = time.monotonic() + drill.config.startup_timeout
    with HranaSession(drill.serving().http_url, timeout=10, headers=drill.target_headers) as s:
        while time.monotonic() < deadline:
            present = {str(r[0]) for r in s.execute("SELECT name FROM sqlite_master WHERE type = 'table'").rows}
            if not expected <= present:
                drill.details["detected_by"] = f"tables missing: {len(expected - present)} of {len(expected)}"
                return time.monotonic()
            time.sleep(drill.config.probe_interval)
    raise TimeoutError(f"every table was still there after {drill.config.startup_timeout:g}s")


def recover(drill: Drill, watch: Stopwatch) -> Recovery:
    state = drill.state(RansomwareState)
    assert state.regions is not None and state.key is not None and drill.primary is not None
    regions, attacker = state.regions, state.attacker
    assert attacker is not None
    drill.primary.kill()  # the compromised server is isolated; the recovery serves a clean one
    reader = S3Store(regions.reader.client(), regions.bucket)
    try:
        left = census(layer4_versions(reader))
    except STORE_ERRORS as exc:  # e.g. the bucket itself was deleted
        left = Census(0, 0, 0, 0)
        drill.details["offsite_listing_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    east_before = regions.primary.requests
    try:
        won = drill.restore([VersionedOffsiteSource(reader, keyring(state.key))], watch.mark, role="clean")
        drill.primary = won.server
        restored: dict[str, Any] = {
            "offsite_backup_id": won.entry.id, "offsite_backup_taken_at": won.entry.created_at,
            "offsite_refused": won.refused_pairs, "recovery_bytes_downloaded": won.bytes_downloaded,
        }  # fmt: skip
        survived = Check("offsite_copy_survived", True, f"restored {won.entry.id}; {left.versions} version(s) "
                         f"and {left.delete_markers} delete marker(s) left offsite")  # fmt: skip
    except NoUsableBackup as exc:  # an empty server: verification shows what the attack cost
        drill.primary = drill.new_server("clean").start()
        watch.mark("provision")
        restored = {"offsite_backup_id": None, "offsite_restore_error": str(exc)[:1000]}
        survived = Check("offsite_copy_survived", False, f"{NO_SURVIVOR}: {left.versions} version(s) left offsite, "
                         f"the attacker destroyed {attacker.count('destroyed', regions.offsite.name)} ({exc})"[:1000])  # fmt: skip
    checks = (survived, *attack_checks(drill, attacker, regions, east_before))
    return Recovery({**restored, "offsite_after_attack": left.describe()}, checks)


def attack_checks(drill: Drill, attacker: Attacker, regions: IamRegions, east_before: int) -> list[Check]:
    """The attack really did its damage in the primary region, did none offsite, and the recovery read
    nothing from the primary region."""
    east_reads = regions.primary.requests - east_before
    east, west = regions.primary.name, regions.offsite.name
    east_left = sum(len(S3Store(regions.primary.client(), b).list()) for _, b in drill.buckets)
    destroyed = attacker.count("destroyed", west)
    return [
        Check("primary_region_wiped", east_left == 0,
              f"{attacker.count('destroyed', east)} object(s) destroyed in {east}, {east_left} left"),
        Check("offsite_attack_refused", destroyed == 0,
              f"{attacker.count('refused', west)} attempt(s) refused, {attacker.count('absorbed', west)} "
              f"absorbed (delete markers, new versions), {destroyed} destroyed"),
        Check("primary_region_unread", east_reads == 0, f"{east_reads} request(s) to {regions.primary.name} by the recovery"),
    ]  # fmt: skip


def ransomware(defences: Defences | None = None, name: str = "ransomware") -> Scenario:
    """`defences`: how the offsite copies are protected (default: all of them)."""
    return Scenario(
        name=name,
        title="ransomware: tables dropped, primary backups deleted, offsite copies attacked; restored from locked versions",
        layers=(1, 4),
        # RPO: a backup interval plus an offsite interval, as a region outage
        objectives=Objectives(rpo_seconds=20.0, rto_seconds=60.0),
        arm=functools.partial(arm, defences=defences or Defences()),
        damage=damage,
        detect=detect_missing_tables,
        recover=recover,
    )  # fmt: skip


RANSOMWARE = ransomware()
