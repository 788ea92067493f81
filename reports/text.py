"""Plain-text tables for terminals: columns padded to their widest cell, a rule under the header."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def text_table(head: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    rows = [tuple(head), *(tuple(row) for row in body)]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
