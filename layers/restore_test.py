"""What a restore test of a team's backup checks, each check able to fail: the restore itself (complete:
no gap, no unreadable object), integrity, foreign keys, per-table row counts against an expectation (a
counts file, or the previous passing restore test of the same source in the history, at a point no newer),
the application's checks, a rolled-back write, and a benchmark against the previous test's timings. A
first run records the baseline and says so. The result is one JSON object and a `restore-test` record."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fixtures.hrana import HranaError, HranaSession
from fixtures.seed import TABLES
from layers.appchecks import (
    BUILTIN_APP_CHECKS,
    AppCheck,
    AppChecks,
    BenchQuery,
    benchmark,
    compare_benchmark,
    load_app_checks,
)
from layers.appchecks import run_check as run_app_check
from layers.recovery_points import iso
from layers.source_access import Restored
from layers.verify import Check, fk_check, single_value_check, timed, write_probe
from reports.restore_tests import RESTORE_TEST_KIND

USER_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'libsql_%' "
    "ORDER BY name"
)


@dataclass(frozen=True)
class Expected:
    """What a restore is judged against, and where that came from (None: this run is the baseline)."""

    origin: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Limits:
    max_row_drop: float = 0.05  # fraction of a table's expected rows that may be missing
    max_slowdown: float = 5.0  # restored / baseline median time per benchmark query
    repeat: int = 5


def parse_fraction(text: str) -> float:
    """'5%' or '0.05' -> 0.05."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise ValueError(f"--max-row-drop {text!r}: use a percentage such as 5% (or a fraction such as 0.05)")
    return value


def load_counts(path: Path) -> Expected:
    """A counts file the team keeps: a JSON object {table: rows}."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"--expect-counts {path}: not a readable JSON file ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw.values()):
        raise ValueError(f"--expect-counts {path}: write a JSON object of table name -> row count")
    return Expected(f"counts file {path}", {str(k): int(v) for k, v in raw.items()})


def _when(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def previous_test(records: Iterable[dict[str, Any]], source: str, achieved: str | None) -> dict[str, Any] | None:
    """The newest passing restore test of `source` whose point is not newer than `achieved`."""
    limit = _when(achieved) if achieved else None
    earlier = []
    for r in records:
        if r.get("kind") != RESTORE_TEST_KIND or r.get("source") != source or not r.get("ok"):
            continue
        point = _when(r.get("point_achieved"))
        if limit is None or (point is not None and point <= limit):
            earlier.append(r)
    return max(earlier, key=lambda r: str(r.get("started_at", "")), default=None)


def judge_row_counts(
    counts: Mapping[str, int], expected: Expected | None, max_drop: float, unreadable: Iterable[str] = ()
) -> Check:
    summary = ", ".join(f"{t} {n}" for t, n in counts.items())
    if not counts or unreadable:
        return Check("row_counts", False, "; ".join(unreadable) or "the restored database holds no table")
    if expected is None:
        return Check("row_counts", True, f"baseline recorded (no earlier restore test of this source): {summary}")
    wrong = []
    for table, want in expected.values.items():
        got = counts.get(table)
        if got is None:
            wrong.append(f"{table}: missing (expected {want} rows)")
        elif want > 0 and (want - got) / want > max_drop:
            wrong.append(f"{table}: {got} rows, {(want - got) / want:.1%} fewer than {want}")
    if wrong:
        return Check("row_counts", False, f"{'; '.join(wrong)} (limit {max_drop:.0%}, against {expected.origin})")
    return Check("row_counts", True, f"within {max_drop:.0%} of {expected.origin}: {summary}")


def judge_benchmark(timings: Mapping[str, float], expected: Expected | None, max_slowdown: float) -> Check:
    if not timings:
        return Check("benchmark", False, "no benchmark query ran")
    common = {k: float(v) for k, v in (expected.values if expected else {}).items() if k in timings}
    if expected is None or not common:
        detail = ", ".join(f"{n} {t * 1000:.2f}ms" for n, t in timings.items())
        return Check("benchmark", True, f"baseline recorded (no earlier timings of these queries): {detail}")
    ok, detail = compare_benchmark(common, dict(timings), max_slowdown)
    return Check("benchmark", ok, f"{detail} (limit {max_slowdown:g}x {expected.origin})")


def load_checks_option(checks: str) -> AppChecks | None:
    """--checks: 'auto' (None: decided by the schema), '' none, else a TOML file (read now: bad input stops
    the run before anything is restored)."""
    if checks == "auto":
        return None
    return load_app_checks(Path(checks)) if checks else AppChecks()


def choose_app_checks(given: AppChecks | None, tables: Iterable[str]) -> tuple[AppChecks, str]:
    """The built-in checks apply only to the built-in schema; a foreign schema gets none unless given."""
    if given is not None:
        return given, f"app checks: {len(given.checks)} given" if given.checks else "app checks: none (--checks '')"
    if set(TABLES) <= set(tables):
        return load_app_checks(BUILTIN_APP_CHECKS), "app checks: the built-in schema's"
    return AppChecks(), "app checks: none (not the built-in schema; give your own with --checks FILE)"


def expectations(records: Iterable[dict[str, Any]], source: str, achieved: str | None,
                 counts: Expected | None) -> tuple[Expected | None, Expected | None]:  # fmt: skip
    """(row counts, benchmark timings) to judge against: the counts file, else the previous restore test."""
    previous = previous_test(records, source, achieved)
    if previous is None:
        return counts, None
    origin = f"the restore test of {previous.get('started_at')} (point {previous.get('point_achieved')})"
    return counts or Expected(origin, previous.get("row_counts") or {}), Expected(
        origin, previous.get("benchmark") or {}
    )


def database_checks(s: HranaSession) -> list[Check]:
    """integrity_check, foreign_key_check and a rolled-back write (a read-only database fails it): layer 3's own."""
    return [
        timed("integrity_check", lambda: single_value_check(s, "PRAGMA integrity_check")),
        timed("foreign_key_check", lambda: fk_check(s)),
        timed("write_probe", lambda: write_probe(s)),
    ]


