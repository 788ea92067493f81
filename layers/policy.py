"""When a layer makes copies and how long it keeps them. Production policies come from the seed (layer 1:
daily 02:00, 30 days; layer 4: daily, 90 days); a drill runs the same code on a short interval and count."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    schedule: str = "daily 02:00"  # UTC
    retention_days: float = 30.0
    retention_count: int | None = None
    interval_seconds: float | None = None  # set: run every N seconds instead of the daily schedule

    def __post_init__(self) -> None:
        if self.interval_seconds is None and not re.fullmatch(r"daily ([01]\d|2[0-3]):[0-5]\d", self.schedule):
            raise ValueError(f"schedule {self.schedule!r}: use 'daily HH:MM' (UTC) or an interval")

    def next_run(self, after: datetime) -> datetime:
        if self.interval_seconds is not None:
            return after + timedelta(seconds=self.interval_seconds)
        hour, minute = map(int, self.schedule.removeprefix("daily ").split(":"))
        candidate = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return candidate if candidate > after else candidate + timedelta(days=1)

    def expired(self, newest_first: Sequence[T], created: Callable[[T], datetime], now: datetime) -> list[T]:
        """The copies to drop: older than the retention age, or beyond the retention count."""
        oldest_allowed = now - timedelta(days=self.retention_days)
        doomed = [item for item in newest_first if created(item) < oldest_allowed]
        if self.retention_count is not None:
            doomed += [item for item in newest_first[self.retention_count :] if item not in doomed]
        return doomed

    @property
    def describe(self) -> str:
        when = f"every {self.interval_seconds:g}s" if self.interval_seconds is not None else self.schedule
        keep = f"{self.retention_days:g} days" + (f", at most {self.retention_count}" if self.retention_count else "")
        return f"{when}, kept {keep}"
