"""Where a surgical repair reads the rows an incident removed: the layer-2 fork at the restore point just
before the incident, then, for the keys that fork cannot tell (layers/pitr.plan_repair: its row equals the
live one), forks at earlier restore points, newest first.

Why earlier points are needed: a fork at a point holds the last batch flushed before the incident's second,
so writes of the last batch interval + 1 s before the incident are not in it. When those writes are a
previous surgical repair of the same rows (an incident repeated soon after its repair), the fork is from
between the previous incident and its repair: the rows are absent from the fork as from the live database,
and a repair from that fork alone comes back short with no acknowledged write lost. An earlier point, from
before the previous incident, holds them as the previous repair put them back. A key no point tells is an
error naming the rows, never a silent short repair."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fixtures.hrana import HranaSession
from layers.pitr import Fork, Layer2, PitrError, RepairPlan, RowScope, fork_timestamp, plan_repair

LOOKBACK = 8  # earlier restore points (forks) a repair reads at most for the keys its fork cannot tell


@dataclass(frozen=True)
class RepairSource:
    """The fork at the restore point, the incident's instant (the point must be before it), and how to make
    forks at earlier points (`name` gives each a new namespace name)."""

    layer2: Layer2
    fork: Fork
    incident_at: float
    name: Callable[[], str]
    lookback: int = LOOKBACK


def plan_across_points(source: RepairSource, live: HranaSession, scopes: Sequence[RowScope]) -> RepairPlan:
    """The repair plan from the fork, completed from earlier points for the keys it cannot tell; PitrError
    naming the keys when `lookback` earlier points leave some untold, or when the fork is not before the
    incident (its rows may be the incident's own work: looking back from there would be guessing)."""
    layer2 = source.layer2
    if source.fork.requested >= math.floor(source.incident_at):  # a fork at T holds the batches of second T
        raise PitrError(
            f"the fork at {source.fork.timestamp}Z may hold the incident at {fork_timestamp(source.incident_at)}Z: "
            "a surgical repair reads a point before the incident's second (layers.pitr.point_before)"
        )
    with layer2.session(source.fork.namespace) as staging:
        plan = plan_repair(staging, live, scopes)
    points = layer2.earlier_points(source.fork.requested)[: source.lookback] if plan.unresolved else []
    for at in points:
        fork = layer2.fork(source.name(), at)
        with layer2.session(fork.namespace) as staging:
            plan = plan.then(plan_repair(staging, live, plan.unresolved_scopes(scopes)), fork.timestamp)
        if not plan.unresolved:
            break
    if plan.unresolved:
        untold = "; ".join(f"{t}: {len(keys)} key(s) {keys[:5]}" for t, keys in plan.unresolved.items())
        raise PitrError(
            f"the surgical repair cannot tell what {untold} held before the incident: the fork at "
            f"{source.fork.timestamp}Z and {len(plan.earlier)} earlier restore point(s) hold no version of them "
            "other than the live one (written after every restore point read, or never in layer 2). Nothing was "
            "written: rewind, or put these rows back from a backup"
        )
    return plan
