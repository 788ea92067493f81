"""The trend of the restore tests of existing backups: per source, restore seconds over time, a failed test
circled in red (drawn only when the history holds restore tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from reports.restore_tests import RESTORE_TEST_KIND


def restore_tests_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"source": str(r.get("source")), "started_at": r.get("started_at"), "ok": bool(r.get("ok")),
             "restore_seconds": float(r.get("restore_seconds") or 0.0)}
            for r in records if r.get("kind") == RESTORE_TEST_KIND]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["source", "started_at", "ok", "restore_seconds"])
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
    return frame.sort_values("started_at", kind="stable")


def restore_tests_over_time(records: Iterable[dict[str, Any]]) -> Figure | None:
    frame = restore_tests_frame(records)
    if frame.empty:
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
    for source, rows in frame.groupby("source", sort=True):
        ax.plot(rows["started_at"], rows["restore_seconds"], marker="o", markersize=4, linewidth=1.2, label=str(source))
        failed = rows[~rows["ok"]]
        ax.scatter(failed["started_at"], failed["restore_seconds"], s=110, facecolors="none", edgecolors="red",
                   linewidths=1.5, zorder=3)  # fmt: skip
    if not frame["ok"].all():
        ax.scatter([], [], s=110, facecolors="none", edgecolors="red", label="failed restore test")
    ax.set_title("Restore tests of existing backups: restore time per source")
    ax.set_ylabel("restore (s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
