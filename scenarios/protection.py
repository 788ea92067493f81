"""Protection resumes after every recovery: once the service is restored, every layer the scenario had
armed is armed again on the recovered, serving server, and the first new copy of each is shown to land and
to restore to exactly the database that server serves (layers/restore_proof.py). A recovered database that
is not protected again fails the drill: each layer gives one `protected_again_layerN` check.

    layer 2  a new generation (scenarios/rearm_layer2.py), restored by a scratch sqld
    layer 1  a new scheduler and agent on the serving server, into a new catalog in the region now
             serving (the primary region, or the offsite one after a region outage); its first backup
             fetched as the recovery fetches it and gated as a file (a dump replayed into SQLite first)
    layer 4  a new replicator of that catalog into a region other than the one serving (a standby region
             on 127.0.0.1 when no other drill region is up); its first copy, a post-recovery backup,
             opened under the key and restored likewise

The application's traffic has stopped by then, so the served database does not change while its copies
are compared with it. The step is not part of the RTO (the service is already back): its seconds are
recorded per layer in details["protected_again_seconds"]."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from fixtures.digest import TableDigest
from fixtures.hrana import HranaError
from fixtures.s3 import Region
from fixtures.wait import NotReady
from layers.backup import BackupScheduler, CatalogEntry
from layers.offsite import OffsiteCopy, OffsiteReplicator, OffsiteSource, keyring
from layers.recovery import Gate, Layer1Source, Offer
from layers.restore_proof import ProofFailed, prove_generation, prove_offer, served_digests
from layers.store import STORE_ERRORS, S3Store
from layers.verify import Check
from scenarios.rearm_layer2 import (
    Layer2Target,
    checkpoint,
    local_region,
    restart_in_place,
    restart_streaming,
    streams,
    wait_new_generation,
)

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.sqld import SqldServer

FAILURES_TO_GIVE_UP = 2  # backups of the recovered server failing in a row before the wait ends
# What a layer that cannot be armed or proven raises; each becomes its layer's failed check.
EXPECTED: tuple[type[Exception], ...] = (ProofFailed, NotReady, HranaError, requests.RequestException, *STORE_ERRORS)


@dataclass(frozen=True)
class Protection:
    checks: tuple[Check, ...]
    details: dict[str, Any]


@dataclass
class Step:
    """One protection run: its clock, the served database as reference, what each layer recorded."""

    drill: Drill
    server: SqldServer
    started: float = field(default_factory=time.monotonic)
    digests: Future[dict[str, TableDigest]] | None = None  # the served database's tables, digested
    layer2: Layer2Target | None = None  # where the serving server streams, once layer 2 is armed again
    checks: list[Check] = field(default_factory=list)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def digest_served(self, pool: ThreadPoolExecutor) -> None:
        """Start digesting the served database's tables as the recovery left them (while the first new
        copies are being taken); every new copy must restore to exactly that."""
        drill = self.drill
        self.digests = pool.submit(served_digests, self.server.http_url, drill.seed.verified, drill.target_headers)

    def reference(self) -> Gate:
        """The gate every new copy must pass: the served database's tables as they are now."""
        assert self.digests is not None, "digest_served first"
        return Gate(tuple(self.drill.seed.verified), self.digests.result(), ())

    def provision(self, env: dict[str, str], args: tuple[str, ...]) -> SqldServer:
        return self.drill.new_server("protect-check", env=env, args=args)

    def record(self, layer: int, run: Callable[[], tuple[str, dict[str, Any]]]) -> None:
        """Run one layer's re-arming and proof; its check and its figures."""
        name = f"protected_again_layer{layer}"
        started = time.monotonic()
        try:
            detail, info = run()
            ok = True
        except EXPECTED as exc:
            detail, info, ok = f"{type(exc).__name__}: {exc}"[:600], {}, False
        seconds = time.monotonic() - started
        self.checks.append(Check(name, ok, detail, seconds))
        self.layers[f"layer{layer}"] = {**info, "ok": ok, "ready_after_seconds": self.elapsed()}


def serving_region(drill: Drill) -> Region:
    """The region the recovered server serves from: the primary, unless its endpoint is gone."""
    primary = drill.primary_region
    return primary if primary.server is None or primary.server.running() else drill.offsite_region


def offsite_region_for(drill: Drill, home: Region) -> Region:
    """Another drill region that is up, else a standby region started for the drill."""
    for region in drill.session.regions().values():
        if region is not home and (region.server is None or region.server.running()):
            return region
    return local_region(drill, "standby")


