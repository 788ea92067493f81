"""The judgements of a restore test (layers/restore_test.py), each shown to fail as well as pass."""

from __future__ import annotations

from typing import Any

import pytest

from layers.restore_test import (
    RESTORE_TEST_KIND,
    Expected,
    judge_benchmark,
    judge_row_counts,
    parse_fraction,
    previous_test,
)


def test_row_counts_fail_on_a_drop_beyond_the_limit_or_a_missing_table() -> None:
    expected = Expected("the restore test of yesterday", {"a": 100, "b": 50})
    assert judge_row_counts({"a": 96, "b": 50}, expected, 0.05).ok
    dropped = judge_row_counts({"a": 94, "b": 50}, expected, 0.05)
    assert not dropped.ok and "a: 94 rows, 6.0% fewer than 100" in dropped.detail and "b:" not in dropped.detail
    assert "b: missing" in judge_row_counts({"a": 100}, expected, 0.05).detail
    assert not judge_row_counts({}, None, 0.05).ok, "an empty restore is never a baseline"
    first = judge_row_counts({"a": 1}, None, 0.05)
    assert first.ok and "baseline recorded" in first.detail


def test_benchmark_fails_beyond_the_slowdown_limit() -> None:
    expected = Expected("the restore test of yesterday", {"q": 0.001, "gone": 0.5})
    assert judge_benchmark({"q": 0.002}, expected, 5.0).ok
    slow = judge_benchmark({"q": 0.2}, expected, 5.0)
    assert not slow.ok and "200.00x" in slow.detail
    assert not judge_benchmark({}, expected, 5.0).ok
    assert "baseline recorded" in judge_benchmark({"new": 0.1}, expected, 5.0).detail


def test_the_previous_test_is_a_passing_one_of_the_same_source_at_no_newer_point() -> None:
    def record(started: str, point: str, ok: bool = True, source: str = "dumps:/b") -> dict[str, Any]:
        return {"kind": RESTORE_TEST_KIND, "started_at": started, "point_achieved": point, "ok": ok, "source": source}

    records = [
        record("2026-11-01T00:00:00", "2026-10-31T02:00:00Z"),
        record("2026-11-02T00:00:00", "2026-11-01T02:00:00Z"),
        record("2026-11-03T00:00:00", "2026-11-01T02:00:00Z", ok=False),
        record("2026-11-04T00:00:00", "2026-11-01T02:00:00Z", source="dump:/other"),
        {"kind": "drill", "started_at": "2026-11-05T00:00:00"},
    ]
    assert previous_test(records, "dumps:/b", "2026-11-01T02:00:00.5Z") == records[1]
    assert previous_test(records, "dumps:/b", "2026-10-31T12:00:00Z") == records[0]
    assert previous_test(records, "dumps:/b", "2026-10-01T00:00:00Z") is None


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.1", 0.1), ("0%", 0.0)])
def test_fractions(text: str, value: float) -> None:
    assert parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["100%", "-1%", "five"])
def test_bad_fractions(text: str) -> None:
    with pytest.raises(ValueError, match="percentage"):
        parse_fraction(text)
