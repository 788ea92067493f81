"""Layer 3 over a recovery's candidates, owned by the runner: each candidate is verified once (a file
checked before it served is not scanned again), the newest sound one serves (the most ledger writes held;
on a tie the one offered first), the others are ended, and the scenario judges what needs every
verification."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from layers.verify import AppExpectations, Check, Verification, verify
from scenarios.base import Recovery, Served

if TYPE_CHECKING:
    from fixtures.drill import Drill


def _verify(drill: Drill, candidate: Served, app: AppExpectations) -> Verification:
    return verify(
        candidate.server.http_url,
        tables=drill.seed.verified,
        base=drill.seed.tables,
        writes=drill.ledger.writes,
        app=app,
        headers=drill.target_headers,
        checked_file=candidate.gated,
        db_bytes=drill.seed.bytes,  # a file verified before it served: only what needs the server now
    )


def serve_newest_sound(
    drill: Drill, recovery: Recovery, app: AppExpectations
) -> tuple[Verification, list[Check], dict[str, Any]]:
    """Verify every candidate, make the newest sound one the drill's primary and end the others: (its
    verification, the scenario's judged checks, its judged details). None sound: the first offered serves
    and its verification says why it fails."""
    offered = recovery.candidates or (Served("primary", drill.serving(), drill.served_file()),)
    verified: Mapping[str, Verification] = {c.name: _verify(drill, c, app) for c in offered}
    sound = [c for c in offered if verified[c.name].ok]
    winner = max(sound, key=lambda c: verified[c.name].loss.cut) if sound else offered[0]
    drill.primary = winner.server
    for loser in offered:
        if loser.server is not winner.server:
            with contextlib.suppress(Exception):
                loser.server.kill()
    checks, details = recovery.judge(verified, winner.name) if recovery.judge else ([], {})
    return verified[winner.name], checks, details
