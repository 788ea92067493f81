"""When a layer makes copies and how long it keeps them. Production policies come from the seed (layer 1:
daily 02:00, 30 days; layer 4: daily, 90 days); a drill runs the same code on a short interval and count.

Schedules are cron expressions in UTC (`croniter`): "0 2 * * *", "*/15 * * * *", "0 3 * * 1-5". The seed's
"daily HH:MM" is still accepted and means the cron expression "MM HH * * *"."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from croniter import croniter

T = TypeVar("T")
_DAILY = re.compile(r"daily ([01]\d|2[0-3]):([0-5]\d)")
_EVERY = re.compile(r"every (\d+(?:\.\d+)?)s")
GAP_SAMPLES = 400  # consecutive runs looked at for the longest gap (covers a year of a daily schedule)
GAP_FROM = datetime(2026, 1, 1, tzinfo=UTC)  # a fixed start: the same schedule always has the same gap


class ScheduleError(ValueError):
    """A schedule that is neither a cron expression nor 'daily HH:MM'; the message names the value and the fix."""


def to_cron(schedule: str) -> str:
    """The cron expression of `schedule` ('daily 02:00' -> '0 2 * * *'); raises ScheduleError."""
    daily = _DAILY.fullmatch(schedule)
    if daily:
        return f"{int(daily.group(2))} {int(daily.group(1))} * * *"
    if schedule == schedule.strip() and len(schedule.split()) == 5 and croniter.is_valid(schedule):
        return schedule
    raise ScheduleError(
        f"schedule {schedule!r} is not a schedule: use a 5-field cron expression in UTC such as '0 2 * * *' "
        "(02:00 every day) or '*/15 * * * *', or 'daily HH:MM' such as 'daily 02:00'"
    )


@lru_cache(maxsize=64)
def longest_gap_seconds(schedule: str) -> float:
    """The longest time between two consecutive runs of `schedule`: the most writes a failure just before
    a run can lose. Also takes a Policy's 'every Ns'."""
    every = _EVERY.fullmatch(schedule.strip())
    if every:
        return float(every.group(1))
    runs = croniter(to_cron(schedule), GAP_FROM)
    times = [runs.get_next(datetime) for _ in range(GAP_SAMPLES)]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(times))


def schedule_of(describe: str) -> str:
    """The schedule part of a Policy.describe text ('0 2 * * *, kept 30 days' -> '0 2 * * *')."""
    return describe.split(", kept ")[0].strip()


@dataclass(frozen=True)
class Policy:
    schedule: str = "daily 02:00"  # UTC; a cron expression or 'daily HH:MM'
    retention_days: float = 30.0
    retention_count: int | None = None
    interval_seconds: float | None = None  # set: run every N seconds instead of the schedule

    def __post_init__(self) -> None:
        if self.interval_seconds is None:
            to_cron(self.schedule)

    @property
    def cron(self) -> str:
        return to_cron(self.schedule)

    def next_run(self, after: datetime) -> datetime:
        if self.interval_seconds is not None:
            return after + timedelta(seconds=self.interval_seconds)
        nxt: datetime = croniter(self.cron, after).get_next(datetime)
        return nxt

    @property
    def longest_gap_seconds(self) -> float:
        if self.interval_seconds is not None:
            return self.interval_seconds
        return longest_gap_seconds(self.schedule)

    def expired(self, newest_first: Sequence[T], created: Callable[[T], datetime], now: datetime) -> list[T]:
        """The copies to drop: older than the retention age, or beyond the retention count."""
        oldest_allowed = now - timedelta(days=self.retention_days)
        doomed = [item for item in newest_first if created(item) < oldest_allowed]
        if self.retention_count is not None:
            doomed += [item for item in newest_first[self.retention_count :] if item not in doomed]
        return doomed

    @property
    def describe(self) -> str:
        """'every 2s, kept ...' or '<schedule>, kept ...' (schedule_of reads the schedule back)."""
        when = f"every {self.interval_seconds:g}s" if self.interval_seconds is not None else self.schedule
        keep = f"{self.retention_days:g} days" + (f", at most {self.retention_count}" if self.retention_count else "")
        return f"{when}, kept {keep}"
