"""Schema introspection, the schema-derived workload and layer-3 scans on a custom schema
(tests/fixtures_data/own_schema.sql): composite keys, WITHOUT ROWID, triggers, a view, a self-reference,
a table without a primary key."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import layers.verify
from fixtures.config import Scale, TableFilter
from fixtures.hrana import HranaSession
from fixtures.ledger import Ledger
from fixtures.schema import Identity, SchemaError, affinity, introspect, introspect_file
from fixtures.schema_workload import SchemaWriter, coerce, plan_workload
from fixtures.seed import SeedInfo, install_seed
from fixtures.seed_sources import build_source, resolve_source
from fixtures.workload import WorkloadShape
from layers.verify import scan, verify
from tests.servers import SqldFactory

ROOT = Path(__file__).resolve().parent.parent
OWN = "tests/fixtures_data/own_schema.sql"


@pytest.fixture(scope="module")
def own_seed(tmp_path_factory: pytest.TempPathFactory) -> SeedInfo:
    return build_source(resolve_source(OWN, ROOT), tmp_path_factory.mktemp("own"), Scale(customers=1))


def test_introspection_reads_every_kind_of_object(own_seed: SeedInfo) -> None:
    schema = own_seed.schema
    assert list(schema.tables) == ["accounts", "audit_log", "events", "memberships", "projects", "tasks"]  # dump order
    accounts, projects, tasks = schema.tables["accounts"], schema.tables["projects"], schema.tables["tasks"]
    assert accounts.rowid_alias == "id" and not accounts.without_rowid
    assert [(c.name, c.decl_type, c.not_null) for c in accounts.columns][:2] == [("id", "INTEGER", False),
                                                                                ("handle", "TEXT", True)]  # fmt: skip
    assert {c.name: c.default for c in accounts.columns}["created_at"] == "datetime('now')"
    assert accounts.foreign_keys[0].parent == "accounts"  # self-reference
    assert projects.without_rowid and projects.primary_key == ("code",)
    assert tasks.without_rowid and tasks.primary_key == ("project_code", "seq")
    assert schema.tables["memberships"].primary_key == ("project_code", "account_id")
    assert schema.tables["events"].primary_key == ()
    assert ("handle",) in accounts.unique_sets
    assert any(i.name == "tasks_title" and not i.unique for i in tasks.indexes)
    assert list(schema.views) == ["project_load"]
    assert {t.name: t.writes for t in schema.triggers} == {"tasks_estimate_not_negative": (),
                                                           "memberships_audit": ("audit_log",)}  # fmt: skip
    assert schema.trigger_written == ("audit_log",)


def test_insertion_order_puts_parents_first_and_names_a_cycle() -> None:
    db = sqlite3.connect(":memory:")
    db.executescript("""CREATE TABLE c (id INTEGER PRIMARY KEY, b_id REFERENCES b(id), c_id REFERENCES c(id));
                        CREATE TABLE b (id INTEGER PRIMARY KEY, a_id REFERENCES a(id));
                        CREATE TABLE a (id INTEGER PRIMARY KEY);
                        CREATE TABLE x (id INTEGER PRIMARY KEY, y_id REFERENCES y(id));
                        CREATE TABLE y (id INTEGER PRIMARY KEY, x_id REFERENCES x(id));""")
    schema = introspect(db)
    assert schema.insertion_order(["c", "b", "a"]) == ("a", "b", "c")
    with pytest.raises(SchemaError, match="cycle between tables x, y"):
        schema.insertion_order()


def test_identity_keys_and_paging() -> None:
    composite = Identity("t", (0, 2), ("a", "c"))
    assert composite.key_of((1, "x", 2)) == (1, 2) and not composite.by_rowid
    assert Identity("t", (1,), ("rowid",)).key_of((1, "k")) == "k"
    assert Identity("t", None, ("rowid",)).key_of((1, None)) == (1, None)


def test_affinity_and_coercion_follow_sqlite() -> None:
    db = sqlite3.connect(":memory:")
    types = ["INTEGER", "VARCHAR(10)", "BLOB", "", "DOUBLE PRECISION", "DECIMAL(5,2)", "BOOLEAN"]
    assert [affinity(t) for t in types] == ["INTEGER", "TEXT", "BLOB", "BLOB", "REAL", "NUMERIC", "NUMERIC"]
    db.execute(f"CREATE TABLE t ({', '.join(f'c{i} {t}' for i, t in enumerate(types))})")
    schema = introspect(db)
    for value in (7, 2.0, 2.5):
        db.execute("DELETE FROM t")
        db.execute(f"INSERT INTO t VALUES ({','.join('?' * len(types))})", [value] * len(types))
        stored = db.execute("SELECT * FROM t").fetchone()
        predicted = tuple(coerce(value, c) for c in schema.tables["t"].columns)
        assert stored == predicted, (value, stored, predicted)


def test_workload_plan(own_seed: SeedInfo) -> None:
    plan = plan_workload(own_seed.schema, TableFilter(), own_seed.path)
    ops = {p.table.name: p.ops for p in plan.tables}
    assert ops["events"] == ("insert",)  # no primary key: insert only
    assert ops["tasks"] == ("insert", "update", "delete")
    assert plan.skipped == {"audit_log": "written by a trigger"}
    only = plan_workload(own_seed.schema, TableFilter(include=("tasks",)), own_seed.path)
    assert [p.table.name for p in only.tables] == ["tasks"]
    with pytest.raises(SchemaError, match="drill_tables names nope"):
        plan_workload(own_seed.schema, TableFilter(exclude=("nope",)), own_seed.path)
    every = tuple(own_seed.schema.tables)
    with pytest.raises(SchemaError, match="can write to no table"):
        plan_workload(own_seed.schema, TableFilter(exclude=every), own_seed.path)


def test_workload_without_a_parent_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (id INTEGER PRIMARY KEY, "
                     "p_id INTEGER NOT NULL REFERENCES p(id));")  # fmt: skip
    db.close()
    schema = introspect_file(path)
    with pytest.raises(SchemaError, match="c: needs a row of p"):
        plan_workload(schema, TableFilter(exclude=("p",)), path)


def test_scan_pages_composite_and_rowless_tables(
    own_seed: SeedInfo, process_sqld: SqldFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny pages force every table through several row-value pages; digests and picked keys match the seed."""
    monkeypatch.setattr(layers.verify, "PAGE", 4)
    server = process_sqld("own")
    install_seed(own_seed, server.db_file)
    server.start()
    with HranaSession(server.http_url) as s:
        for ident in own_seed.verified:
            key = ident.key_of(s.execute(f'SELECT * FROM "{ident.table}" LIMIT 1 OFFSET 5').rows[0])
            digest, picked = scan(s, ident, {key})
            assert digest == own_seed.tables[ident.table], ident.table
            assert list(picked) == [(ident.table, key)], ident


