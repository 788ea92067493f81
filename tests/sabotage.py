"""A pytest plugin that breaks one recovery on purpose (DRILL_SABOTAGE=<name>), loaded with
`-p tests.sabotage`, so tests/test_drills_go_red.py can show each drill fails when its recovery is broken."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest


def _total_loss_restore_noop() -> None:
    """Layer-1 restore that picks the newest backup but never replays it into the fresh server."""
    import scenarios.total_loss as total_loss
    from layers.backup import RestoreOutcome

    def restore_noop(catalog: Any, target_url: str) -> RestoreOutcome:
        entry = catalog.entries()[0]
        return RestoreOutcome(entry, (), entry.bytes)

    total_loss.restore_latest = restore_noop  # type: ignore[assignment]


SABOTAGE: dict[str, Callable[[], None]] = {
    "total-loss-restore-noop": _total_loss_restore_noop,
}


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get("DRILL_SABOTAGE", "")
    if name not in SABOTAGE:
        raise pytest.UsageError(f"DRILL_SABOTAGE={name!r}: use one of {', '.join(SABOTAGE)}")
    SABOTAGE[name]()
