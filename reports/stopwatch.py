"""RTO by phase: one monotonic clock started at the damage; each mark closes the running phase, so the
phases always add up to the total."""

from __future__ import annotations

import time


class Stopwatch:
    def __init__(self, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self._last = self.started
        self.phases: dict[str, float] = {}

    def mark(self, phase: str, at: float | None = None) -> float:
        """Close `phase` at `at` (default now); returns its seconds."""
        now = time.monotonic() if at is None else at
        seconds = max(0.0, now - self._last)
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds
        self._last = max(self._last, now)
        return seconds

    @property
    def total(self) -> float:
        return self._last - self.started
