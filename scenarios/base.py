"""A scenario is data: its name, the layers that recover it, default objectives, and three steps
(damage, detect, recover) that the runner calls in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reports.result import Objectives

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.seed import SeedInfo
    from reports.stopwatch import Stopwatch


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    layers: tuple[int, ...]  # the layers that carry the recovery (3 verifies every one)
    objectives: Objectives
    arm: Callable[[Drill], None]  # start the primary and the layers this scenario relies on
    damage: Callable[[Drill], None]  # inject the damage; the runner records the instant
    detect: Callable[[Drill], float]  # block until an operator would notice; the monotonic instant
    recover: Callable[[Drill, Stopwatch], dict[str, Any]]  # provision + restore (marking both); details
    # optional: runs after the warm-up, right before the damage and outside the measured window
    # (e.g. to time the damage against bottomless batch boundaries)
    prepare: Callable[[Drill], None] | None = None
    # raises SchemaError (naming the tables and the fix) when the seed cannot carry the scenario; checked
    # before any server starts
    fits: Callable[[SeedInfo], None] | None = None

    @property
    def layer_label(self) -> str:
        return "+".join(str(n) for n in sorted({*self.layers, 3}))


def detect_by_monitor(drill: Drill) -> float:
    """The health monitor's first failed probe."""
    assert drill.monitor is not None
    return drill.monitor.wait_down(timeout=drill.config.startup_timeout)
