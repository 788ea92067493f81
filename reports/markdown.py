"""The Markdown summary (for a CI job summary or a pull request): the same tables as the HTML report,
charts linked by relative path."""

from __future__ import annotations

import os
from pathlib import Path

from reports.tables import ReportData, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [f"_{_cell(table.note)}_", ""]
    if table.rows:
        lines.append("| " + " | ".join(_cell(h) for h in table.header) + " |")
        lines.append("|" + "---|" * len(table.header))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
        lines.append("")
    return lines


def render_markdown(data: ReportData, charts: dict[str, Path], relative_to: Path) -> str:
    lines = [f"# {data.title}", ""]
    lines += [f"- **{k}**: {_cell(v)}" for k, v in data.facts]
    lines.append("")
    if data.tables:
        lines += _table(data.tables[0])
    if charts:
        lines += ["## Trends", ""]
        lines += [f"![{name}]({Path(os.path.relpath(path, relative_to)).as_posix()})" for name, path in charts.items()]
        lines.append("")
    for table in data.tables[1:]:
        lines += _table(table)
    return "\n".join(lines)


def write_markdown(data: ReportData, charts: dict[str, Path], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(data, charts, path.parent), encoding="utf-8")
    return path
