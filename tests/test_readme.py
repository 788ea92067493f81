"""The README is the user's manual: every setting and both commands it promises exist."""

from __future__ import annotations

from pathlib import Path

from fixtures.config import OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [o.ini for o in OPTIONS if f"`{o.ini}` / `{o.flag}`" not in README]
    assert not missing, f"README's settings table lacks {missing}"


def test_the_two_commands_are_given() -> None:
    assert "./run drills" in README and "./run tests" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "./run tests" in ci
