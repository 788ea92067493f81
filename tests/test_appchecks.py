"""Layer 3's application checks and benchmark as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers.appchecks import AppCheck, AppChecksError, compare_benchmark, load_app_checks, run_check

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_checks_load() -> None:
    checks = load_app_checks(ROOT / "layers" / "app_checks.toml")
    assert len(checks.checks) >= 5 and len(checks.benchmark) >= 2
    assert all(c.sql.strip().upper().startswith("SELECT") for c in checks.checks)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[check]]\nname='x'\nsql='SELECT 1'\n", "needs name, sql and expect"),
        ("[[benchmark]]\nname='x'\n", "needs name and sql"),
        ("[[chek]]\nname='x'\n", "unknown section"),
        ("[[check]\n", "not valid TOML"),
    ],
)
def test_bad_checks_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "checks.toml"
    path.write_text(text)
    with pytest.raises(AppChecksError, match=message) as err:
        load_app_checks(path)
    assert str(path) in str(err.value)


def test_missing_checks_file(tmp_path: Path) -> None:
    with pytest.raises(AppChecksError, match="does not exist"):
        load_app_checks(tmp_path / "nope.toml")


class FakeSession:
    def __init__(self, rows: list[tuple[object, ...]]) -> None:
        self.rows = rows

    def execute(self, sql: str) -> object:
        return type("R", (), {"rows": self.rows})()


def test_run_check_compares_the_single_value() -> None:
    check = AppCheck("no negatives", "SELECT count(*) FROM t WHERE x < 0", 0)
    assert run_check(FakeSession([(0,)]), check)[0]  # type: ignore[arg-type]
    ok, detail = run_check(FakeSession([(3,)]), check)  # type: ignore[arg-type]
    assert not ok and "returned 3, expected 0" in detail


def test_benchmark_slowdown_threshold() -> None:
    ok, detail = compare_benchmark({"q": 0.010}, {"q": 0.020}, max_slowdown=3)
    assert ok and "2.00x" in detail
    ok, detail = compare_benchmark({"q": 0.010}, {"q": 0.050}, max_slowdown=3)
    assert ok and "5.00x" in detail  # 40 ms slower: within the noise floor
    ok, detail = compare_benchmark({"q": 0.100}, {"q": 0.500}, max_slowdown=3)
    assert not ok and "5.00x" in detail


def test_bad_checks_file_stops_the_run_before_anything_starts(tmp_path: Path) -> None:
    from tests.drillrun import run_pytest

    bad = tmp_path / "checks.toml"
    bad.write_text("[[check]]\nname = 'half'\n")
    run = run_pytest(["drills", f"--drill-app-checks={bad}"], tmp_path, timeout=120)
    assert run.returncode == 4, run.output[-2000:]
    assert "drill_app_checks" in run.output and "needs name, sql and expect" in run.output
