"""History records -> one pandas DataFrame, one row per drill result, RTO phases as columns
(`detect_seconds`, ...), plus the selections every report shares: the latest run, and what changed
since the previous result of the same scenario on the same backend and scale."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from reports.details import detail
from reports.manifest import split_records
from reports.result import PHASES

REQUIRED = ("run_id", "scenario", "started_at", "backend", "phases", "rto_seconds", "rpo_seconds", "objectives")
PHASE_COLUMNS = tuple(f"{p}_seconds" for p in PHASES)
KEY = ("scenario", "backend", "scale")  # results comparable over time


class HistoryFormatError(ValueError):
    """A history record is not a drill result; the message names the record and the missing field."""


def _float(value: Any) -> float:
    """A recorded figure, NaN where the record has none (older records, no outage seen)."""
    return float("nan") if value is None else float(value)


def _load(raw: dict[str, Any]) -> dict[str, Any]:
    """The load a result records (details 'load'), {} when it has none."""
    load = detail(raw.get("details") or {}, "load")
    return load if isinstance(load, dict) else {}


def _row(index: int, raw: dict[str, Any]) -> dict[str, Any]:
    missing = [f for f in REQUIRED if f not in raw]
    if missing:
        raise HistoryFormatError(
            f"history record #{index + 1} is not a drill result: it lacks {', '.join(missing)} "
            "(point --history at the file the drills write, e.g. file:.drills/history.jsonl)"
        )
    phases = raw["phases"] or {}
    objectives = raw["objectives"] or {}
    failures = list(raw.get("failures") or [])
    row: dict[str, Any] = {
        "run_id": raw["run_id"],
        "drill": raw.get("drill", ""),
        "case": raw.get("case") or raw.get("drill", ""),
        "scenario": raw["scenario"],
        "layers": str(raw.get("layers", "")),
        "started_at": raw["started_at"],
        "backend": raw["backend"],
        "image": raw.get("image", ""),
        "sqld_version": raw.get("sqld_version", ""),
        "scale": raw.get("scale", ""),
        "db_bytes": int(raw.get("db_bytes") or 0),
        **{f"{p}_seconds": float(phases.get(p, 0.0)) for p in PHASES},
        "rto_seconds": float(raw["rto_seconds"]),
        "rpo_seconds": float(raw["rpo_seconds"]),
        "rpo_writes": int(raw.get("rpo_writes") or 0),
        "rpo_rows": int(raw.get("rpo_rows") or 0),
        "acked_writes": int(raw.get("acked_writes") or 0),
        "in_doubt_writes": int(raw.get("in_doubt_writes") or 0),
        "objective_rto_seconds": float(objectives.get("rto_seconds", float("nan"))),
        "objective_rpo_seconds": float(objectives.get("rpo_seconds", float("nan"))),
        "objective_rpo_writes": objectives.get("rpo_writes"),
        "verdict": raw.get("verdict") or ("fail" if failures else "pass"),
        "error": raw.get("error"),
        "backend_fallback": str(raw.get("backend_fallback") or ""),
        "app_outage_seconds": _float(raw.get("app_outage_seconds")),
        "requested_rate": _float(_load(raw).get("requested_rate")),
        "achieved_rate": _float(_load(raw).get("achieved_rate")),
        "failures": failures,
        "checks": list(raw.get("checks") or []),
        "details": dict(raw.get("details") or {}),
        "commit": str((raw.get("commit") or {}).get("id", "")),
        "node": str((raw.get("machine") or {}).get("node", "")),
    }
    return row


COLUMNS = tuple(_row(0, {f: {} if f in ("phases", "objectives") else 0 for f in REQUIRED}))


def to_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per drill result (run manifests are left out), oldest first; `started_at` as UTC timestamps;
    `restore_mb_per_s` derived."""
    rows = [_row(i, r) for i, r in enumerate(split_records(records)[0])]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
    restore = frame["restore_seconds"].astype(float)
    frame["restore_mb_per_s"] = (frame["db_bytes"] / 1e6 / restore).where((restore > 0) & (frame["verdict"] != "error"))
    frame["layer_set"] = frame["layers"].map(layer_numbers)
    return frame.sort_values("started_at", kind="stable").reset_index(drop=True)


def layer_numbers(label: str) -> tuple[int, ...]:
    """'1+3' -> (1, 3)."""
    return tuple(sorted({int(p) for p in str(label).split("+") if p.strip().isdigit()}))


def latest_run_ids(frame: pd.DataFrame) -> list[str]:
    """The run whose newest result is the newest overall (one id; empty for an empty frame)."""
    if frame.empty:
        return []
    return [str(frame.loc[frame["started_at"].idxmax(), "run_id"])]


def select_runs(frame: pd.DataFrame, run_ids: Iterable[str]) -> pd.DataFrame:
    ids = list(run_ids)
    unknown = [r for r in ids if r not in set(frame["run_id"])]
    if unknown:
        known = ", ".join(frame["run_id"].drop_duplicates().tail(5)) or "none"
        raise HistoryFormatError(f"run {', '.join(unknown)} is not in the history (the newest runs: {known})")
    return frame[frame["run_id"].isin(ids)].reset_index(drop=True)


def latest_per_key(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest result of each scenario+backend+scale in `frame`."""
    if frame.empty:
        return frame
    return frame.groupby(list(KEY), sort=True, dropna=False).tail(1).sort_values(list(KEY)).reset_index(drop=True)


def earlier_results(frame: pd.DataFrame, row: pd.Series, run_ids: Iterable[str]) -> pd.DataFrame:
    """Results of the same scenario+backend+scale from runs other than `run_ids`, started before `row`."""
    same = (
        (frame["scenario"] == row["scenario"]) & (frame["backend"] == row["backend"]) & (frame["scale"] == row["scale"])
    )
    earlier = same & ~frame["run_id"].isin(list(run_ids)) & (frame["started_at"] < row["started_at"])
    return frame[earlier]


def changes(frame: pd.DataFrame, run_ids: Iterable[str]) -> pd.DataFrame:
    """For each result of the given runs: its RTO/RPO/verdict beside the previous comparable result."""
    ids = list(run_ids)
    latest = latest_per_key(frame[frame["run_id"].isin(ids)])
    out = []
    for _, row in latest.iterrows():
        before = earlier_results(frame, row, ids)
        prev = before.iloc[-1] if not before.empty else None
        item: dict[str, Any] = {k: row[k] for k in KEY}
        item["previous_run"] = prev["run_id"] if prev is not None else None
        for metric in ("rto_seconds", "rpo_seconds", "rpo_writes"):
            item[f"{metric}_before"] = prev[metric] if prev is not None else None
            item[f"{metric}_now"] = row[metric]
            item[f"{metric}_delta"] = row[metric] - prev[metric] if prev is not None else None
        item["verdict_before"] = prev["verdict"] if prev is not None else None
        item["verdict_now"] = row["verdict"]
        out.append(item)
    return pd.DataFrame(out)
