"""Trend charts of the drill history as PNG files (matplotlib, Agg backend: no display needed):
RTO and RPO per scenario over time beside their objectives, the RTO of the newest results split into
phases, and restore throughput against database size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from reports.frame import KEY, PHASE_COLUMNS, latest_per_key
from reports.result import PHASES

MARKERS = {"container": "o", "process": "s"}
PHASE_COLORS = ("#8c6bb1", "#6baed6", "#fd8d3c", "#74c476")
DPI = 100


def _colors(frame: pd.DataFrame) -> dict[str, str]:
    names = sorted(frame["scenario"].unique())
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(names) > len(cycle):  # more scenarios than the default cycle: 20 distinct colours
        cycle = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]  # type: ignore[attr-defined]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in the history yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _over_time(frame: pd.DataFrame, metric: str, objective: str, title: str, ylabel: str) -> Figure:
    """One line per scenario+backend+scale, the objective as a dashed step line in the scenario's colour,
    failed results circled in red; crashed drills (verdict error, nothing measured) as red crosses on the
    time axis, off the line."""
    fig, ax = plt.subplots(figsize=(11, 5), dpi=DPI)
    if frame.empty:
        _empty(ax, "drill results")
    colors = _colors(frame)
    for (scenario, backend, scale), group in frame.groupby(list(KEY), sort=True):
        color = colors[str(scenario)]
        judged, crashed = group[group["verdict"] != "error"], group[group["verdict"] == "error"]
        ax.plot(judged["started_at"], judged[metric], marker=MARKERS.get(str(backend), "^"), color=color,
                label=f"{scenario} [{backend}, {scale}]", linewidth=1.2, markersize=5)  # fmt: skip
        failed = judged[judged["verdict"] != "pass"]
        ax.scatter(failed["started_at"], failed[metric], s=140, facecolors="none", edgecolors="red", linewidths=1.5)
        ax.scatter(crashed["started_at"], [0.0] * len(crashed), s=90, marker="x", color="red", linewidths=2)
    for scenario, group in frame.groupby("scenario", sort=True):
        ax.step(group["started_at"], group[objective], where="post", linestyle="--", color=colors[str(scenario)],
                linewidth=1, alpha=0.8, label=f"{scenario} objective")  # fmt: skip
    if not frame.empty:
        ax.scatter([], [], s=140, facecolors="none", edgecolors="red", label="failed drill")
        if (frame["verdict"] == "error").any():
            ax.scatter([], [], s=90, marker="x", color="red", linewidths=2, label="crashed drill (error)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def rto_over_time(frame: pd.DataFrame) -> Figure:
    return _over_time(frame, "rto_seconds", "objective_rto_seconds", "RTO per scenario over time", "RTO (s)")


def rpo_over_time(frame: pd.DataFrame) -> Figure:
    return _over_time(
        frame, "rpo_seconds", "objective_rpo_seconds", "RPO per scenario over time", "RPO (s of writes lost)"
    )


def rto_phases(frame: pd.DataFrame) -> Figure:
    """The newest result of each scenario+backend+scale: RTO as stacked phases, objective marked."""
    latest = latest_per_key(frame)
    fig, ax = plt.subplots(figsize=(11, max(3.0, 0.45 * len(latest) + 1.5)), dpi=DPI)
    if latest.empty:
        _empty(ax, "drill results")
    labels = [f"{r.scenario} [{r.backend}, {r.scale}]" + (" CRASHED" if r.verdict == "error" else "")
              for r in latest.itertuples()]  # fmt: skip
    left = pd.Series(0.0, index=latest.index)
    for phase, column, color in zip(PHASES, PHASE_COLUMNS, PHASE_COLORS, strict=True):
        ax.barh(labels, latest[column], left=left, color=color, label=phase)
        left = left + latest[column]
    if not latest.empty:
        ax.scatter(latest["objective_rto_seconds"], labels, marker="|", s=400, color="black", label="RTO objective")
        ax.invert_yaxis()
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("RTO by phase (newest result per scenario)")
    ax.set_xlabel("seconds")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def restore_throughput(frame: pd.DataFrame) -> Figure:
    """Restore throughput (database bytes / restore-phase seconds) against database size."""
    fig, ax = plt.subplots(figsize=(11, 5), dpi=DPI)
    usable = frame[frame["restore_mb_per_s"].notna() & (frame["db_bytes"] > 0)]
    if usable.empty:
        _empty(ax, "restores with a measured size and time")
    colors = _colors(usable)
    for (scenario, backend), group in usable.groupby(["scenario", "backend"], sort=True):
        ax.scatter(group["db_bytes"] / 1e6, group["restore_mb_per_s"], color=colors[str(scenario)],
                   marker=MARKERS.get(str(backend), "^"), label=f"{scenario} [{backend}]", alpha=0.8)  # fmt: skip
    if not usable.empty:
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        ax.set_ylim(bottom=0)
    ax.set_title("Restore throughput against database size")
    ax.set_xlabel("database size (MB, log scale)")
    ax.set_ylabel("restore throughput (MB/s)")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


CHARTS: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "rto_over_time": rto_over_time,
    "rto_phases": rto_phases,
    "rpo_over_time": rpo_over_time,
    "restore_throughput": restore_throughput,
}


def write_charts(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Every chart as `<folder>/<name>.png`; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, draw in CHARTS.items():
        fig = draw(frame)
        try:
            path = folder / f"{name}.png"
            fig.savefig(path, format="png")
            out[name] = path
        finally:
            plt.close(fig)
    return out
