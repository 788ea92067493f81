"""Trend charts of the drill history as PNG files (matplotlib, Agg backend: no display needed), drawn as
small multiples so a review can read them: one panel per scenario and scale (its own y scale, so a
sub-second RTO is not flattened under a 60 s objective), the objective as a shaded band above which a
result misses it, and a right-hand axis giving the value as a percent of the objective. The RTO phases
are stacked per run, one panel per scenario, backend and scale. Restore throughput is plotted against
database size."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from reports.frame import KEY, PHASE_COLUMNS
from reports.restore_tests_chart import restore_tests_over_time
from reports.result import PHASES

MARKERS = {"container": "o", "process": "s"}
BACKEND_COLORS = {"container": "#1f77b4", "process": "#ff7f0e"}
PHASE_COLORS = (
    "#8c6bb1",
    "#e7298a",
    "#6baed6",
    "#fd8d3c",
    "#74c476",
    "#969696",
)  # detect, key, provision, restore, verify, repoint
BAND = "#d62728"
DPI = 100
PANEL = (5.0, 2.9)  # inches per panel
MAX_RUNS = 12  # phase bars per panel: the newest runs, so bars stay wide
OFF_SCALE = 2.0  # an objective above OFF_SCALE x the largest value is not drawn to scale (noted instead)


def _colors(frame: pd.DataFrame) -> dict[str, str]:
    names = sorted(frame["scenario"].unique())
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(names) > len(cycle):  # more scenarios than the default cycle: 20 distinct colours
        cycle = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]  # type: ignore[attr-defined]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(names)}


def _grid(count: int, title: str) -> tuple[Figure, list[Axes]]:
    """`count` panels, up to three a row; spare cells are hidden."""
    cols = 1 if count <= 1 else 2 if count <= 4 else 3
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(PANEL[0] * cols, 10.0), PANEL[1] * rows + 0.9), dpi=DPI,
                             squeeze=False)  # fmt: skip
    flat = list(axes.flat)
    for spare in flat[count:]:
        spare.set_visible(False)
    fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig, flat[: max(count, 1)]


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in the history yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _objective(ax: Axes, objective: float, largest: float, unit: str) -> str:
    """The objective as a band (everything above it misses), drawn to scale when it is near the values,
    and a right axis in percent of it. Returns a note for the title when it is off scale."""
    if not math.isfinite(objective) or objective <= 0:
        ax.set_ylim(bottom=0, top=max(largest * 1.25, 1e-3))
        return ""
    off_scale = objective > OFF_SCALE * largest > 0
    top = largest * 1.3 if off_scale else max(objective * 1.2, largest * 1.15)
    ax.axhspan(objective, max(top, objective) * 10, color=BAND, alpha=0.10, linewidth=0)
    ax.axhline(objective, color=BAND, linestyle="--", linewidth=1, label=f"objective {objective:g} {unit}")
    ax.set_ylim(0, top)
    scale = 100.0 / objective

    def to_percent(value: Any) -> Any:
        return np.asarray(value, dtype=float) * scale

    def from_percent(value: Any) -> Any:
        return np.asarray(value, dtype=float) / scale

    percent = ax.secondary_yaxis("right", functions=(to_percent, from_percent))
    percent.set_ylabel("% of objective", fontsize=8)
    percent.tick_params(labelsize=7)
    return f"(objective {objective:g} {unit} is above this axis)" if off_scale else ""


def _time_axis(ax: Axes, times: pd.Series) -> None:
    """Dates, or times of day when the results are hours apart; a single result gets a day either side."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if times.nunique() == 1:
        only = times.iloc[0]
        ax.set_xlim(only - pd.Timedelta(days=1), only + pd.Timedelta(days=1))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _percent(value: float, of: float) -> str:
    share = 100 * value / of
    return f"{share:.0f}%" if share >= 10 else f"{share:.1f}%"


def _title_room(fig: Figure) -> tuple[float, float, float, float]:
    """The layout rectangle below the figure title (0.45 inch of it)."""
    return (0, 0, 1, 1 - 0.45 / fig.get_figheight())


