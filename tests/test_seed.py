"""The built-in seed: deterministic, sized as asked, consistent (foreign keys, integrity), cached."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fixtures.config import Scale, parse_scale
from fixtures.digest import TableDigest
from fixtures.seed import TABLES, SeedInfo, build_seed, digest_database


def _pragma(path: Path, pragma: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(pragma).fetchall()
    finally:
        db.close()


def test_two_builds_are_identical(tmp_path: Path) -> None:
    one = build_seed(tmp_path / "a", Scale(customers=80))
    two = build_seed(tmp_path / "b", Scale(customers=80))
    assert one.path != two.path
    assert one.tables == two.tables
    assert one.max_ids == two.max_ids
    assert digest_database(one.path) == digest_database(two.path)


def test_another_random_seed_gives_other_content(tmp_path: Path) -> None:
    one = build_seed(tmp_path / "a", Scale(customers=80))
    other = build_seed(tmp_path / "b", Scale(customers=80), seed=1)
    assert one.tables["customers"] != other.tables["customers"]


def test_rows_scale_gives_that_many_customers(tmp_path: Path) -> None:
    info = build_seed(tmp_path, parse_scale("rows:137"))
    assert info.tables["customers"].count == 137
    assert info.max_ids["customers"] == 137
    assert info.scale == "rows:137"
    assert all(info.tables[t].count > 0 for t in TABLES)
    assert _pragma(info.path, "SELECT count(*) FROM customers") == [(137,)]


def test_size_scale_reaches_the_target(tmp_path: Path) -> None:
    info = build_seed(tmp_path, parse_scale("1MB"))
    assert info.bytes >= 1_000_000
    assert info.path.stat().st_size == info.bytes
    assert info.scale == "1MB"


def test_seed_is_consistent(tmp_path: Path) -> None:
    info = build_seed(tmp_path, Scale(customers=200))
    assert _pragma(info.path, "PRAGMA integrity_check") == [("ok",)]
    assert _pragma(info.path, "PRAGMA foreign_key_check") == []
    orphans = _pragma(info.path, "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT id FROM customers)")
    assert orphans == [(0,)]


def test_digests_describe_the_file(tmp_path: Path) -> None:
    info = build_seed(tmp_path, Scale(customers=30))
    db = sqlite3.connect(info.path)
    try:
        for table in TABLES:
            assert info.tables[table] == TableDigest.of(db.execute(f"SELECT * FROM {table}"))
    finally:
        db.close()


def test_cache_reuse_returns_the_same_seed(tmp_path: Path) -> None:
    first = build_seed(tmp_path, Scale(customers=40))
    mtime = first.path.stat().st_mtime_ns
    again = build_seed(tmp_path, Scale(customers=40))
    assert again == first
    assert first.path.stat().st_mtime_ns == mtime, "a cached seed must not be rebuilt"
    assert SeedInfo.from_json(first.path, first.to_json()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.path.name, first.path.with_suffix(".json").name])


@pytest.mark.parametrize(("scale", "label"), [("rows:5", "rows-5"), ("2MB", "2MB")])
def test_cache_file_names_carry_the_scale(tmp_path: Path, scale: str, label: str) -> None:
    info = build_seed(tmp_path, parse_scale(scale))
    assert label in info.path.name
