"""The pytest plugin of the drill runner: settings (ini + --drill-* flags) read once into a DrillSession,
the `drill` fixtures, results carried on the test reports, and the summary table at the end."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from fixtures.config import ConfigError, add_options, read_config
from fixtures.drill import Drill
from fixtures.session import DrillSession, DrillSetupError
from reports.manifest import ExpectedCase
from reports.result import DrillResult
from reports.summary import summary_lines
from scenarios.base import Scenario
from scenarios.runner import DrillCrashed, run_drill

SESSION = pytest.StashKey[DrillSession]()
PYTEST_SESSION = pytest.StashKey[pytest.Session]()  # to fail the run on drill regressions (drill_compare_fail)
RESULT_PROPERTY = "drill_result"
RUN_ID_INPUT = "drill_run_id"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _interrupt_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # xdist workers share the run id their controller made, so one run holds every worker's results
    run_id = getattr(config, "workerinput", {}).get(RUN_ID_INPUT)
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    try:
        session = DrillSession(read_config(config), config.rootpath, run_id=run_id, worker=worker)
        if "container" in session.config.backends:
            session.engine()  # asked for by name: an engine that cannot run the image stops the run here
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    except DrillSetupError as exc:
        raise pytest.UsageError(f"drill setup failed: {exc}") from None
    config.stash[SESSION] = session
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistRunId(session.run_id), "drill-xdist-run-id")
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (CI cancel, `kill`) unwinds like Ctrl-C, so fixtures tear their servers down.
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


class _XdistRunId:
    """Hands the controller's run id to every xdist worker (a hook only xdist calls)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_ID_INPUT] = self.run_id


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
        try:
            backends = metafunc.config.stash[SESSION].backends()
        except DrillSetupError as exc:
            _setup_failed(exc)
        metafunc.parametrize("drill_backend", backends, ids=list(backends))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The run manifest: every drill case collected, so a certificate can tell which never recorded."""
    drill_session = session.config.stash[SESSION]
    cases = [_expected_case(item) for item in session.items if item.get_closest_marker("drill")]
    if cases:
        drill_session.record_manifest(cases)
    if drill_session.backend_fallback and cases:
        session.config.get_terminal_writer().line(f"drill: {drill_session.backend_fallback}", yellow=True)


def _expected_case(item: pytest.Item) -> ExpectedCase:
    params = getattr(item, "callspec", None)
    values = params.params if params is not None else {}
    named = [v.name for v in values.values() if isinstance(v, Scenario)]
    marker = item.get_closest_marker("drill")
    scenario = named[0] if named else str(marker.kwargs.get("scenario", "")) if marker else ""
    return ExpectedCase(item.nodeid, scenario, str(values.get("drill_backend", "")))


@pytest.fixture(scope="session")
def drill_session(pytestconfig: pytest.Config) -> DrillSession:
    return pytestconfig.stash[SESSION]


def _setup_failed(exc: DrillSetupError) -> NoReturn:
    pytest.exit(f"drill setup failed: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


def _new_drill(request: pytest.FixtureRequest, session: DrillSession, backend: str, name: str) -> Drill:
    """A test marked `@pytest.mark.drill_seed("SPEC")` drills that seed (a drill_seed value) instead of the
    session's."""
    marker = request.node.get_closest_marker("drill_seed")
    try:
        return Drill(session, backend, name, seed=marker.args[0] if marker else None, case=request.node.nodeid)
    except DrillSetupError as exc:
        _setup_failed(exc)


@pytest.fixture
def drill(request: pytest.FixtureRequest, drill_session: DrillSession, drill_backend: str) -> Iterator[Drill]:
    """A drill's own servers, buckets, workload and ledger, torn down after the test."""
    instance = _new_drill(request, drill_session, drill_backend, request.node.nodeid)
    try:
        yield instance
    finally:
        instance.close()


def _carry(request: pytest.FixtureRequest, result: DrillResult) -> None:
    """The result rides on the test report (summary table, JUnit properties, xdist)."""
    props = request.node.user_properties
    props.append((RESULT_PROPERTY, result.to_json()))
    props += [("rpo_seconds", f"{result.rpo_seconds:.3f}"), ("rpo_writes", str(result.rpo_writes)),
              ("rto_seconds", f"{result.rto_seconds:.3f}"), ("verdict", result.verdict)]  # fmt: skip


@pytest.fixture
def run_scenario(
    drill: Drill, request: pytest.FixtureRequest, drill_session: DrillSession, drill_backend: str
) -> Callable[..., DrillResult]:
    """`run_scenario(scenario)` runs it end to end on the test's drill; `fresh=True` on a new drill of its
    own (a property drill runs one per example). A crash is recorded as an `error` result and fails the test."""
    runs = 0

    def run(scenario: Scenario, *, fresh: bool = False) -> DrillResult:
        nonlocal runs
        if scenario.builtin_schema_only and drill.seed.source != "builtin":
            pytest.skip(
                f"{scenario.name} damages tables of the built-in schema; not applicable to seed {drill.seed.source}"
            )
        runs += 1
        target = _new_drill(request, drill_session, drill_backend, f"{request.node.nodeid}[{runs}]") if fresh else drill
        try:
            result = run_drill(target, scenario)
        except DrillCrashed as crash:
            _carry(request, crash.result)
            raise
        except DrillSetupError as exc:
            _setup_failed(exc)
        finally:
            if fresh:
                target.close()
        _carry(request, result)
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
