"""One report from a history: which runs it is about, the charts, report.html, summary.md and the
regressions, shared by `python -m reports.cli` and the pytest plugin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fixtures.config import DrillConfig, Threshold
from reports.audit import audit
from reports.charts import write_charts
from reports.frame import HistoryFormatError, latest_run_ids, select_runs, to_frame
from reports.history import History, open_history
from reports.html import write_html
from reports.manifest import RunManifest, split_records
from reports.markdown import write_markdown
from reports.regression import DEFAULT_WINDOW, Regression, find_regressions
from reports.restore_tests_table import table as restore_tests_table
from reports.tables import report_data


@dataclass(frozen=True)
class Rendered:
    charts: dict[str, Path]
    html: Path
    markdown: Path
    regressions: list[Regression]


@dataclass(frozen=True)
class LoadedHistory:
    frame: pd.DataFrame  # the drill results
    manifests: list[RunManifest]  # what each run collected
    uri: str
    records: list[dict[str, Any]]  # every record, of every kind (restore tests among them)


def load_history(uri: str, base: Path | None = None, *, manifests_suffice: bool = False) -> LoadedHistory:
    """The history at `uri`; one without drill results (`manifests_suffice`: nor run manifests) is an error
    naming the fix."""
    history = open_history(uri, base=base)
    records = history.load()
    frame = to_frame(records)
    manifests = split_records(records)[1]
    if frame.empty and not (manifests_suffice and manifests):
        raise HistoryFormatError(f"history {history.uri} holds no drill results: run `pytest drills` first "
                                 "or point --history at the drills' history (drill_history)")  # fmt: skip
    return LoadedHistory(frame, manifests, history.uri, records)


def resolve_runs(frame: pd.DataFrame, runs: Sequence[str], manifests: Sequence[RunManifest] = ()) -> list[str]:
    """'latest' (default) = the newest run (a run that collected drills but recorded none counts: its
    manifest is newer); 'all' = every run (each scenario's newest result); else run ids."""
    if not runs or list(runs) == ["latest"]:
        newest = max(manifests, key=lambda m: m.created_at, default=None)
        if newest is not None and (frame.empty or pd.Timestamp(newest.created_at) > frame["started_at"].max()):
            return [newest.run_id]
        return latest_run_ids(frame)
    if list(runs) == ["all"]:
        return list(dict.fromkeys([*frame["run_id"], *(m.run_id for m in manifests)]))
    only_collected = [r for r in runs if r in {m.run_id for m in manifests} and r not in set(frame["run_id"])]
    return [*select_runs(frame, [r for r in runs if r not in only_collected])["run_id"].drop_duplicates(),
            *only_collected]  # fmt: skip


def render_report(
    frame: pd.DataFrame, run_ids: list[str], out: Path, *, thresholds: Iterable[Threshold] = (),
    history: str = "", config: DrillConfig | None = None, window: int = DEFAULT_WINDOW, now: datetime | None = None,
    records: Sequence[dict[str, Any]] = (),
) -> Rendered:  # fmt: skip
    """Writes `out`/charts/*.png, `out`/report.html and `out`/summary.md; `records` (the raw history) adds
    the restore tests of existing backups."""
    checks = list(thresholds)
    found = find_regressions(frame, run_ids, checks, window=window)
    data = report_data(frame, run_ids, audit=audit(frame, now=now, config=config), regressions=found,
                       specs=[t.spec for t in checks], history=history,
                       extra=[restore_tests_table(records)])  # fmt: skip
    charts = write_charts(frame, out / "charts", records)
    html = write_html(data, charts, out / "report.html")
    markdown = write_markdown(data, charts, out / "summary.md")
    return Rendered(charts, html, markdown, found)


@dataclass(frozen=True)
class SessionReport:
    lines: list[str]
    regressions: list[Regression]


def session_report(run_ids: list[str], history: History, config: DrillConfig, root: Path) -> SessionReport:
    """What the pytest plugin adds to its summary: the report (drill_report) and the regressions of this
    session's results (drill_compare_fail), all found before any is reported."""
    if not config.report and not config.compare_fail:
        return SessionReport([], [])
    records = history.load()
    frame = to_frame(records)
    thresholds = config.compare_fail
    lines = []
    if config.report:
        rendered = render_report(frame, run_ids, root / config.report, thresholds=thresholds, history=history.uri,
                                 config=config, records=records)  # fmt: skip
        found = rendered.regressions
        lines.append(
            f"report: {rendered.html}   summary: {rendered.markdown}   charts: {rendered.html.parent / 'charts'}"
        )
    else:
        found = find_regressions(frame, run_ids, thresholds)
    if found:
        lines.append(f"drill results regressed ({', '.join(t.spec for t in thresholds)}):")
        lines += [f"  {r.describe()}" for r in found]
    return SessionReport(lines, found)
