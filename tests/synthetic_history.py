"""Synthetic drill histories for the report tests: real DrillResult records (so the schema is the one
the drills write), several runs over weeks, all four layers, both backends, and knobs to break them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from reports.result import DrillResult, Objectives

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
# scenario -> (layers, objectives, base RTO, base RPO seconds)
SCENARIOS: dict[str, tuple[str, Objectives, float, float]] = {
    "total-loss": ("1+3", Objectives(rpo_seconds=15, rto_seconds=60), 1.5, 2.0),
    "table-corruption-page": ("1+3", Objectives(rpo_seconds=15, rto_seconds=60), 2.0, 3.0),
    "row-deletion-rewind": ("2+3", Objectives(rpo_seconds=5, rto_seconds=60), 1.8, 0.5),
    "region-outage": ("1+3+4", Objectives(rpo_seconds=20, rto_seconds=60), 2.5, 4.0),
}
BACKENDS = ("container", "process")
SIZES = {"2MB": 2_600_000, "100MB": 104_000_000}


def result(
    scenario: str, backend: str, run: int, *, at: datetime | None = None, rto_factor: float = 1.0,
    rpo_factor: float = 1.0, scale: str = "2MB", failures: tuple[str, ...] = (), **details: Any,
) -> DrillResult:  # fmt: skip
    """One drill result of `run` (runs are a week apart), its phases adding up to its RTO."""
    layers, objectives, rto, rpo = SCENARIOS[scenario]
    started = at or T0 + timedelta(days=7 * run, minutes=BACKENDS.index(backend) * 3 + list(SCENARIOS).index(scenario))
    wiggle = 1 + 0.03 * ((run * 7 + len(scenario)) % 5)  # small, deterministic run-to-run noise
    total = rto * rto_factor * wiggle * (8 if scale == "100MB" else 1)
    phases = {"detect": 0.05 * total, "provision": 0.35 * total, "restore": 0.35 * total, "verify": 0.25 * total}
    rpo_seconds = rpo * rpo_factor * wiggle
    failure_at = started + timedelta(seconds=20)
    base_details: dict[str, Any] = {"failure_at": failure_at.isoformat(), "row_counts": {"customers": 500}}
    checks = [{"name": "integrity_check", "ok": True, "detail": "ok", "seconds": 0.01},
              {"name": "row_counts", "ok": True, "detail": "all tables match", "seconds": 0.2}]  # fmt: skip
    if "1" in layers.split("+"):
        base_details |= {"layer1_policy": "every 2s, kept 30 days, at most 5", "backups_taken": 3,
                         "backup_taken_at": (failure_at - timedelta(seconds=rpo_seconds)).isoformat()}  # fmt: skip
        checks.append({"name": "layer1_notified", "ok": True, "detail": "3 success notification(s)", "seconds": 0.0})
    if "2" in layers.split("+"):
        base_details |= {"layer2": {"batch_interval_secs": 1}, "pitr_upload_proof": {"uploaded_frame": 540}}
    if "4" in layers.split("+"):
        base_details |= {"layer4_key": "l4-test (generated)", "offsite_tls": "TLSv1.3 TLS_AES_256_GCM_SHA384",
                         "layer4_production_policy": "daily 03:00, kept 90 days", "offsite_backup_id": "b1",
                         "offsite_backup_taken_at": (failure_at - timedelta(seconds=rpo_seconds)).isoformat()}  # fmt: skip
        checks.append({"name": "primary_region_untouched", "ok": True, "detail": "0 request(s)", "seconds": 0.0})
    return DrillResult(
        run_id=f"run{run:02d}", drill=f"drills/test_x.py::test_{scenario}[{backend}]", scenario=scenario, layers=layers,
        started_at=started.isoformat(), backend=backend, image="localhost/drill-sqld:0.24.32" if backend == "container" else "",
        sqld_version="sqld 0.24.32 (40c272de 2025-02-14)", scale=scale, db_bytes=SIZES[scale], phases=phases,
        rto_seconds=sum(phases.values()), rpo_writes=int(rpo_seconds * 25), rpo_rows=int(rpo_seconds * 60),
        rpo_seconds=rpo_seconds, acked_writes=400, in_doubt_writes=2, objectives=objectives, checks=checks,
        failures=list(failures), details=base_details | details, machine={"node": "ci-1", "cpus": 2},
        commit={"id": f"c0ffee{run:02d}", "branch": "main", "dirty": False},
    )  # fmt: skip


def history(runs: int = 4, *, scenarios: tuple[str, ...] = tuple(SCENARIOS)) -> list[DrillResult]:
    """`runs` weekly runs of every scenario on both backends, plus a 100MB total-loss each run."""
    out = []
    for run in range(runs):
        for scenario in scenarios:
            out += [result(scenario, backend, run) for backend in BACKENDS]
        if "total-loss" in scenarios:
            out.append(result("total-loss", "process", run, scale="100MB",
                              at=T0 + timedelta(days=7 * run, minutes=30)))  # fmt: skip
    return out


def records(results: list[DrillResult]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in results]


def with_failure(r: DrillResult, reason: str) -> DrillResult:
    return replace(r, failures=[*r.failures, reason])
