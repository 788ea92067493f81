"""sqld's bottomless layout in a bucket, read the way bottomless's own restore reads it (libsql
bottomless/src/replicator.rs): objects `ns-DATABASE_ID:NAMESPACE-GENERATION/NAME`, where GENERATION is a
UUID v7 of a reversed timestamp (newest lists first), NAME one of `.meta` (page size, checksum: without
it the WAL is not applied), `.changecounter`, `.dep` (the parent generation's 16 bytes), `db.zstd` /
`db.gz` / `db.raw` (snapshot) and WAL batches `FIRST-LAST-FLUSHSECOND.CODEC` (frames from 1 per
generation). A generation without a snapshot restores on top of its parent's (`.dep`); the first one
holds WAL only. A restore to time T uses the newest generation started at or before T and applies every
batch flushed at or before T's second; it stops silently at the first missing frame, so gaps are found
here, before anything is restored."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from layers.recovery_points import RecoveryPoint, choose, iso
from layers.store import ObjectInfo

_KEY = re.compile(
    r"^(?P<db>.+)-(?P<gen>[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12})/(?P<name>[^/]+)$"
)
_BATCH = re.compile(r"^(\d+)-(\d+)-(\d+)\.[a-z]+$")
SNAPSHOTS = ("db.zstd", "db.gz", "db.raw")
_REVERSE_EPOCH = 253370761200  # bottomless stores (this - unix seconds) in the UUID v7 timestamp
MAX_CHAIN = 100  # bottomless's MAX_RESTORE_STACK_DEPTH


@dataclass(frozen=True)
class WalBatch:
    key: str
    first: int
    last: int
    flushed: int  # unix second

    @property
    def flushed_at(self) -> datetime:
        return datetime.fromtimestamp(self.flushed, UTC)


@dataclass(frozen=True)
class Generation:
    id: str
    started: datetime
    objects: tuple[ObjectInfo, ...]  # every object of the generation
    batches: tuple[WalBatch, ...]  # by first frame

    def named(self, name: str) -> ObjectInfo | None:
        return next((o for o in self.objects if o.key.endswith(f"/{name}")), None)

    @property
    def snapshot(self) -> ObjectInfo | None:
        return next((o for name in SNAPSHOTS if (o := self.named(name)) is not None), None)


@dataclass(frozen=True)
class RestorePlan:
    """What a restore to one point reads: generations oldest first, each with the batches it applies."""

    chain: tuple[Generation, ...]
    batches: Mapping[str, tuple[WalBatch, ...]]  # generation id -> batches applied
    cutoff: int | None  # unix second; None = every batch
    problems: tuple[str, ...]  # gaps and missing pieces: the restore would be a silent prefix

    @property
    def generation(self) -> Generation:
        return self.chain[-1]

    @property
    def newest_batch(self) -> WalBatch | None:
        applied = self.batches[self.generation.id]
        return applied[-1] if applied else None

    @property
    def achieved(self) -> datetime:
        """The state restored: the newest batch applied, else the generation's snapshot (its start)."""
        newest = self.newest_batch
        return newest.flushed_at if newest else self.generation.started

    def objects(self) -> list[ObjectInfo]:
        """Every object the restore reads: metadata, snapshot and applied batches of each generation."""
        out = []
        for gen in self.chain:
            applied = {b.key for b in self.batches[gen.id]}
            out += [o for o in gen.objects if not _BATCH.match(o.key.rsplit("/", 1)[1]) or o.key in applied]
        return out


def generation_time(generation: str) -> datetime:
    """When bottomless started a generation, from its reversed UUID v7 timestamp."""
    millis = uuid.UUID(generation).int >> 80
    seconds = _REVERSE_EPOCH - millis // 1000
    nanos = 999_999_999 - (millis % 1000) * 1_000_000
    return datetime.fromtimestamp(seconds + nanos / 1e9, UTC)


