"""Layer 3's application checks and benchmark, as data: a TOML file of SQL checks with the single value
each must return, and representative queries timed before the damage and after the recovery."""

from __future__ import annotations

import statistics
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fixtures.hrana import HranaSession, Value

# the builtin seed's checks and benchmark queries, shipped as package data (drill_app_checks=auto)
BUILTIN_APP_CHECKS = Path(__file__).with_name("app_checks.toml")


class AppChecksError(ValueError):
    pass


@dataclass(frozen=True)
class AppCheck:
    name: str
    sql: str
    expect: Value


@dataclass(frozen=True)
class BenchQuery:
    name: str
    sql: str


@dataclass(frozen=True)
class AppChecks:
    checks: tuple[AppCheck, ...] = ()
    benchmark: tuple[BenchQuery, ...] = ()


def load_app_checks(path: Path) -> AppChecks:
    """Read the checks file; every problem names the file, the entry and the fix."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AppChecksError(f"app checks file {path} does not exist: set drill_app_checks to a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AppChecksError(f"app checks file {path} is not valid TOML (UTF-8): {exc}") from None
    except OSError as exc:
        raise AppChecksError(
            f"app checks file {path} cannot be read ({exc.strerror}): set drill_app_checks to a readable TOML file"
        ) from None
    for section in ("check", "benchmark"):
        if not isinstance(raw.get(section, []), list):
            raise AppChecksError(f"{path}: {section} must be an array of tables: write each entry as [[{section}]]")
    checks, bench = [], []
    for i, entry in enumerate(raw.get("check", []), 1):
        if not isinstance(entry, dict) or not {"name", "sql", "expect"} <= entry.keys():
            raise AppChecksError(
                f"{path}: [[check]] #{i} needs name, sql and expect (the single value the SQL returns)"
            )
        if not isinstance(entry["expect"], str | int | float):  # bool is an int; SQL has no dates, arrays or tables
            raise AppChecksError(
                f"{path}: [[check]] #{i} ({str(entry['name'])[:40]!r}) expect is a {type(entry['expect']).__name__}: "
                "use the single string or number the SQL returns"
            )
        checks.append(AppCheck(str(entry["name"]), str(entry["sql"]), entry["expect"]))
    for i, entry in enumerate(raw.get("benchmark", []), 1):
        if not isinstance(entry, dict) or not {"name", "sql"} <= entry.keys():
            raise AppChecksError(f"{path}: [[benchmark]] #{i} needs name and sql")
        bench.append(BenchQuery(str(entry["name"]), str(entry["sql"])))
    unknown = set(raw) - {"check", "benchmark"}
    if unknown:
        raise AppChecksError(f"{path}: unknown section(s) {sorted(unknown)}: use [[check]] and [[benchmark]]")
    return AppChecks(tuple(checks), tuple(bench))


def run_check(s: HranaSession, check: AppCheck) -> tuple[bool, str]:
    rows = s.execute(check.sql).rows
    got = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows
    return got == check.expect, f"returned {got!r}, expected {check.expect!r}"


def benchmark(
    url: str, queries: tuple[BenchQuery, ...], repeat: int, *, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """Median seconds of each query over `repeat` runs (after one warm-up run)."""
    out = {}
    with HranaSession(url, headers=headers) as s:
        for query in queries:
            s.execute(query.sql)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                s.execute(query.sql)
                times.append(time.perf_counter() - start)
            out[query.name] = statistics.median(times)
    return out


NOISE_FLOOR = 0.05  # seconds: on a shared machine, slower by less than this is noise, whatever the ratio


def compare_benchmark(baseline: dict[str, float], restored: dict[str, float], max_slowdown: float) -> tuple[bool, str]:
    """Each query's restored/baseline ratio must stay within max_slowdown (unless it is slower by less
    than NOISE_FLOOR seconds, which a millisecond query on a busy machine can be by chance)."""
    ratios = {
        name: restored[name] / baseline[name] if baseline[name] > 0 else 1.0 for name in restored if name in baseline
    }
    slow = {name: r for name, r in ratios.items() if r > max_slowdown and restored[name] - baseline[name] > NOISE_FLOOR}
    detail = ", ".join(f"{name} {restored[name] * 1000:.2f}ms ({ratios[name]:.2f}x)" for name in ratios)
    return not slow, detail or "no benchmark queries"