def first_backup(scheduler: BackupScheduler, already: int, server_url: str, timeout: float) -> CatalogEntry:
    """The first backup the scheduler took after its `already` ones: of the serving server (ProofFailed
    when none lands)."""
    deadline = time.monotonic() + timeout
    while not scheduler.wait_for(already + 1, 0.1):
        if scheduler.failed >= FAILURES_TO_GIVE_UP or time.monotonic() > deadline:
            raise ProofFailed(f"no layer-1 backup of the recovered server {server_url} within {timeout:g} s "
                              f"({scheduler.failed} failed): the schedule did not resume")  # fmt: skip
    entry = scheduler.catalog.entries()[0]
    if entry.source != server_url:
        raise ProofFailed(f"the first new backup {entry.id} is of {entry.source}, not the recovered {server_url}")
    return entry


def offer_of(offers: tuple[list[Offer], list[Any]], backup_id: str, where: str) -> Offer:
    found = [o for o in offers[0] if o.entry.id == backup_id]
    if not found:
        refused = "; ".join(f"{r.backup_id}: {r.reason}" for r in offers[1] if r.backup_id == backup_id)
        raise ProofFailed(f"backup {backup_id} is not offered by {where}" + (f" ({refused})" if refused else ""))
    return found[0]


def layer1_job(drill: Drill, fmt: str | None, home: Region) -> BackupScheduler:
    """Layer 1 armed again on the serving server (a module-level step, so a sabotage can replace it)."""
    return drill.arm_backups(fmt, region=home)


def protect_layer1(step: Step, old: BackupScheduler, home: Region) -> Callable[[], tuple[str, dict[str, Any]]]:
    def run() -> tuple[str, dict[str, Any]]:
        drill, config = step.drill, step.drill.config
        fmt = str(drill.details.get("backup_format") or config.backup_format)
        scheduler = layer1_job(drill, fmt, home)
        timeout = 3 * (max(old.seconds, default=0.0) + config.backup_interval) + 5
        entry = first_backup(scheduler, old.succeeded if scheduler is old else 0, step.server.http_url, timeout)
        landed = step.elapsed()
        proven = prove_offer(offer_of(Layer1Source(scheduler.catalog).offers(), entry.id, "the new catalog"),
                             step.reference(), drill.artifacts / "protection")  # fmt: skip
        info = {"catalog": scheduler.catalog.store.url, "backup_id": entry.id, "format": entry.format,
                "first_copy_after_seconds": landed, "proof_seconds": round(proven.seconds, 3)}  # fmt: skip
        return f"first backup after {landed:.2f} s ({entry.format}, {entry.id}); {proven.describe()}", info

    return run


def arm_layer2(step: Step, armed: dict[str, str], home: Region) -> Layer2Target:
    """A new generation: a checkpoint of a server that streams; a restart (once the served database is
    digested, so the proofs show a restart lost nothing) of one that does not, or whose stream broke."""
    drill, server = step.drill, step.server
    if streams(server):
        try:
            return checkpoint(drill, server)
        except ProofFailed as exc:
            step.reference()
            return restart_in_place(drill, server, f"checkpoint refused ({exc})")
    step.reference()
    return restart_streaming(drill, server, home, armed)


def protect_layer2(step: Step, armed: dict[str, str], home: Region) -> Callable[[], tuple[str, dict[str, Any]]]:
    def run() -> tuple[str, dict[str, Any]]:
        drill = step.drill
        step.layer2 = target = arm_layer2(step, armed, home)
        generation = wait_new_generation(target, 3 * drill.config.pitr_batch_interval + 5)
        landed = step.elapsed()
        proven = prove_generation(target.store, target.db_name, generation, scratch_bucket(drill, target),
                                  step.reference(), step.provision)  # fmt: skip
        info = {"bucket": f"{target.store.url}", "generation": generation.id, "how": target.how,
                "service_interruption_seconds": round(target.interruption_seconds, 3),
                "first_copy_after_seconds": landed, "proof_seconds": round(proven.seconds, 3)}  # fmt: skip
        return (f"new generation {generation.id} after {landed:.2f} s ({target.how}); {proven.describe()}"), info

    return run


def scratch_bucket(drill: Drill, target: Layer2Target) -> tuple[Any, str, S3Store]:
    """An empty bucket beside the layer-2 bucket (the same endpoint sqld already reaches) for the proof."""
    bucket = drill.new_bucket(target.region, "layer2-proof")
    return target.region.endpoint, bucket, S3Store(target.region.client(), bucket)


