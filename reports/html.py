"""A self-contained HTML report: charts embedded as base64 PNG data URIs, inline CSS, no scripts and no
external resources, so the file can be mailed or archived as is."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from reports.tables import ReportData, Table

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.pass { background: #e3f5e1; color: #1d5e1a; font-weight: 600; }
td.fail, td.error { background: #fbe3e3; color: #8a1414; font-weight: 600; }
td.regressed { background: #fbe3e3; color: #8a1414; font-weight: 600; }
td.ok { background: #e3f5e1; color: #1d5e1a; }
td.not-checkable { background: #f5f1dc; color: #6b5d12; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
img.chart { max-width: 100%; border: 1px solid #eee; margin: 8px 0; }
p.note { color: #666; font-size: 13px; }
"""

CHART_TITLES = {
    "rto_over_time": "RTO per scenario over time",
    "rto_phases": "RTO by phase",
    "rpo_over_time": "RPO per scenario over time",
    "restore_throughput": "Restore throughput against database size",
    "restore_tests": "Restore tests of existing backups over time",
}


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            cls = f' class="{escape(cell.replace(" ", "-"))}"' if i == table.status_column else ""
            cells.append(f"<td{cls}>{escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    grid = (
        f'<table id="{table.key}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        if table.rows
        else ""
    )
    return f'<section id="section-{table.key}"><h2>{escape(table.title)}</h2>{note}{grid}</section>'


def render_html(data: ReportData, charts: dict[str, Path]) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in data.facts)
    images = "".join(
        f'<figure><img class="chart" id="chart-{name}" alt="{escape(CHART_TITLES.get(name, name))}" '
        f'src="{data_uri(path)}"></figure>'
        for name, path in charts.items()
    )
    first, rest = data.tables[:1], data.tables[1:]  # the latest run, then the trends, then the details
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(data.title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{escape(data.title)}</h1>"
        f'<dl class="facts">{facts}</dl>{"".join(_table(t) for t in first)}'
        f'<section id="section-charts"><h2>Trends</h2>{images}</section>'
        f"{''.join(_table(t) for t in rest)}</body></html>\n"
    )


def write_html(data: ReportData, charts: dict[str, Path], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data, charts), encoding="utf-8")
    return path
