"""A scenario is data: its name, the layers that recover it, default objectives, and three steps
(damage, detect, recover) that the runner calls in order. A recover step returns a Recovery: the
candidates it brought up (the runner verifies each once, serves the newest sound one and ends the others),
its output details and its own checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reports.result import Objectives

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.seed import SeedInfo
    from fixtures.sqld import SqldServer
    from layers.verify import Check, Verification
    from reports.stopwatch import Stopwatch


@dataclass(frozen=True)
class Served:
    """A recovered database serving on `server`, offered to layer 3: `name` says where it came from
    (e.g. "layer2"); `gated` is what the gate found in its file before it served (None: not a file)."""

    name: str
    server: SqldServer
    gated: Verification | None = None


Judged = tuple[list["Check"], dict[str, Any]]  # a scenario's checks and details from every verification


@dataclass(frozen=True)
class Recovery:
    """What a recover step hands the runner. No candidates: the drill's primary (recovered in place, or
    the one server the step started) is the only one. `judge(verified, winner)` gives the checks and
    details that need every candidate's verification (by name) and the name of the one that serves."""

    details: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    candidates: tuple[Served, ...] = ()
    judge: Callable[[Mapping[str, Verification], str], Judged] | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    layers: tuple[int, ...]  # the layers that carry the recovery (3 verifies every one)
    objectives: Objectives
    arm: Callable[[Drill], None]  # start the primary and the layers this scenario relies on
    damage: Callable[[Drill], None]  # inject the damage; the runner records the instant
    detect: Callable[[Drill], float]  # block until an operator would notice; the monotonic instant
    recover: Callable[[Drill, Stopwatch], Recovery]  # provision + restore (marking both)
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
