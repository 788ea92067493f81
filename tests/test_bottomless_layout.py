"""Reading bottomless's bucket layout (layers/bottomless_layout.py) without a server: generation times,
which generations and batches a point restores, every gap or missing piece named, and the copy to scratch."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest

from layers.bottomless_layout import generation_time, generations, plan_restore
from layers.bottomless_source import copy_plan
from layers.recovery_points import PointError, RecoveryPoint
from layers.store import LocalStore, ObjectInfo

DB = "ns-prod:default"
T0 = 1_800_000_000  # unix seconds of the first generation


def _generation(at: float) -> str:
    """A generation id as bottomless makes it: a UUID v7 of a reversed timestamp."""
    seconds, nanos = 253370761200 - int(at), 999_999_999 - round((at % 1) * 1e9)
    millis = seconds * 1000 + nanos // 1_000_000
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0x8 << 60) | 1))


def _objects(gen: str, names: list[str]) -> list[ObjectInfo]:
    return [ObjectInfo(f"{DB}-{gen}/{n}", 10, datetime.now(UTC)) for n in names]


def _batch(first: int, last: int, second: int) -> str:
    return f"{first:012}-{last:012}-{second}.zstd"


FIRST = _generation(T0)
SECOND = _generation(T0 + 100)
LAYOUT = [
    *_objects(FIRST, [".meta", _batch(1, 3, T0 + 1), _batch(4, 6, T0 + 5), _batch(7, 9, T0 + 9)]),
    *_objects(SECOND, [".meta", ".changecounter", "db.zstd", _batch(1, 2, T0 + 101), _batch(3, 3, T0 + 110)]),
    ObjectInfo(f"ns-other:default-{FIRST}/.meta", 1, datetime.now(UTC)),
]


def _at(second: int) -> RecoveryPoint:
    return RecoveryPoint("time", datetime.fromtimestamp(second, UTC))


def test_generation_time_reverses_the_uuid_timestamp() -> None:
    assert abs(generation_time(FIRST).timestamp() - T0) < 0.001  # a UUID v7 keeps milliseconds
    assert generation_time("e4ce494f-3e7a-7f4e-97b3-b5ae39f4193b").isoformat() == "2026-12-01T09:21:14.990000+00:00"


def test_a_time_picks_the_generation_and_the_batches_flushed_by_then() -> None:
    gens = generations(LAYOUT, DB)
    assert [g.id for g in gens] == [FIRST, SECOND] and gens[0].snapshot is None
    plan = plan_restore(gens, _at(T0 + 6), {}, random.Random(0))
    assert plan.generation.id == FIRST and [b.last for b in plan.batches[FIRST]] == [3, 6] and not plan.problems
    assert plan.achieved == datetime.fromtimestamp(T0 + 5, UTC)  # the newest batch applied
    ignored = ObjectInfo(f"ns-other:default-{FIRST}/.meta", 1, datetime.now(UTC))
    assert all(ignored not in g.objects for g in gens), "another database's objects are not read"
    later = plan_restore(gens, _at(T0 + 105), {}, random.Random(0))
    assert later.generation.id == SECOND and [g.id for g in later.chain] == [SECOND]
    assert {o.key.rsplit("/", 1)[1] for o in later.objects()} == {
        ".meta",
        ".changecounter",
        "db.zstd",
        _batch(1, 2, T0 + 101),
    }
    latest = plan_restore(gens, RecoveryPoint("latest"), {}, random.Random(0))
    assert latest.newest_batch is not None and latest.newest_batch.last == 3 and latest.cutoff is None


def test_a_missing_batch_is_a_gap_named_by_its_neighbours() -> None:
    layout = [o for o in LAYOUT if not o.key.endswith(_batch(4, 6, T0 + 5))]
    plan = plan_restore(generations(layout, DB), _at(T0 + 9), {}, random.Random(0))
    assert len(plan.problems) == 1 and "frames 4-6 missing" in plan.problems[0]
    assert _batch(1, 3, T0 + 1) in plan.problems[0] and _batch(7, 9, T0 + 9) in plan.problems[0]


def test_a_gap_just_after_the_range_is_still_a_failure() -> None:
    """The batch flushed right before the point is gone: the next batch shows the frames are missing."""
    layout = [o for o in LAYOUT if not o.key.endswith(_batch(4, 6, T0 + 5))]
    plan = plan_restore(generations(layout, DB), _at(T0 + 6), {}, random.Random(0))
    assert plan.problems and "frames 4-6 missing" in plan.problems[0]


def test_a_generation_without_snapshot_needs_its_parent() -> None:
    third = _generation(T0 + 200)
    layout = [*LAYOUT, *_objects(third, [".meta", ".dep", _batch(1, 1, T0 + 201)])]
    gens = generations(layout, DB)
    chained = plan_restore(gens, RecoveryPoint("latest"), {third: SECOND}, random.Random(0))
    assert [g.id for g in chained.chain] == [SECOND, third] and not chained.problems
    orphan = plan_restore(gens, RecoveryPoint("latest"), {third: str(uuid.uuid4())}, random.Random(0))
    assert "which is not in the bucket" in orphan.problems[0]
    no_dep = plan_restore(gens, RecoveryPoint("latest"), {}, random.Random(0))
    assert "applied to an empty database" in no_dep.problems[0]


def test_no_meta_means_the_wal_is_skipped() -> None:
    layout = [o for o in LAYOUT if o.key != f"{DB}-{FIRST}/.meta"]
    plan = plan_restore(generations(layout, DB), _at(T0 + 2), {}, random.Random(0))
    assert "no .meta object" in plan.problems[0]


def test_random_lands_on_a_recovery_point_and_a_time_before_all_is_refused() -> None:
    gens = generations(LAYOUT, DB)
    seconds = {T0, T0 + 1, T0 + 5, T0 + 9, T0 + 100, T0 + 101, T0 + 110}
    picked = {plan_restore(gens, RecoveryPoint("random"), {}, random.Random(seed)).cutoff for seed in range(30)}
    assert picked <= seconds and len(picked) > 2
    with pytest.raises(PointError, match="no recovery point at or before"):
        plan_restore(gens, _at(T0 - 10), {}, random.Random(0))


class _Flaky(LocalStore):
    """A store one object of which lists but cannot be read."""

    def __init__(self, root: Path, broken: str) -> None:
        super().__init__(root)
        self.broken = broken

    def get(self, key: str, sink: IO[bytes]) -> dict[str, str]:
        if key == self.broken:
            raise OSError("connection reset")
        return super().get(key, sink)


def test_an_unreadable_batch_is_named_and_the_rest_copied_re_keyed(tmp_path: Path) -> None:
    source = _Flaky(tmp_path / "source", f"{DB}-{FIRST}/{_batch(4, 6, T0 + 5)}")
    for obj in LAYOUT:
        source.put_bytes(obj.key, b"x")
    plan = plan_restore(generations(source.list(), DB), _at(T0 + 9), {}, random.Random(0))
    target = LocalStore(tmp_path / "scratch")
    copied, unreadable = copy_plan(plan, source, target, DB)
    assert len(unreadable) == 1 and _batch(4, 6, T0 + 5) in unreadable[0] and "OSError" in unreadable[0]
    # (a folder store does not list dot-files such as .meta: only the batches are compared)
    assert copied == 2 and sorted(o.key for o in target.list()) == [
        f"ns-staging:default-{FIRST}/{name}" for name in (_batch(1, 3, T0 + 1), _batch(7, 9, T0 + 9))
    ]
