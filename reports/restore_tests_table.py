"""The report's table of restore tests of existing backups: every one in the history, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reports.restore_tests import RESTORE_TEST_KIND
from reports.tables import Table


def table(records: Iterable[dict[str, Any]], limit: int = 50) -> Table:
    """Every restore test in the history, newest first (the trend of each source's restore time and rows)."""
    tests = sorted((r for r in records if r.get("kind") == RESTORE_TEST_KIND),
                   key=lambda r: str(r.get("started_at", "")), reverse=True)[:limit]  # fmt: skip
    rows = []
    for r in tests:
        rate = r.get("restore_mb_per_second")
        failed = next((f"{c.get('name')}: {c.get('detail')}" for c in r.get("checks") or [] if not c.get("ok")), "")
        rows.append((str(r.get("started_at", ""))[:19], str(r.get("source")), str(r.get("point_requested", "")),
                     str(r.get("point_achieved") or "-"), f"{float(r.get('restore_seconds') or 0):.2f}",
                     "-" if rate is None else f"{float(rate):.1f}", str(sum((r.get("row_counts") or {}).values())),
                     "pass" if r.get("ok") else f"fail ({failed[:120]})"))  # fmt: skip
    header = ("started", "source", "point requested", "point achieved", "restore s", "MB/s", "rows", "verdict")
    note = "" if rows else "none in this history (python -m layers.staging --history ...)"
    return Table("restore_tests", "Restore tests of existing backups", header, rows, status_column=7, note=note)
