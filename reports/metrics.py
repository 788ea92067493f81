"""The drill history as Prometheus metrics (prometheus-client), in the node_exporter textfile-collector
format: per scenario+backend+scale the newest result's RTO, RPO and verdict and the newest passing drill's
time; per layer the newest successful backup a drill recorded. A crashed drill (verdict error) measured
nothing: its RTO and RPO are NaN and `drill_passed` is 0."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from reports.details import BACKUP_TAKEN as TAKEN
from reports.details import detail
from reports.frame import KEY, latest_per_key

LABELS = ("scenario", "backend", "scale")


def _gauges(registry: CollectorRegistry) -> dict[str, Gauge]:
    specs = {
        "drill_last_success_timestamp_seconds": "start time of the newest passing drill (Unix seconds)",
        "drill_rto_seconds": "RTO of the newest drill: damage to a verified, serving database (NaN: crashed)",
        "drill_rpo_seconds": "RPO of the newest drill: seconds of acknowledged writes lost (NaN: crashed)",
        "drill_rpo_writes": "acknowledged writes the newest drill lost (NaN: crashed)",
        "drill_passed": "1 when the newest drill passed, 0 when it failed or crashed",
    }
    out = {name: Gauge(name, help_text, LABELS, registry=registry) for name, help_text in specs.items()}
    out["backup_last_success_timestamp_seconds"] = Gauge(
        "backup_last_success_timestamp_seconds", "newest successful backup a drill recorded, per layer (Unix seconds)",
        ["layer"], registry=registry,
    )  # fmt: skip
    return out


def _backup_times(frame: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    for details in frame["details"]:
        for layer, key in TAKEN.items():
            taken = detail(details, key)
            if taken:
                out[str(layer)] = max(out.get(str(layer), 0.0), datetime.fromisoformat(str(taken)).timestamp())
    return out


def registry_of(frame: pd.DataFrame) -> CollectorRegistry:
    """Every metric of the drill results in `frame` (the whole history: newest per scenario+backend+scale)."""
    registry = CollectorRegistry()
    gauges = _gauges(registry)
    for _, row in latest_per_key(frame).iterrows():
        labels = {k: str(row[k]) for k in KEY}
        crashed = row["verdict"] == "error"
        for metric in ("rto_seconds", "rpo_seconds", "rpo_writes"):
            gauges[f"drill_{metric}"].labels(**labels).set(math.nan if crashed else float(row[metric]))
        gauges["drill_passed"].labels(**labels).set(1 if row["verdict"] == "pass" else 0)
        same = (frame[list(KEY)] == pd.Series(labels)).all(axis=1) & (frame["verdict"] == "pass")
        if same.any():
            newest = frame.loc[same, "started_at"].max()
            gauges["drill_last_success_timestamp_seconds"].labels(**labels).set(newest.timestamp())
    for layer, at in sorted(_backup_times(frame).items()):
        gauges["backup_last_success_timestamp_seconds"].labels(layer=layer).set(at)
    return registry


def write_metrics(frame: pd.DataFrame, path: Path) -> Path:
    """Writes `path` atomically (write_to_textfile renames a temporary file), as the textfile collector needs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry_of(frame))
    return path
