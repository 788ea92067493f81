"""Which recovery point a restore test restores: the latest, a random one (as AWS Backup restore testing
picks), or the newest at or before a given UTC time."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


class PointError(ValueError):
    """The recovery point asked for cannot be parsed or does not exist in the source."""


@dataclass(frozen=True)
class RecoveryPoint:
    kind: str  # "latest" | "random" | "time"
    at: datetime | None = None  # UTC, for kind "time"

    def describe(self) -> str:
        return iso(self.at) if self.at is not None else self.kind


def iso(at: datetime) -> str:
    """UTC ISO-8601 with a Z, to the second when there is no fraction."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_point(text: str) -> RecoveryPoint:
    if text in ("latest", "random"):
        return RecoveryPoint(text)
    try:
        at = datetime.fromisoformat(text.removesuffix("Z").removesuffix("z"))
    except ValueError:
        raise PointError(
            f"--point {text!r}: use latest, random or an ISO-8601 UTC time such as 2026-11-30T06:25:22Z"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if at > datetime.now(UTC):
        raise PointError(f"--point {text!r} is in the future: pick a time that has passed, or latest")
    return RecoveryPoint("time", at.astimezone(UTC))


def choose(items: Sequence[T], time_of: Callable[[T], datetime], point: RecoveryPoint, rng: random.Random) -> T:
    """The item `point` picks among recovery points `items`: the newest, a random one, or the newest at
    or before the time. PointError names the range the source holds."""
    if not items:
        raise PointError("the source holds no recovery point at all")
    ordered = sorted(items, key=time_of)
    if point.kind == "latest":
        return ordered[-1]
    if point.kind == "random":
        return rng.choice(ordered)
    assert point.at is not None
    before = [item for item in ordered if time_of(item) <= point.at]
    if not before:
        raise PointError(
            f"no recovery point at or before {iso(point.at)}: the oldest is {iso(time_of(ordered[0]))} "
            f"and the newest {iso(time_of(ordered[-1]))}"
        )
    return before[-1]
