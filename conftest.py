"""The pytest plugin of the drill runner: settings (ini + --drill-* flags) read once into a DrillSession,
the `drill` fixtures, results carried on the test reports, and the summary table at the end."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fixtures.config import ConfigError, add_options, read_config
from fixtures.drill import Drill
from fixtures.session import DrillSession, DrillSetupError, resolve_backends
from reports.result import DrillResult
from reports.summary import summary_lines
from scenarios.base import Scenario
from scenarios.runner import run_drill

SESSION = pytest.StashKey[DrillSession]()
PYTEST_SESSION = pytest.StashKey[pytest.Session]()  # to fail the run on drill regressions (drill_compare_fail)
RESULT_PROPERTY = "drill_result"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _interrupt_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    try:
        session = DrillSession(read_config(config), config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SESSION] = session
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (CI cancel, `kill`) unwinds like Ctrl-C, so fixtures tear their servers down.
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


def pytest_sessionstart(session: pytest.Session) -> None:
    """End whatever a killed earlier run left running (its owner process is gone)."""
    session.config.stash[PYTEST_SESSION] = session
    swept = session.config.stash[SESSION].reaper.sweep_stale()
    if swept:
        session.config.get_terminal_writer().line(f"drill: ended leftovers of {len(swept)} killed run(s)")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION, None)
    if session is not None:
        session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "drill_backend" in metafunc.fixturenames:
        backends = resolve_backends(metafunc.config.stash[SESSION].config.backends)
        metafunc.parametrize("drill_backend", backends, ids=list(backends))


@pytest.fixture(scope="session")
def drill_session(pytestconfig: pytest.Config) -> DrillSession:
    return pytestconfig.stash[SESSION]


def _setup_failed(exc: DrillSetupError) -> None:
    pytest.exit(f"drill setup failed: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def drill(request: pytest.FixtureRequest, drill_session: DrillSession, drill_backend: str) -> Iterator[Drill]:
    """A drill's own servers, buckets, workload and ledger, torn down after the test. A test marked
    `@pytest.mark.drill_seed("SPEC")` drills that seed (a drill_seed value) instead of the session's."""
    marker = request.node.get_closest_marker("drill_seed")
    try:
        instance = Drill(drill_session, drill_backend, request.node.nodeid, seed=marker.args[0] if marker else None)
    except DrillSetupError as exc:
        _setup_failed(exc)
        raise
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def run_scenario(drill: Drill, request: pytest.FixtureRequest) -> Callable[[Scenario], DrillResult]:
    """Run a scenario end to end; the result rides on the test report (JUnit properties, xdist)."""

    def run(scenario: Scenario) -> DrillResult:
        if scenario.builtin_schema_only and drill.seed.source != "builtin":
            pytest.skip(
                f"{scenario.name} damages tables of the built-in schema; not applicable to seed {drill.seed.source}"
            )
        try:
            result = run_drill(drill, scenario)
        except DrillSetupError as exc:
            _setup_failed(exc)
            raise
        props = request.node.user_properties
        props.append((RESULT_PROPERTY, result.to_json()))
        props += [("rpo_seconds", f"{result.rpo_seconds:.3f}"), ("rpo_writes", str(result.rpo_writes)),
                  ("rto_seconds", f"{result.rto_seconds:.3f}"), ("verdict", result.verdict)]  # fmt: skip
        return result

    return run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    results = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", []):
                if name == RESULT_PROPERTY:
                    results.append(DrillResult.from_dict(json.loads(value)))
    if not results:
        return
    terminalreporter.write_sep("=", "disaster-recovery drills")
    for line in summary_lines(sorted(results, key=lambda r: (r.scenario, r.backend, r.scale))):
        terminalreporter.write_line(line)
    session = config.stash.get(SESSION, None)
    if session is not None:
        terminalreporter.write_line(f"history: {session.history.uri}   artifacts: {session.artifacts}")
    if session is not None and (session.config.report or session.config.compare_fail):
        _report_and_compare(terminalreporter, config, session, sorted({r.run_id for r in results}))


def _report_and_compare(
    terminalreporter: Any, config: pytest.Config, session: DrillSession, run_ids: list[str]
) -> None:
    """drill_report: write the report; drill_compare_fail: report every regression once and fail the run
    (as pytest-benchmark's --benchmark-compare-fail)."""
    from reports.render import session_report  # pandas and matplotlib only when asked for

    outcome = session_report(run_ids, session.history, session.config, config.rootpath)
    for line in outcome.lines:
        terminalreporter.write_line(line, red=bool(outcome.regressions) and not line.startswith("report:"))
    if outcome.regressions:
        config.stash[PYTEST_SESSION].exitstatus = pytest.ExitCode.TESTS_FAILED