def _series_panel(ax: Axes, group: pd.DataFrame, metric: str, objective: str, unit: str) -> str:
    """One scenario+scale: a line per backend, failed results circled, crashed drills as red crosses on the
    time axis; returns the panel title's figures (newest value, percent of the objective)."""
    judged = group[group["verdict"] != "error"]
    for backend, rows in judged.groupby("backend", sort=True):
        ax.plot(rows["started_at"], rows[metric], marker=MARKERS.get(str(backend), "^"), markersize=4, linewidth=1.2,
                color=BACKEND_COLORS.get(str(backend), "#555555"), label=str(backend))  # fmt: skip
    failed = judged[judged["verdict"] != "pass"]
    ax.scatter(failed["started_at"], failed[metric], s=110, facecolors="none", edgecolors="red", linewidths=1.5,
               label="failed" if not failed.empty else None, zorder=3)  # fmt: skip
    if metric == "rto_seconds" and "app_outage_seconds" in group and group["app_outage_seconds"].notna().any():
        seen = judged[judged["app_outage_seconds"].notna()]
        for backend, rows in seen.groupby("backend", sort=True):  # the application's own clock beside the runner's
            ax.plot(rows["started_at"], rows["app_outage_seconds"], linestyle=":", marker="o", markersize=4,
                    markerfacecolor="none", color=BACKEND_COLORS.get(str(backend), "#555555"),
                    label=f"{backend} (app outage)")  # fmt: skip
    crashed = group[group["verdict"] == "error"]
    if not crashed.empty:
        ax.scatter(crashed["started_at"], [0.0] * len(crashed), s=70, marker="x", color="red", linewidths=2,
                   label="crashed", zorder=3, clip_on=False)  # fmt: skip
    largest = float(judged[metric].max()) if not judged.empty else 0.0
    goal = float(group[objective].iloc[-1])
    note = _objective(ax, goal, largest, unit)
    _time_axis(ax, group["started_at"])
    ax.legend(fontsize=7, loc="upper left")
    newest = [(str(b), float(rows[metric].iloc[-1])) for b, rows in judged.groupby("backend", sort=True)]
    share = math.isfinite(goal) and goal > 0
    figures = ", ".join(f"{b} {v:.2f} {unit}" + (f" ({_percent(v, goal)})" if share else "") for b, v in newest)
    return "newest: " + (figures or "crashed, nothing measured") + (f"\n{note}" if note else "")


def _over_time(frame: pd.DataFrame, metric: str, objective: str, title: str, ylabel: str) -> Figure:
    panels = list(frame.groupby(["scenario", "scale"], sort=True)) if not frame.empty else []
    fig, axes = _grid(len(panels), title)
    if not panels:
        _empty(axes[0], "drill results")
    for ax, ((scenario, scale), group) in zip(axes, panels, strict=False):
        figures = _series_panel(ax, group, metric, objective, "s")
        ax.set_title(f"{scenario} [{scale}]\n{figures}", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
    fig.tight_layout(rect=_title_room(fig))
    return fig


def rto_over_time(frame: pd.DataFrame) -> Figure:
    return _over_time(frame, "rto_seconds", "objective_rto_seconds", "RTO per scenario over time", "RTO (s)")


def rpo_over_time(frame: pd.DataFrame) -> Figure:
    return _over_time(frame, "rpo_seconds", "objective_rpo_seconds", "RPO per scenario over time", "RPO (s lost)")


def _phase_panel(ax: Axes, group: pd.DataFrame) -> None:
    """The newest MAX_RUNS results of one scenario+backend+scale, phases stacked per run."""
    rows = group.tail(MAX_RUNS).reset_index(drop=True)
    positions = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for column, color in zip(PHASE_COLUMNS, PHASE_COLORS, strict=True):
        values = rows[column].to_numpy(dtype=float)
        ax.bar(positions, values, bottom=bottom, color=color, width=0.7)
        bottom = bottom + values
    for i, (verdict, top) in enumerate(zip(rows["verdict"], bottom, strict=True)):
        if verdict != "pass":
            ax.text(i, float(top), "CRASHED" if verdict == "error" else "FAILED", color="red", fontsize=7,
                    ha="center", va="bottom", rotation=90)  # fmt: skip
    note = _objective(ax, float(rows["objective_rto_seconds"].iloc[-1]), float(bottom.max(initial=0.0)), "s")
    ax.set_xticks(positions, [f"{t:%b %d}" for t in rows["started_at"]], rotation=45, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel("RTO (s)", fontsize=8)
    first = rows.iloc[0]
    suffix = f"\n{note}" if note else ""
    ax.set_title(f"{first['scenario']} [{first['backend']}, {first['scale']}]{suffix}", fontsize=9)


def rto_phases(frame: pd.DataFrame) -> Figure:
    """RTO split into detect / key / provision / restore / verify / repoint, stacked per run: where a recovery's time went
    and how that changed from run to run."""
    panels = list(frame.groupby(list(KEY), sort=True)) if not frame.empty else []
    fig, axes = _grid(len(panels), "RTO by phase, per run")
    if not panels:
        _empty(axes[0], "drill results")
    for ax, (_, group) in zip(axes, panels, strict=False):
        _phase_panel(ax, group)
    handles = [Patch(color=c, label=p) for p, c in zip(PHASES, PHASE_COLORS, strict=True)]
    handles.append(Patch(color=BAND, alpha=0.25, label="over the RTO objective"))
    fig.legend(handles=handles, loc="upper right", ncols=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=_title_room(fig))
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


def write_charts(frame: pd.DataFrame, folder: Path, records: Sequence[dict[str, Any]] = ()) -> dict[str, Path]:
    """Every chart as `<folder>/<name>.png` (and the restore-test trend when `records`, the raw history,
    hold restore tests); returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    figures = [(name, draw(frame)) for name, draw in CHARTS.items()]
    trend = restore_tests_over_time(records)
    if trend is not None:
        figures.append(("restore_tests", trend))
    for name, fig in figures:
        try:
            path = folder / f"{name}.png"
            fig.savefig(path, format="png")
            out[name] = path
        finally:
            plt.close(fig)
    return out
