"""The flow of every drill: arm, warm up, damage (recorded instant), detect, recover, verify (layer 3),
measure RPO against the ledger and RTO by phase, judge against the objectives, record. A drill that
crashes in any step is recorded too, with verdict `error` and the step it reached."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fixtures.drill import Drill
from fixtures.session import DrillSetupError
from layers.appchecks import benchmark
from layers.verify import AppExpectations, Check, Verification
from reports.details import checked
from reports.machine import commit_info, machine_info
from reports.redact import redact
from reports.result import DrillError, DrillResult, Objectives, judge
from reports.stopwatch import Stopwatch
from scenarios.base import Scenario
from scenarios.candidates import serve_newest_sound
from scenarios.protection import protect_again
from scenarios.service import restore_service


class DrillCrashed(RuntimeError):
    """A drill step raised; `result` is the `error` record already in the history (the cause is chained)."""

    def __init__(self, result: DrillResult) -> None:
        assert result.error is not None
        super().__init__(f"{result.scenario} on {result.backend} {result.error.describe()}")
        self.result = result


@dataclass
class Progress:
    """How far a drill got: the step it is in, and its clocks once the damage is done."""

    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    phase: str = "arm"
    failure_at: float | None = None  # wall clock of the damage
    watch: Stopwatch | None = None


def run_drill(drill: Drill, scenario: Scenario) -> DrillResult:
    """Run the scenario and record its result; a crash is recorded as an `error` result, then raised as
    DrillCrashed (chained to the exception). A DrillSetupError (the run's configuration cannot work, e.g.
    an endpoint that does not answer) stops the whole run instead, before anything is recorded; the run's
    manifest still names every case it left without a result."""
    progress = Progress()
    try:
        result = _execute(drill, scenario, progress)
    except DrillSetupError:
        raise
    except Exception as exc:
        crashed = _crashed_result(drill, scenario, progress, exc)
        drill.session.record(crashed)
        raise DrillCrashed(crashed) from exc
    drill.session.record(result)
    return result


def _execute(drill: Drill, scenario: Scenario, progress: Progress) -> DrillResult:
    config = drill.config
    scenario.arm(drill)
    progress.phase = "warm-up"
    drill.warm_up()
    if scenario.prepare is not None:
        progress.phase = "prepare"
        scenario.prepare(drill)
    progress.phase = "baseline"
    app = drill.app_checks
    baseline = benchmark(drill.serving().http_url, app.benchmark, config.benchmark_repeat, headers=drill.target_headers)

    progress.phase, progress.failure_at = "damage", time.time()
    if drill.traffic is not None:
        drill.traffic.damage_at = progress.failure_at
    watch = progress.watch = Stopwatch()
    scenario.damage(drill)
    progress.phase = "detect"
    watch.mark("detect", scenario.detect(drill))
    if drill.traffic is not None:
        drill.traffic.hold_writes()  # the application has seen the outage
    progress.phase = "recover"
    recovery = scenario.recover(drill, watch)

    progress.phase = "verify"
    expectations = AppExpectations(app, baseline, config.benchmark_repeat, config.benchmark_max_slowdown)
    verification, judged_checks, judged = serve_newest_sound(drill, recovery, expectations)
    watch.mark("verify")
    progress.phase = "repoint"
    service = restore_service(drill, watch, progress.failure_at, verification)
    progress.phase = "protect"  # not RTO: the service is back; the layers armed again, first copies proven
    protection = protect_again(drill)
    details = {**recovery.details, **judged, **service.details, **protection.details}
    checks = [*recovery.checks, *judged_checks, *service.checks, *protection.checks]
    return _judged_result(drill, scenario, progress, verification, details, checks, service.view.outage_seconds)


def _objectives(drill: Drill, scenario: Scenario) -> Objectives:
    return scenario.objectives.override(dict(drill.config.objectives.get(scenario.name, {})))


def _checks(drill: Drill, verification: Verification, scenario_checks: list[Check]) -> list[Check]:
    checks = [*verification.checks, *scenario_checks]  # a scenario's own (e.g. which regions it read)
    if drill.scheduler is not None:
        successes = sum(1 for e in drill.notifications.events() if e.layer == 1 and e.kind == "success")
        checks.append(Check("layer1_notified", successes > 0, f"{successes} success notification(s)"))
    return checks


def _judged_result(
    drill: Drill,
    scenario: Scenario,
    progress: Progress,
    verification: Verification,
    details: dict[str, Any],
    scenario_checks: list[Check],
    app_outage: float | None,
) -> DrillResult:
    assert progress.watch is not None and progress.failure_at is not None
    watch, objectives = progress.watch, _objectives(drill, scenario)
    checks = _checks(drill, verification, scenario_checks)
    loss = verification.loss
    rpo_seconds = loss.rpo_seconds(progress.failure_at)
    failures = judge(objectives, rto=watch.total, rpo_seconds=rpo_seconds, rpo_writes=len(loss.lost),
                     check_failures=[f"{c.name}: {c.detail}" for c in checks if not c.ok])  # fmt: skip
    recorded = _recorded_details(drill, progress)
    recorded.update(details)
    recorded.update(recovery_cut_write=loss.cut, row_counts=dict(verification.counts))
    return DrillResult(
        **_identity(drill, scenario, progress),
        phases=dict(watch.phases), rto_seconds=watch.total,
        rpo_writes=len(loss.lost), rpo_rows=loss.lost_rows, rpo_seconds=rpo_seconds,
        **_write_counts(drill), objectives=objectives,
        checks=[{"name": c.name, "ok": c.ok, "detail": c.detail, "seconds": round(c.seconds, 4)} for c in checks],
        failures=failures, details=checked(recorded), app_outage_seconds=app_outage,
    )  # fmt: skip


def _crashed_result(drill: Drill, scenario: Scenario, progress: Progress, exc: Exception) -> DrillResult:
    """The `error` record of a drill that raised: where it got to, what it raised, nothing judged."""
    error = DrillError(phase=progress.phase, type=type(exc).__name__, message=redact(str(exc))[:2000])
    watch = progress.watch
    return DrillResult(
        **_identity(drill, scenario, progress),
        phases=dict(watch.phases) if watch else {}, rto_seconds=watch.total if watch else 0.0,
        rpo_writes=0, rpo_rows=0, rpo_seconds=0.0, **_write_counts(drill),
        objectives=_objectives(drill, scenario), checks=[], failures=[error.describe()],
        details=_recorded_details(drill, progress), error=error,
    )  # fmt: skip


def _identity(drill: Drill, scenario: Scenario, progress: Progress) -> dict[str, Any]:
    """What every record of the drill carries, judged or crashed: which drill, where, on what."""
    session = drill.session
    return {
        "run_id": session.run_id, "drill": drill.name, "case": drill.case, "scenario": scenario.name,
        "layers": scenario.layer_label, "started_at": progress.started_at, "backend": drill.backend,
        "image": session.image.ref if drill.backend == "container" else "",
        "sqld_version": str(drill.details.get("sqld_version", "")),
        "scale": drill.config.scale.label if drill.seed.source == "builtin" else drill.seed.scale,
        "db_bytes": drill.seed.bytes, "machine": machine_info(), "commit": commit_info(),
        "backend_fallback": session.backend_fallback if drill.backend != "container" else "",
    }  # fmt: skip


def _write_counts(drill: Drill) -> dict[str, Any]:
    writes = drill.ledger.writes
    return {
        "acked_writes": sum(1 for w in writes if not w.in_doubt),
        "in_doubt_writes": sum(1 for w in writes if w.in_doubt),
    }


def _recorded_details(drill: Drill, progress: Progress) -> dict[str, Any]:
    recorded: dict[str, Any] = {k: v for k, v in drill.details.items() if k != "sqld_version"}
    if progress.failure_at is not None:
        recorded["failure_at"] = datetime.fromtimestamp(progress.failure_at, UTC).isoformat()
    recorded["artifacts"] = str(drill.artifacts)
    if drill.scheduler is not None:  # layer 1 was armed: what it did before the damage (audit reads it)
        recorded["backups_taken"] = drill.scheduler.succeeded
    return recorded