def count_rows(s: HranaSession, tables: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """(rows per table, tables that could not be counted, with why)."""
    counts, unreadable = {}, []
    for table in tables:
        try:
            counts[table] = int(str(s.execute(f'SELECT count(*) FROM "{table}"').rows[0][0]))
        except HranaError as exc:
            unreadable.append(f"{table}: unreadable ({str(exc)[:200]})")
    return counts, unreadable


def restore_check(restored: Restored) -> Check:
    rate = restored.bytes / 1e6 / restored.seconds if restored.seconds > 0 else 0.0
    if restored.problems:
        return Check("restore", False, "incomplete: " + "; ".join(restored.problems), restored.seconds)
    where = ", ".join(f"{k} {v}" for k, v in restored.details.items() if v is not None)
    detail = f"{restored.bytes / 1e6:.2f} MB in {restored.seconds:.2f}s ({rate:.2f} MB/s)" + (
        f"; {where}" if where else ""
    )
    return Check("restore", True, detail, restored.seconds)


@dataclass(frozen=True)
class RestoreTestResult:
    started_at: str
    source: str
    point_requested: str
    restored: Restored
    row_counts: Mapping[str, int]
    checks: tuple[Check, ...]
    timings: Mapping[str, float]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        r = self.restored
        return {
            "kind": RESTORE_TEST_KIND, "started_at": self.started_at, "ok": self.ok, "source": self.source,
            "point_requested": self.point_requested, "point_achieved": iso(r.achieved) if r.achieved else None,
            "row_counts": dict(self.row_counts), "checks": [asdict(c) for c in self.checks],
            "restore_seconds": round(r.seconds, 3), "restore_bytes": r.bytes,
            "restore_mb_per_second": round(r.bytes / 1e6 / r.seconds, 3) if r.seconds > 0 else None,
            "point_lag_seconds": self.point_lag(), "benchmark": dict(self.timings), "details": r.details,
            "notes": list(self.notes),
        }  # fmt: skip

    def point_lag(self) -> float | None:
        """Seconds between the point asked for (a time) and the one restored: the data a restore there lacks."""
        asked = _when(self.point_requested)
        achieved = self.restored.achieved
        return round((asked - achieved).total_seconds(), 3) if asked and achieved else None


def generic_benchmark(tables: Iterable[str]) -> tuple[BenchQuery, ...]:
    """For a schema without its own benchmark: a full count of each table."""
    return tuple(BenchQuery(f"count {t}", f'SELECT count(*) FROM "{t}"') for t in tables)


def check_restored(url: str, given: AppChecks | None, counts_expected: Expected | None, timings_expected: Expected | None,
                   limits: Limits) -> tuple[list[Check], dict[str, int], dict[str, float], list[str]]:  # fmt: skip
    """Every check after the restore: (checks, row counts, benchmark timings, notes)."""
    with HranaSession(url) as s:
        tables = [str(r[0]) for r in s.execute(USER_TABLES).rows]
        counts, unreadable = count_rows(s, tables)
        app, note = choose_app_checks(given, tables)
        out = database_checks(s)
        out.append(judge_row_counts(counts, counts_expected, limits.max_row_drop, unreadable))
        out += [_app(s, c) for c in app.checks]
    queries = app.benchmark or generic_benchmark(counts)
    try:
        timings = benchmark(url, queries, limits.repeat) if queries else {}
    except HranaError as exc:
        timings = {}
        out.append(Check("benchmark", False, f"a benchmark query failed: {exc}"[:500]))
    else:
        out.append(judge_benchmark(timings, timings_expected, limits.max_slowdown))
    bench_note = (
        "benchmark: the app checks file's queries" if app.benchmark else "benchmark: a full count of each table"
    )
    return out, counts, timings, [note, bench_note]


def _app(s: HranaSession, check: AppCheck) -> Check:
    try:
        return Check(f"app: {check.name}", *run_app_check(s, check))
    except HranaError as exc:
        return Check(f"app: {check.name}", False, f"{type(exc).__name__}: {exc}"[:500])
