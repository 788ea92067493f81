"""The progress reporter of long steps: an updating line on a terminal (rate limited), one plain line per
step elsewhere, nothing under 100 MB. A fake clock drives time; nothing here waits."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from fixtures.config import parse_scale
from fixtures.progress import MIN_BYTES, REFRESH, progress
from fixtures.seed import build_seed


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_line_rewritten_in_place_at_a_limited_rate() -> None:
    out, clock = Terminal(), Clock()
    with progress("restore 200MB", 200_000_000, stream=out, clock=clock) as step:
        for _ in range(10):  # ten updates inside one refresh period: one redraw at most
            clock.now += REFRESH / 20
            step.advance(1_000_000)
        clock.now += REFRESH
        step.advance(90_000_000)
        clock.now += 2
        step.advance(100_000_000)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\x1b[K\n")
    frames = [f.removesuffix("\x1b[K") for f in text.split("\r") if f]
    assert len(frames) == 3, frames  # none for the ten quick updates, two redraws, then the last line
    assert frames[0] == "restore 200MB: 100.0 MB of 200.0 MB (50%), 133.3 MB/s"
    assert frames[1] == "restore 200MB: 200.0 MB of 200.0 MB (100%), 72.7 MB/s"
    assert frames[-1].startswith("restore 200MB: 200.0 MB of 200.0 MB (100%), ")
    assert frames[-1].endswith("72.7 MB/s in 2.8s\x1b[K\n")


def test_not_a_terminal_gets_one_plain_line_per_step() -> None:
    out, clock = io.StringIO(), Clock()
    with progress("verify 150MB", 150_000_000, stream=out, clock=clock) as step:
        for _ in range(30):
            clock.now += 1
            step.advance(5_000_000)
    assert out.getvalue() == "verify 150MB: 150.0 MB of 150.0 MB (100%), 5.0 MB/s in 30.0s\n"


def test_a_failed_step_says_so_and_small_steps_print_nothing() -> None:
    out, clock = io.StringIO(), Clock()
    with pytest.raises(RuntimeError), progress("backup 100MB", MIN_BYTES, stream=out, clock=clock) as step:
        clock.now += 4
        step.advance(40_000_000)
        raise RuntimeError("disk full")
    assert out.getvalue() == "backup 100MB: 40.0 MB of 100.0 MB (40%), 10.0 MB/s in 4.0s, FAILED: RuntimeError\n"
    quiet = Terminal()
    with progress("seed 2MB", 2_000_000, stream=quiet, clock=clock) as step:
        step.advance(2_000_000)
    assert quiet.getvalue() == ""


def test_other_units_estimates_outgrown_and_the_database_scale() -> None:
    out, clock = io.StringIO(), Clock()
    with progress("verify: scanning tables", 2_000_000, unit="rows", scale_bytes=MIN_BYTES, stream=out,
                  clock=clock) as step:  # fmt: skip
        clock.now += 4
        step.advance(1_000_000)
    assert out.getvalue() == "verify: scanning tables: 1,000,000 rows of 2,000,000 rows (50%), 250,000 rows/s in 4.0s\n"
    dump = io.StringIO()
    with progress("backup: dump", MIN_BYTES, stream=dump, clock=clock) as step:  # the database size, as an estimate
        clock.now += 10
        step.advance(140_000_000)
    assert dump.getvalue() == "backup: dump: 140.0 MB of 100.0 MB, 14.0 MB/s in 10.0s\n"
    small = io.StringIO()
    with progress("restore", 200_000_000, scale_bytes=2_000_000, stream=small, clock=clock) as step:
        step.advance(200_000_000)
    assert small.getvalue() == ""


def test_seeding_reports_its_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build_seed reports bytes built (here with the threshold lowered, so a small seed shows it)."""
    out = io.StringIO()
    monkeypatch.setattr("fixtures.progress.MIN_BYTES", 1)  # read when a step starts
    monkeypatch.setattr("sys.__stderr__", out)
    seed = build_seed(tmp_path, parse_scale("300KB"))
    line = out.getvalue()
    assert line.startswith("seed: building 0.3MB: ") and line.count("\n") == 1
    done_mb = float(line.split(": ")[2].split(" MB")[0])
    assert done_mb == pytest.approx(seed.bytes / 1e6, abs=0.05)
    assert sqlite3.connect(seed.path).execute("SELECT count(*) FROM customers").fetchone()[0] > 0
