"""Seed sources (drill_seed): builtin, a SQL dump (sqlite3 .dump or sqld /dump), an SQLite file, a
module:function generator; and the one clear error a bad seed gets before any server starts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests

from fixtures.config import ConfigError, DrillConfig, Scale, TableFilter, parse_tables
from fixtures.seed import SeedInfo, install_seed
from fixtures.seed_sources import build_source, resolve_source
from fixtures.session import DrillSession
from tests.drillrun import run_pytest
from tests.servers import SqldFactory

ROOT = Path(__file__).resolve().parent.parent
OWN = "tests/fixtures_data/own_schema.sql"
SCALE = Scale(customers=1)


def make_seed(db: sqlite3.Connection) -> None:
    """A generator seed (drill_seed = 'tests.test_seed_sources:make_seed')."""
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    db.executemany("INSERT INTO kv VALUES (?, ?)", [(f"k{i}", bytes([i])) for i in range(40)])


def broken_generator(db: sqlite3.Connection) -> None:
    raise RuntimeError("no data today")


def _build(spec: str, cache: Path) -> SeedInfo:
    return build_source(resolve_source(spec, ROOT), cache, SCALE)


def test_dump_database_file_and_sqld_dump_give_the_same_seed(tmp_path: Path, process_sqld: SqldFactory) -> None:
    from_dump = _build(OWN, tmp_path / "a")
    assert from_dump.source == OWN and from_dump.tables["tasks"].count == 27
    from_file = _build(str(from_dump.path), tmp_path / "b")  # an SQLite database file
    assert resolve_source(str(from_dump.path), ROOT).kind == "database"
    assert from_file.tables == from_dump.tables
    server = process_sqld("dump")
    install_seed(from_dump, server.db_file)
    server.start()
    (tmp_path / "sqld.sql").write_text(requests.get(f"{server.http_url}/dump", timeout=30).text)
    from_sqld = _build(str(tmp_path / "sqld.sql"), tmp_path / "c")
    assert from_sqld.tables == from_dump.tables
    assert [t.name for t in from_sqld.schema.triggers] == [t.name for t in from_dump.schema.triggers]


def test_wal_mode_database_file_becomes_a_standalone_seed(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x") for i in range(1, 51)])
    db.commit()  # left open: the rows live in the -wal file
    info = _build(str(path), tmp_path / "cache")
    db.close()
    assert info.tables["t"].count == 50
    with sqlite3.connect(info.path) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_generator_seed(tmp_path: Path) -> None:
    info = _build("tests.test_seed_sources:make_seed", tmp_path)
    assert info.tables["kv"].count == 40 and info.schema.tables["kv"].without_rowid


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (
            "CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2,;\n",
            'bad.sql:3: near ";": syntax error',
        ),
        (
            "CREATE TABLE p (id INTEGER PRIMARY KEY);\nCREATE TABLE c (id INTEGER PRIMARY KEY, p_id REFERENCES p(id));\n"
            "INSERT INTO c VALUES (1, 99);\n",
            "table c rowid 1 points to a missing row of p",
        ),
        ("-- nothing here\n", "holds no tables"),
        (b"\xff\xfe not text", "neither an SQLite database nor UTF-8"),
        (b"SQLite format 3\x00" + b"\x00" * 200, "drill_seed="),
    ],
    ids=["missing", "syntax", "foreign-key", "empty", "binary", "corrupt-db"],
)
def test_bad_seed_files_get_one_clear_error(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "bad.sql"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match="drill_seed") as err:
        _build(str(path), tmp_path / "cache")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("tests.test_seed_sources:broken_generator", "the generator failed: RuntimeError: no data today"),
     ("tests.no_such_module:make", "cannot load generator make")],
)  # fmt: skip
def test_bad_generators(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _build(spec, tmp_path)


def test_table_filter_setting() -> None:
    assert parse_tables("") == TableFilter()
    assert parse_tables("include=a,b exclude=c") == TableFilter(("a", "b"), ("c",))
    assert not parse_tables("exclude=c").keep("c") and parse_tables("exclude=c").keep("d")
    with pytest.raises(ConfigError, match="drill_tables item 'only=a'"):
        parse_tables("only=a")


def _session(tmp_path: Path, **values: str) -> DrillSession:
    return DrillSession(DrillConfig.from_values({"history": f"file:{tmp_path}/h.jsonl", **values}), ROOT)


def test_session_seed_and_app_checks(tmp_path: Path) -> None:
    custom = _session(tmp_path, seed=OWN)
    assert custom.seed().source == OWN
    assert custom.app_checks.checks == () and custom.app_checks.benchmark == ()  # builtin checks: not on your schema
    assert _session(tmp_path).app_checks.checks  # builtin seed: layers/app_checks.toml
    explicit = _session(tmp_path, seed=OWN, app_checks="layers/app_checks.toml")
    assert explicit.app_checks.checks
    assert custom.app_checks_for("builtin").checks  # a drill on the builtin seed in the same run


def test_session_refuses_a_schema_the_workload_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="can write to no table"):
        _session(tmp_path, seed=OWN, tables="include=audit_log")


def test_bad_seed_stops_the_run_before_any_server(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO t VALUES (1,,2);\n")
    run = run_pytest(["drills/test_total_loss.py", f"--drill-seed={bad}"], tmp_path, timeout=120)
    assert run.returncode == 4, run.output[-2000:]
    assert f"{bad}:2:" in run.output and "syntax error" in run.output
    assert run.history == [] and not list((tmp_path / "artifacts").rglob("*.log"))  # no server ever started
