"""The flow of every drill: arm, warm up, damage (recorded instant), detect, recover, verify (layer 3),
measure RPO against the ledger and RTO by phase, judge against the objectives, record."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fixtures.drill import Drill
from layers.appchecks import benchmark
from layers.verify import AppExpectations, Check, verify
from reports.machine import commit_info, machine_info
from reports.result import DrillResult, judge
from reports.stopwatch import Stopwatch
from scenarios.base import Scenario


def run_drill(drill: Drill, scenario: Scenario) -> DrillResult:
    config = drill.config
    objectives = scenario.objectives.override(dict(config.objectives.get(scenario.name, {})))
    started_at = datetime.now(UTC).isoformat()
    scenario.arm(drill)
    drill.warm_up()
    if scenario.prepare is not None:
        scenario.prepare(drill)

    app = drill.app_checks
    assert drill.primary is not None
    baseline = benchmark(drill.primary.http_url, app.benchmark, config.benchmark_repeat, headers=drill.target_headers)

    failure_at = time.time()
    watch = Stopwatch()
    scenario.damage(drill)
    watch.mark("detect", scenario.detect(drill))
    drill.stop_traffic()
    details = scenario.recover(drill, watch)

    assert drill.primary is not None
    expectations = AppExpectations(app, baseline, config.benchmark_repeat, config.benchmark_max_slowdown)
    served = drill.recovered  # a file verified before it served: only what needs the server is checked now
    verification = verify(
        drill.primary.http_url,
        tables=drill.seed.verified,
        base=drill.seed.tables,
        writes=drill.ledger.writes,
        app=expectations,
        headers=drill.target_headers,
        checked_file=served.verification if served is not None and served.server is drill.primary else None,
    )
    watch.mark("verify")

    checks = list(verification.checks)
    checks += details.pop("checks", [])  # a scenario's own Checks (e.g. which regions its recovery read)
    if drill.scheduler is not None:
        successes = sum(1 for e in drill.notifications.events() if e.layer == 1 and e.kind == "success")
        checks.append(Check("layer1_notified", successes > 0, f"{successes} success notification(s)"))
    loss = verification.loss
    rpo_seconds = loss.rpo_seconds(failure_at)
    failures = judge(
        objectives,
        rto=watch.total,
        rpo_seconds=rpo_seconds,
        rpo_writes=len(loss.lost),
        check_failures=[f"{c.name}: {c.detail}" for c in checks if not c.ok],
    )
    writes = drill.ledger.writes
    recorded = {k: v for k, v in drill.details.items() if k != "sqld_version"}
    recorded.update(details)
    recorded.update(
        recovery_cut_write=loss.cut,
        row_counts=dict(verification.counts),
        failure_at=datetime.fromtimestamp(failure_at, UTC).isoformat(),
        artifacts=str(drill.artifacts),
    )
    result = DrillResult(
        run_id=drill.session.run_id,
        drill=drill.name,
        scenario=scenario.name,
        layers=scenario.layer_label,
        started_at=started_at,
        backend=drill.backend,
        image=drill.session.image.ref if drill.backend == "container" else "",
        sqld_version=str(drill.details.get("sqld_version", "")),
        scale=config.scale.label if drill.seed.source == "builtin" else drill.seed.scale,  # seed:FILE on your own seed
        db_bytes=drill.seed.bytes,
        phases=dict(watch.phases),
        rto_seconds=watch.total,
        rpo_writes=len(loss.lost),
        rpo_rows=loss.lost_rows,
        rpo_seconds=rpo_seconds,
        acked_writes=sum(1 for w in writes if not w.in_doubt),
        in_doubt_writes=sum(1 for w in writes if w.in_doubt),
        objectives=objectives,
        checks=[{"name": c.name, "ok": c.ok, "detail": c.detail, "seconds": round(c.seconds, 4)} for c in checks],
        failures=failures,
        details=recorded,
        machine=machine_info(),
        commit=commit_info(),
    )
    drill.session.record(result)
    return result