def generations(objects: Iterable[ObjectInfo], db_name: str) -> list[Generation]:
    """The generations of `db_name` (`ns-DATABASE_ID:NAMESPACE`) among bucket objects, oldest first."""
    grouped: dict[str, list[ObjectInfo]] = {}
    for obj in objects:
        m = _KEY.match(obj.key)
        if m and m["db"] == db_name:
            grouped.setdefault(m["gen"], []).append(obj)
    out = []
    for gen, objs in grouped.items():
        batches = []
        for obj in objs:
            b = _BATCH.match(obj.key.rsplit("/", 1)[1])
            if b:
                batches.append(WalBatch(obj.key, int(b[1]), int(b[2]), int(b[3])))
        out.append(Generation(gen, generation_time(gen), tuple(objs), tuple(sorted(batches, key=lambda b: b.first))))
    return sorted(out, key=lambda g: g.started)


def recovery_times(gens: Iterable[Generation]) -> list[datetime]:
    """Every point a restore can land on: each generation's start and each batch's flush second."""
    return sorted({g.started for g in gens} | {b.flushed_at for g in gens for b in g.batches})


def gaps(gen: Generation, applied: tuple[WalBatch, ...]) -> list[str]:
    """Missing frames within the applied batches (from frame 1), and between the last applied batch and
    the generation's next one: each named with its neighbouring object keys."""
    out = []
    following = [b for b in gen.batches if b.first > (applied[-1].last if applied else 0)][:1]
    previous: WalBatch | None = None
    for batch in (*applied, *following):
        expected = previous.last + 1 if previous else 1
        if batch.first > expected:
            after = f"after {previous.key}" if previous else "at the start of the generation"
            out.append(
                f"generation {gen.id}: frames {expected}-{batch.first - 1} missing ({after}, before {batch.key})"
            )
        elif batch.first < expected:
            out.append(f"generation {gen.id}: {batch.key} overlaps frames up to {expected - 1}")
        previous = batch
    return out


def _chain(
    gens: list[Generation], chosen: Generation, dependency: Mapping[str, str]
) -> tuple[list[Generation], list[str]]:
    """The chosen generation and the parents it restores on top of (oldest first), and what is missing."""
    by_id = {g.id: g for g in gens}
    chain, problems = [chosen], []
    while chain[-1].snapshot is None and len(chain) <= MAX_CHAIN:
        gen = chain[-1]
        parent = dependency.get(gen.id)
        if parent is None:
            if gen is not gens[0]:
                problems.append(f"generation {gen.id} has no snapshot and no .dep, but older generations exist: "
                                "its WAL would be applied to an empty database")  # fmt: skip
            break
        if parent not in by_id:
            problems.append(f"generation {gen.id} depends on generation {parent}, which is not in the bucket")
            break
        chain.append(by_id[parent])
    return chain[::-1], problems


def plan_restore(
    gens: list[Generation], point: RecoveryPoint, dependency: Mapping[str, str], rng: random.Random
) -> RestorePlan:
    """The plan for `point`: latest = the newest generation, every batch; a time (or a random recovery
    point) = the newest generation started at or before it, batches flushed at or before its second.
    `dependency` maps a generation to its `.dep` parent."""
    if point.kind == "latest":
        cutoff = None
    else:
        at = choose(recovery_times(gens), lambda t: t, point, rng)
        cutoff = int(at.timestamp())
    started = [g for g in gens if cutoff is None or int(g.started.timestamp()) <= cutoff]
    chosen = choose(started, lambda g: g.started, RecoveryPoint("latest"), rng)
    chain, problems = _chain(gens, chosen, dependency)
    applied = {g.id: tuple(b for b in g.batches if cutoff is None or b.flushed <= cutoff) for g in chain}
    for gen in chain:
        if gen.named(".meta") is None and gen.batches:
            problems.append(f"generation {gen.id} has no .meta object: sqld would skip its WAL batches")
        problems += gaps(gen, applied[gen.id])
    return RestorePlan(tuple(chain), applied, cutoff, tuple(problems))


def describe(plan: RestorePlan) -> dict[str, object]:
    newest = plan.newest_batch
    return {
        "generation": plan.generation.id,
        "generation_started": iso(plan.generation.started),
        "generations_used": [g.id for g in plan.chain],
        "batches_applied": sum(len(b) for b in plan.batches.values()),
        "newest_batch": newest.key if newest else None,
        "newest_batch_time": iso(newest.flushed_at) if newest else None,
        "last_frame": newest.last if newest else 0,
    }
