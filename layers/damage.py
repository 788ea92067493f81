"""Page-level damage to a stopped server's SQLite file, located from the file itself: a table's or an
index's root page comes from sqlite_schema (read with the file opened immutable, so nothing is written and
no WAL is applied), then its b-tree is walked page by page (interior pages name their children). The damage
operations overwrite pages, truncate the file, or zero the 100-byte header.

Only ever point these at a file the drill created, with its server stopped."""

from __future__ import annotations

import os
import random
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HEADER = 100
MAGIC = b"SQLite format 3\x00"
INTERIOR = {0x02: "index interior", 0x05: "table interior"}
LEAF = {0x0A: "index leaf", 0x0D: "table leaf"}


class DamageError(ValueError):
    """The file or the object cannot be damaged as asked; the message says why and what to do."""


@dataclass(frozen=True)
class FileGeometry:
    page_size: int
    page_count: int  # from the file's size (the header's count may lag a WAL-mode file)
    bytes: int


@dataclass(frozen=True)
class PageDamage:
    """What a damage operation did, for the drill record."""

    form: str
    target: str
    pages: tuple[int, ...] = ()
    bytes_before: int = 0
    bytes_after: int = 0

    def describe(self) -> dict[str, object]:
        pages = list(self.pages)
        return {
            "form": self.form,
            "target": self.target,
            "pages": len(pages),
            "page_numbers": pages[:20] + (["..."] if len(pages) > 20 else []),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }


def geometry(path: Path) -> FileGeometry:
    with path.open("rb") as f:
        header = f.read(HEADER)
    if len(header) < HEADER or not header.startswith(MAGIC):
        raise DamageError(f"{path} is not a plain SQLite file (no 'SQLite format 3' header): an encrypted or already "
                          "damaged file cannot be located page by page; damage a fresh copy instead")  # fmt: skip
    (raw,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if raw == 1 else raw
    size = path.stat().st_size
    return FileGeometry(page_size, size // page_size, size)


def _schema_root(path: Path, name: str) -> tuple[str, int]:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    db = sqlite3.connect(uri, uri=True)
    try:
        row = db.execute("SELECT type, rootpage FROM sqlite_schema WHERE name = ?", (name,)).fetchone()
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE rootpage > 0 ORDER BY name")]
    finally:
        db.close()
    if row is None or not row[1]:
        raise DamageError(f"{path} has no table or index named {name!r} with pages: use one of {', '.join(names)}")
    return str(row[0]), int(row[1])


def _read_page(f: object, number: int, page_size: int) -> bytes:
    f.seek((number - 1) * page_size)  # type: ignore[attr-defined]
    return f.read(page_size)  # type: ignore[attr-defined,no-any-return]


def btree_pages(path: Path, name: str) -> tuple[int, ...]:
    """Every b-tree page (root, interior, leaf; overflow pages excluded) of the table or index `name`,
    in walk order, root first."""
    geo = geometry(path)
    _, root = _schema_root(path, name)
    seen: list[int] = []
    todo = [root]
    with path.open("rb") as f:
        while todo:
            number = todo.pop()
            if number in seen or not 1 <= number <= geo.page_count:
                raise DamageError(f"{path}: b-tree of {name!r} points at page {number} twice or out of range "
                                  f"(1..{geo.page_count}): the file is already damaged")  # fmt: skip
            seen.append(number)
            page = _read_page(f, number, geo.page_size)
            at = HEADER if number == 1 else 0
            kind = page[at]
            if kind in LEAF:
                continue
            if kind not in INTERIOR:
                raise DamageError(f"{path}: page {number} of {name!r} is not a b-tree page (type {kind:#x})")
            (cells,) = struct.unpack(">H", page[at + 3 : at + 5])
            (right,) = struct.unpack(">I", page[at + 8 : at + 12])
            children = [right]
            for i in range(cells):
                (offset,) = struct.unpack(">H", page[at + 12 + 2 * i : at + 14 + 2 * i])
                children.append(struct.unpack(">I", page[offset : offset + 4])[0])
            todo.extend(reversed(children))
    return tuple(seen)


def overwrite_pages(path: Path, pages: Iterable[int], *, seed: int = 0) -> tuple[int, ...]:
    """Overwrite whole pages with pseudo-random bytes (a bad disk or a stray write). Page 1 is refused:
    use zero_header for that."""
    geo = geometry(path)
    chosen = tuple(sorted(set(pages)))
    if not chosen:
        raise DamageError(f"no pages given to overwrite in {path}")
    if chosen[0] < 1 or chosen[-1] > geo.page_count or 1 in chosen:
        raise DamageError(f"pages {chosen[0]}..{chosen[-1]} of {path}: use pages 2..{geo.page_count}")
    rng = random.Random(seed)
    with path.open("r+b") as f:
        for number in chosen:
            f.seek((number - 1) * geo.page_size)
            f.write(rng.randbytes(geo.page_size))
        f.flush()
        os.fsync(f.fileno())
    return chosen


def damage_object(path: Path, name: str, *, seed: int = 0) -> PageDamage:
    """Overwrite every b-tree page of a table or an index: its content is gone from this file."""
    before = path.stat().st_size
    pages = overwrite_pages(path, btree_pages(path, name), seed=seed)
    return PageDamage("overwrite", name, pages, before, path.stat().st_size)


def truncate(path: Path, fraction: float = 0.5) -> PageDamage:
    """Cut the file to `fraction` of its size (a copy interrupted, a full disk), on a page boundary."""
    if not 0 < fraction < 1:
        raise DamageError(f"truncate fraction {fraction!r}: use a value strictly between 0 and 1")
    geo = geometry(path)
    keep = max(1, int(geo.page_count * fraction))
    os.truncate(path, keep * geo.page_size)
    return PageDamage("truncate", path.name, tuple(range(keep + 1, geo.page_count + 1)), geo.bytes, path.stat().st_size)


def zero_header(path: Path) -> PageDamage:
    """Zero the 100-byte database header (magic, page size, schema cookie): no SQLite reader knows the file."""
    size = geometry(path).bytes
    with path.open("r+b") as f:
        f.write(bytes(HEADER))
        f.flush()
        os.fsync(f.fileno())
    return PageDamage("zero-header", path.name, (1,), size, path.stat().st_size)
