"""A pytest plugin for bench/soak.py: runs the collected drills over and over, back to back in this one
process, until --soak-minutes have passed (a drill in progress finishes); then counts the drill buckets the
run's own S3 regions still hold (--soak-buckets-file), before the regions stop with the session."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fixtures.plugin import SESSION


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-minutes", type=float, default=0.0, help="repeat the collected drills for N minutes")
    parser.addoption("--soak-buckets-file", default="", help="write how many drill buckets are left there")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    minutes = float(session.config.getoption("--soak-minutes"))
    if minutes <= 0 or (session.testsfailed and session.config.option.exitfirst):
        return None
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        for item in session.items:
            item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
            if session.shouldfail or session.shouldstop or time.monotonic() >= deadline:
                break
        if session.shouldfail or session.shouldstop:
            break
    return True


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = str(session.config.getoption("--soak-buckets-file"))
    drills = session.config.stash.get(SESSION, None)
    if not target or drills is None:
        return
    left = 0
    for region in drills.regions().values():
        if region.server is None or region.server.running():
            listed = region.client().list_buckets().get("Buckets", [])
            left += sum(1 for b in listed if b["Name"].startswith("drill-"))
    Path(target).write_text(str(left))
