"""A pytest plugin for bench/soak.py: runs the collected drills over and over, back to back in this one
process, until --soak-minutes have passed (a drill in progress finishes)."""

from __future__ import annotations

import time

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-minutes", type=float, default=0.0, help="repeat the collected drills for N minutes")


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
