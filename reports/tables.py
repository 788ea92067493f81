"""The tables every report shows, as plain rows of text (HTML and Markdown only lay them out): the latest
run, the changes since the previous comparable results, every check's outcome, the readiness audit,
and the regressions found."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from reports.audit import Audit
from reports.frame import KEY, PHASE_COLUMNS, changes, latest_per_key
from reports.regression import Regression


@dataclass(frozen=True)
class Table:
    key: str  # a stable id (HTML id, test handle)
    title: str
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    status_column: int | None = None  # a column holding pass/fail, for colouring
    note: str = ""


@dataclass(frozen=True)
class ReportData:
    title: str
    facts: list[tuple[str, str]]  # (label, value) about the run reported
    tables: list[Table] = field(default_factory=list)


def _num(value: object, fmt: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and pd.isna(value)) else format(value, fmt)


def _delta(value: object, fmt: str = "+.2f") -> str:
    return "" if value is None or pd.isna(value) else f" ({format(value, fmt)})"


def latest_table(frame: pd.DataFrame, run_ids: list[str]) -> Table:
    rows = []
    for _, r in latest_per_key(frame[frame["run_id"].isin(run_ids)]).iterrows():
        rows.append((
            str(r["scenario"]), str(r["backend"]), str(r["scale"]), str(r["layers"]),
            f"{r['rto_seconds']:.2f} ({r['objective_rto_seconds']:g})",
            f"{r['rpo_seconds']:.2f} ({r['objective_rpo_seconds']:g})",
            f"{r['rpo_writes']}/{r['acked_writes']}",
            "/".join(f"{r[c]:.2f}" for c in PHASE_COLUMNS),
            _num(r["app_outage_seconds"], ".2f"),
            f"{_num(r['achieved_rate'], '.0f')} ({_num(r['requested_rate'], 'g')})",
            _num(r["restore_mb_per_s"], ".1f"),
            str(r["verdict"]),
        ))  # fmt: skip
    header = ("scenario", "backend", "scale", "layers", "RTO s (objective)", "RPO s (objective)",
              "RPO writes lost/acked", "phases d/k/p/r/v/s s", "app outage s", "writes/s (asked)", "restore MB/s",
              "verdict")  # fmt: skip
    return Table(
        "latest",
        "Latest run (newest result per scenario, backend and scale)",
        header,
        rows,
        status_column=len(header) - 1,
    )


def changes_table(frame: pd.DataFrame, run_ids: list[str]) -> Table:
    rows = []
    for _, c in changes(frame, run_ids).iterrows():
        first = c["previous_run"] is None or pd.isna(c["previous_run"])
        rows.append((
            str(c["scenario"]), str(c["backend"]), str(c["scale"]),
            "first result" if first else str(c["previous_run"]),
            f"{_num(c['rto_seconds_before'])} -> {c['rto_seconds_now']:.2f}{_delta(c['rto_seconds_delta'])}",
            f"{_num(c['rpo_seconds_before'])} -> {c['rpo_seconds_now']:.2f}{_delta(c['rpo_seconds_delta'])}",
            f"{_num(c['rpo_writes_before'], '.0f')} -> {c['rpo_writes_now']}{_delta(c['rpo_writes_delta'], '+.0f')}",
            f"{'-' if first else c['verdict_before']} -> {c['verdict_now']}",
        ))  # fmt: skip
    header = ("scenario", "backend", "scale", "compared with run", "RTO s", "RPO s", "RPO writes", "verdict")
    return Table("changes", "Changes since the previous run", header, rows,
                 note="each result beside the previous result of the same scenario, backend and scale")  # fmt: skip


MONTHS_SHOWN = 3  # the newest months of each drill in the month-over-month table
MONTHLY_REGRESSION = 0.20  # a monthly median this much worse than the month before is marked


def _change(now: float, before: float | None) -> tuple[str, bool]:
    """'+12%' and whether it is a regression (worse by more than MONTHLY_REGRESSION)."""
    if before is None or pd.isna(before):
        return "-", False
    if before == 0:
        return ("+inf%", True) if now > 0 else ("0%", False)
    ratio = now / before - 1
    return f"{100 * ratio:+.0f}%", ratio > MONTHLY_REGRESSION


def monthly_table(frame: pd.DataFrame) -> Table:
    """Median RTO and RPO per drill and calendar month (UTC) of the judged results (crashed drills measured
    nothing), each beside the month before; a median worse by more than 20% is marked 'regressed'."""
    judged = frame[frame["verdict"] != "error"]
    months = judged["started_at"].dt.strftime("%Y-%m")
    medians = judged.groupby([*KEY, months.rename("month")], sort=True).agg(
        runs=("rto_seconds", "size"), rto=("rto_seconds", "median"), rpo=("rpo_seconds", "median")
    )
    rows = []
    for key, per_key in medians.groupby(level=list(range(len(KEY))), sort=True):
        previous: tuple[float | None, float | None] = (None, None)
        shown = []
        for (*_, month), m in per_key.iterrows():
            rto, rto_bad = _change(float(m["rto"]), previous[0])
            rpo, rpo_bad = _change(float(m["rpo"]), previous[1])
            status = "first month" if previous[0] is None else "regressed" if rto_bad or rpo_bad else "ok"
            shown.append((f"{key[0]} [{key[1]}, {key[2]}]", str(month), str(int(m["runs"])), f"{m['rto']:.2f}", rto,
                          f"{m['rpo']:.2f}", rpo, status))  # fmt: skip
            previous = (float(m["rto"]), float(m["rpo"]))
        rows += shown[-MONTHS_SHOWN:]
    header = (
        "drill",
        "month",
        "results",
        "median RTO s",
        "vs month before",
        "median RPO s",
        "vs month before",
        "status",
    )
    note = (f"calendar months (UTC), newest {MONTHS_SHOWN} per drill; 'regressed': a median more than "
            f"{MONTHLY_REGRESSION:.0%} worse than the month before")  # fmt: skip
    return Table("monthly", "Month over month", header, rows, status_column=len(header) - 1, note=note)


def checks_table(frame: pd.DataFrame, run_ids: list[str]) -> Table:
    rows = []
    for _, r in latest_per_key(frame[frame["run_id"].isin(run_ids)]).iterrows():
        for c in r["checks"]:
            rows.append((f"{r['scenario']} [{r['backend']}]", str(c.get("name", "")), "pass" if c.get("ok") else "fail",
                         str(c.get("detail", "")), _num(c.get("seconds"), ".3f")))  # fmt: skip
    return Table("checks", "Every check of the latest run", ("drill", "check", "outcome", "detail", "seconds"), rows,
                 status_column=2)  # fmt: skip


def failures_table(frame: pd.DataFrame, run_ids: list[str]) -> Table:
    rows = [(f"{r['scenario']} [{r['backend']}]", f)
            for _, r in latest_per_key(frame[frame["run_id"].isin(run_ids)]).iterrows() for f in r["failures"]]  # fmt: skip
    return Table("failures", "Failures of the latest run", ("drill", "reason"), rows, note="none" if not rows else "")


def audit_table(result: Audit) -> Table:
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    rows = [(i.section, i.question, i.status, i.why) for i in result.items]
    return Table("audit", "Readiness audit", ("section", "item", "status", "why"), rows, status_column=2, note=counts)


def regressions_table(found: Iterable[Regression], specs: list[str]) -> Table:
    rows = [(f"{r.scenario} [{r.backend}, {r.scale}]", r.threshold.spec, f"{r.value:.3f}", f"{r.baseline:.3f}",
             str(r.baseline_runs), "fail") for r in found]  # fmt: skip
    note = f"thresholds: {', '.join(specs)}" if specs else "no thresholds given (--compare-fail)"
    return Table("regressions", "Regressions", ("drill", "threshold", "value", "baseline (median)", "earlier runs", ""),
                 rows, status_column=5, note=note + ("" if rows else "; none found"))  # fmt: skip


def report_data(
    frame: pd.DataFrame,
    run_ids: list[str],
    *,
    audit: Audit,
    regressions: list[Regression],
    specs: list[str],
    history: str,
    extra: Sequence[Table] = (),
) -> ReportData:
    """Everything a report shows about `run_ids` against the whole history in `frame`."""
    run = frame[frame["run_id"].isin(run_ids)]

    def distinct(column: str) -> str:
        return ", ".join(sorted({str(v) for v in run[column] if str(v)})) or "-"

    facts = [
        ("run(s)", ", ".join(run_ids) or "-"),
        ("drills ran", f"{run['started_at'].min():%Y-%m-%d %H:%M:%S} .. {run['started_at'].max():%H:%M:%S} UTC"
         if not run.empty else "-"),
        ("sqld", distinct("sqld_version")),
        ("backend(s)", distinct("backend")),
        ("commit(s)", distinct("commit")),
        ("machine(s)", distinct("node")),
        ("history", f"{history} ({len(frame)} results, {frame['run_id'].nunique()} runs)"),
    ]  # fmt: skip
    tables = [
        latest_table(frame, run_ids),
        changes_table(frame, run_ids),
        monthly_table(frame),
        failures_table(frame, run_ids),
        regressions_table(regressions, specs),
        audit_table(audit),
        checks_table(frame, run_ids),
        *extra,
    ]
    return ReportData("Disaster-recovery drill report", facts, tables)
