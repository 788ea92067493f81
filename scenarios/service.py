"""The last step of every recovery, and the application's side of it: the service address is re-pointed at
the verified database (its own RTO phase), the application resumes, and what it saw is judged: the load it
ran under was the load asked for, its own outage agrees with the runner's RTO, every read it made was
right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fixtures.readers import judge_reads
from fixtures.traffic import AppView
from layers.verify import Check, Verification

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from reports.stopwatch import Stopwatch

LOAD_HELD = 0.9  # the achieved write rate must reach this share of the requested one
STALL = 1.0  # seconds without an acknowledged write that a failed load_held names (sqld 0.24.32 stalls concurrent
# writers for its 5 s TXN_TIMEOUT: README, "Load")
AGREEMENT_SLACK = 0.75  # seconds beyond one probe interval the clocks may differ (clients reconnecting after the failover, measured up to ~0.5 s under load)


@dataclass(frozen=True)
class ServiceOutcome:
    view: AppView
    checks: tuple[Check, ...]
    details: dict[str, Any]


def restore_service(drill: Drill, watch: Stopwatch, failure_at: float, verification: Verification) -> ServiceOutcome:
    """Re-point the service address (phase "repoint"), resume the application, stop it, judge what it saw."""
    traffic = drill.traffic
    if traffic is None:
        raise RuntimeError(f"drill {drill.name}: the scenario started no application traffic")
    repointed_at = traffic.repoint(drill.serving().http_url)
    watch.mark("repoint")
    traffic.resume()
    view = traffic.view()
    drill.stop_traffic()
    checks = [load_held(view, drill.config.writers), outage_agrees(view, watch.total, failure_at,
                                                                   drill.config.probe_interval)]  # fmt: skip
    if traffic.readers:
        reads = judge_reads(
            traffic.readers, drill.ledger, recovered_at=repointed_at, expected=verification.loss.expected
        )
        checks.append(Check("reads_consistent", reads.ok,
                            f"{reads.reads} reads ({reads.failed} unanswered while the service was down)"
                            + (": " + "; ".join(reads.wrong) if reads.wrong else ", every one a row the ledger wrote")))  # fmt: skip
    details = {"load": {
        "writers": drill.config.writers, "readers": drill.config.readers, "requested_rate": view.requested_rate,
        "achieved_rate": view.achieved_rate, "longest_stall_s": view.longest_stall,
        "latency_before_p50_p99": view.latency_before,
        "latency_after_p50_p99": view.latency_after, "reads": sum(r.count for r in traffic.readers),
    }}  # fmt: skip
    return ServiceOutcome(view, tuple(checks), details)


def load_held(view: AppView, writers: int) -> Check:
    ok = view.achieved_rate >= LOAD_HELD * view.requested_rate
    stalled = f"; no write was acknowledged for {view.longest_stall:.2f}s" if view.longest_stall >= STALL else ""
    return Check("load_held", ok, f"{view.achieved_rate:g} writes/s acknowledged before the damage of "
                                  f"{view.requested_rate:g} requested over {writers} writer(s)"
                                  + ("" if ok else f" (below {LOAD_HELD:.0%}: the drill did not run under the load asked for{stalled})"))  # fmt: skip


def outage_agrees(view: AppView, rto: float, failure_at: float, probe_interval: float) -> Check:
    """The application's outage (first failed request -> first write acknowledged after the recovery)
    against the runner's RTO from the damage to the re-pointed service, less the damage-to-first-failure
    head start; they agree within one probe interval (and a little for the requests in flight)."""
    if view.first_ack_after is None:
        return Check(
            "app_outage_agrees", False, "no write was acknowledged through the service address after the recovery"
        )
    if view.outage_seconds is None or view.first_failure is None:
        return Check("app_outage_agrees", True, "the application saw no failed request: the database kept serving")
    expected = rto - (view.first_failure - failure_at)
    gap = view.outage_seconds - expected
    ok = abs(gap) <= probe_interval + AGREEMENT_SLACK
    return Check("app_outage_agrees", ok, f"application outage {view.outage_seconds:.2f}s, runner RTO {rto:.2f}s "
                                          f"({expected:.2f}s from the first failed request): {gap:+.2f}s apart"
                                          + ("" if ok else f", more than {probe_interval + AGREEMENT_SLACK:.2f}s"))  # fmt: skip
