"""The page-level damage tools against SQLite's own view of the file (dbstat, integrity_check), and the
integrity-gated layer-1 restore of the table-corruption drill against a real sqld (process backend)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fixtures.damage import DamageError, btree_pages, damage_object, geometry, overwrite_pages, truncate, zero_header
from fixtures.hrana import HranaSession
from fixtures.seed import TABLES, SeedInfo, install_seed
from fixtures.sqld import SqldServer
from layers.backup import BACKUPS, BackupCatalog, CatalogEntry, NoUsableBackup, take_backup
from layers.recovery import Gate
from layers.store import LocalStore
from tests.servers import SqldFactory, restore_catalog


@pytest.fixture
def db(tmp_path: Path, small_seed: SeedInfo) -> Path:
    path = tmp_path / "data"
    shutil.copyfile(small_seed.path, path)
    return path


def _objects(path: Path) -> list[str]:
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT name FROM sqlite_schema WHERE rootpage > 1 ORDER BY name")]


def _integrity(path: Path) -> str:
    try:
        with sqlite3.connect(path) as c:
            return "; ".join(r[0] for r in c.execute("PRAGMA integrity_check"))
    except sqlite3.DatabaseError as exc:
        return f"error: {exc}"


def test_btree_pages_match_dbstat_for_every_table_and_index(db: Path) -> None:
    with sqlite3.connect(db) as c:
        for name in _objects(db):
            expected = sorted(r[0] for r in c.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype IN ('internal', 'leaf')", (name,)))  # fmt: skip
            assert sorted(btree_pages(db, name)) == expected, name
    assert len(btree_pages(db, "order_items")) > 1, "the seed's order_items should need interior pages"


def test_overwriting_a_table_breaks_it_and_nothing_else_is_touched(db: Path) -> None:
    before = db.read_bytes()
    done = damage_object(db, "order_items")
    after = db.read_bytes()
    size = geometry(db).page_size
    changed = {i // size + 1 for i in range(0, len(before), size) if before[i : i + size] != after[i : i + size]}
    assert changed == set(done.pages)
    assert _integrity(db) != "ok"
    with sqlite3.connect(db) as c:  # the other tables still read
        assert c.execute("SELECT count(*) FROM customers").fetchone()[0] > 0


def test_overwriting_an_index_breaks_integrity(db: Path) -> None:
    damage_object(db, "order_items_order")
    assert _integrity(db) != "ok"


def test_truncate_cuts_on_a_page_boundary(db: Path) -> None:
    geo = geometry(db)
    done = truncate(db, 0.5)
    assert done.bytes_after == (geo.page_count // 2) * geo.page_size == db.stat().st_size
    assert _integrity(db) != "ok"


def test_zero_header_makes_the_file_unknown(db: Path) -> None:
    zero_header(db)
    assert "not a database" in _integrity(db)
    with pytest.raises(DamageError, match="not a plain SQLite file"):
        geometry(db)


def test_bad_requests_say_what_to_do(db: Path) -> None:
    with pytest.raises(DamageError, match=r"use one of .*order_items"):
        btree_pages(db, "no_such_table")
    with pytest.raises(DamageError, match="use pages 2"):
        overwrite_pages(db, [1])
    with pytest.raises(DamageError, match="strictly between 0 and 1"):
        truncate(db, 1.0)
    assert _integrity(db) == "ok"


# -- the integrity gate ------------------------------------------------------------------------------------
@pytest.fixture
def seeded(process_sqld: SqldFactory, small_seed: SeedInfo) -> Iterator[SqldServer]:
    server = process_sqld("source")
    install_seed(small_seed, server.db_file)
    yield server.start()


def _add_cut_backup(catalog: BackupCatalog, good: CatalogEntry, tmp_path: Path) -> CatalogEntry:
    """A newer backup whose checksum holds but whose dump stops halfway (no COMMIT): what a dump cut
    short by a damaged page would store if the cut went unnoticed."""
    spool = tmp_path / "good.sql.gz"
    with spool.open("wb") as f:
        catalog.store.get(good.key, f)
    lines = gzip.decompress(spool.read_bytes()).decode().splitlines(keepends=True)
    data = gzip.compress("".join(lines[: len(lines) // 2]).encode())
    created = good.created + timedelta(seconds=1)
    entry = dataclasses.replace(good, id=f"{good.id}-cut", key=f"{BACKUPS}{good.id}-cut.sql.gz",
                                created_at=created.isoformat(), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))  # fmt: skip
    catalog.store.put_bytes(entry.key, data)
    catalog.add(entry)
    return entry


def test_gate_refuses_a_checksummed_backup_that_restores_unsound(
    seeded: SqldServer, process_sqld: SqldFactory, tmp_path: Path
) -> None:
    catalog = BackupCatalog(LocalStore(tmp_path / "store"))
    good = take_backup(seeded.http_url, catalog, sqld_version="test")
    cut = _add_cut_backup(catalog, good, tmp_path)
    assert [e.id for e in catalog.entries()] == [cut.id, good.id]

    outcome = restore_catalog(catalog, process_sqld, tmp_path / "restore", Gate(TABLES))
    assert outcome.entry.id == good.id
    assert [i for i, _ in outcome.refused_pairs] == [cut.id], outcome.refused
    assert Gate(TABLES).check_server(outcome.server.http_url) is None
    with HranaSession(outcome.server.http_url) as s, HranaSession(seeded.http_url) as src:
        for table in TABLES:
            q = f"SELECT count(*) FROM {table}"
            assert s.execute(q).rows == src.execute(q).rows, table


def test_gate_gives_up_when_no_backup_restores_sound(
    seeded: SqldServer, process_sqld: SqldFactory, tmp_path: Path
) -> None:
    catalog = BackupCatalog(LocalStore(tmp_path / "store"))
    good = take_backup(seeded.http_url, catalog, sqld_version="test")
    _add_cut_backup(catalog, good, tmp_path)
    catalog.remove(good)
    with pytest.raises(NoUsableBackup, match=r"no usable layer-1 backup in .*-cut: "):
        restore_catalog(catalog, process_sqld, tmp_path / "restore", Gate(TABLES))


def test_gate_names_the_missing_tables(process_sqld: SqldFactory) -> None:
    empty = process_sqld("empty").start()
    assert Gate(("orders",)).check_server(empty.http_url) == "tables: tables missing: orders"