def test_schema_writer_ledger_matches_the_database(own_seed: SeedInfo, process_sqld: SqldFactory) -> None:
    """The row images the writer records are exactly what sqld stores (types, keys); a row removed behind
    its back is caught by layer 3."""
    server = process_sqld("own")
    install_seed(own_seed, server.db_file)
    server.start()
    ledger = Ledger()
    writer = SchemaWriter(server.http_url, ledger, own_seed, WorkloadShape(rate=80))
    writer.start()
    time.sleep(2.5)
    writer.stop()
    assert writer.acked > 50 and writer.failed == 0, writer.last_error
    touched = {c.table for w in ledger.acked() for c in w.changes}
    assert touched == {"accounts", "projects", "memberships", "tasks", "events"}
    assert {w.op for w in ledger.acked()} == {"place", "update", "cancel"}
    result = verify(server.http_url, tables=own_seed.verified, base=own_seed.tables, writes=ledger.writes)
    assert result.ok, result.failures
    assert result.loss.lost == ()
    key = next(iter(writer.rows["tasks"]))  # a live task the workload wrote
    assert isinstance(key, tuple)
    project, seq = key
    with HranaSession(server.http_url) as s:
        assert s.execute("DELETE FROM tasks WHERE project_code = ? AND seq = ?", [project, seq]).affected == 1
    broken = verify(server.http_url, tables=own_seed.verified, base=own_seed.tables, writes=ledger.writes)
    assert not broken.ok and any(f.startswith("row_counts: tasks") for f in broken.failures), broken.failures
    assert [c.key for w in broken.loss.lost for c in w.changes if c.table == "tasks"][-1:] == [(project, seq)]


def test_constraint_rejections_stay_out_of_the_ledger(tmp_path: Path, process_sqld: SqldFactory) -> None:
    """A CHECK the generator ignores refuses some inserts: they are rolled back, so not in the ledger."""
    cache = tmp_path / "cache"
    dump = tmp_path / "check.sql"
    dump.write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n % 2 = 0));\n"
                    "INSERT INTO t VALUES (1, 2);\n")  # fmt: skip
    seed = build_source(resolve_source(str(dump), ROOT), cache, Scale(customers=1))
    server = process_sqld("check")
    install_seed(seed, server.db_file)
    server.start()
    ledger = Ledger()
    writer = SchemaWriter(server.http_url, ledger, seed, WorkloadShape(rate=60, place=1, update=0, cancel=0))
    writer.start()
    time.sleep(1.5)
    writer.stop()
    assert writer.rejected_count > 0 and not any(w.in_doubt for w in ledger.writes), writer.last_error
    result = verify(server.http_url, tables=seed.verified, base=seed.tables, writes=ledger.writes)
    assert result.ok, result.failures