def layer4_job(drill: Drill, old: OffsiteReplicator, region: Region) -> OffsiteReplicator:
    """Layer 4 armed again from the new catalog (a module-level step, so a sabotage can replace it)."""
    return drill.arm_offsite(old.key, region=region)


def first_copy(step: Step, replicator: OffsiteReplicator, old: OffsiteReplicator, timeout: float) -> OffsiteCopy:
    """The replicator's first copy, once it (and, when layer 4 carried layer 2's objects, the new layer-2
    objects) are offsite; ProofFailed when they do not come."""
    deadline = time.monotonic() + timeout
    if old.objects_source is not None and step.layer2 is not None:
        replicator.copy_objects(step.layer2.store, f"{step.layer2.db_name}-")
    already = len(old.copies) if replicator is old else 0
    while not (len(replicator.copies) > already and (replicator.objects_source is None or replicator.objects_copied)):
        if replicator.failed >= FAILURES_TO_GIVE_UP or time.monotonic() > deadline:
            raise ProofFailed(f"no offsite copy in {replicator.offsite.url} within {timeout:g} s "
                              f"({replicator.failed} failed): layer 4 did not resume")  # fmt: skip
        replicator.wait_cycles(1, 0.2)
    return replicator.copies[already]


def protect_layer4(step: Step, old: OffsiteReplicator, old_backups: BackupScheduler | None,
                   home: Region) -> Callable[[], tuple[str, dict[str, Any]]]:  # fmt: skip
    def run() -> tuple[str, dict[str, Any]]:
        drill, config = step.drill, step.drill.config
        if drill.scheduler is None or drill.scheduler is old_backups or drill.scheduler.succeeded == 0:
            raise ProofFailed("layer 1 is not protecting the recovered server: layer 4 has nothing to copy")
        region = offsite_region_for(drill, home)
        replicator = layer4_job(drill, old, region)
        timeout = 3 * (config.offsite_interval + max(old.cycle_seconds_max, 1.0)) + 5
        copy = first_copy(step, replicator, old, timeout)
        if copy.entry.source != step.server.http_url:
            raise ProofFailed(f"the first offsite copy {copy.entry.id} is a backup of {copy.entry.source}")
        landed = step.elapsed()
        source = OffsiteSource(replicator.offsite, keyring(old.key))
        proven = prove_offer(offer_of(source.offers(), copy.entry.id, replicator.offsite.url), step.reference(),
                             drill.artifacts / "protection")  # fmt: skip
        info = {"store": replicator.offsite.url, "region": region.name, "backup_id": copy.entry.id,
                "key_id": copy.key_id, "layer2_objects_copied": replicator.objects_copied,
                "first_copy_after_seconds": landed, "proof_seconds": round(proven.seconds, 3)}  # fmt: skip
        return (f"first offsite copy after {landed:.2f} s ({copy.entry.id} into {region.name}, opened under key "
                f"{copy.key_id}); {proven.describe()}"), info  # fmt: skip

    return run


def protect_again(drill: Drill) -> Protection:
    """Arm again, on the serving server, every layer the scenario armed; prove each one's first copy."""
    old_backups, old_offsite = drill.scheduler, drill.offsite
    first = drill.servers[0] if drill.servers else None
    armed_layer2 = dict(first.spec.env) if first is not None and streams(first) else None
    if old_backups is None and old_offsite is None and armed_layer2 is None:
        return Protection((), {"protected_again": "no layer was armed"})
    for loop in (old_backups, old_offsite):
        if loop is not None:
            loop.stop()  # the pre-incident jobs stay stopped: they served a database that is gone
    step, home = Step(drill, drill.serving()), serving_region(drill)
    with ThreadPoolExecutor(1) as pool:
        step.digest_served(pool)
        if armed_layer2 is not None:  # first: a restart must come before the layer-1 agent attaches
            step.record(2, protect_layer2(step, armed_layer2, home))
        if old_backups is not None:
            step.record(1, protect_layer1(step, old_backups, home))
        if old_offsite is not None:
            step.record(4, protect_layer4(step, old_offsite, old_backups, home))
    seconds = {name: info["ready_after_seconds"] for name, info in step.layers.items()}
    return Protection(tuple(step.checks), {"protected_again": step.layers,
                                           "protected_again_seconds": {**seconds, "total": step.elapsed()}})  # fmt: skip
