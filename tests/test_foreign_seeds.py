"""Foreign seeds: the shipped Chinook dump is what its generator makes, the incident planner works on its
schema (and says clearly when a seed has nothing to delete), before any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.config import Scale
from fixtures.schema import SchemaError
from fixtures.seed import SeedInfo
from fixtures.seed_sources import build_source, resolve_source
from scenarios.incident import Picks, plan_incident
from scenarios.pitr_checks import historical_rows
from tests.drillrun import ROOT, run_pytest
from tests.fixtures_data import chinook

CHINOOK = ROOT / "tests" / "fixtures_data" / "chinook.sql"


def test_the_shipped_chinook_dump_is_what_the_generator_makes() -> None:
    assert CHINOOK.read_text() == chinook.dump_text(), "regenerate: python -m tests.fixtures_data.chinook --out ..."


def _seed(tmp: Path, spec: str) -> SeedInfo:
    return build_source(resolve_source(spec, ROOT), tmp / "cache", Scale(customers=10))


def test_the_incident_follows_the_foreign_keys_of_a_foreign_schema(tmp_path: Path) -> None:
    seed = _seed(tmp_path, str(CHINOOK))
    counts = {t: d.count for t, d in seed.tables.items()}
    incident = plan_incident(seed.schema, seed.path, counts, Picks())
    # the largest referenced table, and the rows that reference its picked rows
    assert incident.target == "Track" and incident.deleted["Track"]
    assert incident.deleted.get("InvoiceLine") and incident.deleted.get("PlaylistTrack"), incident.describe()
    assert incident.order.index("Track") < incident.order.index("InvoiceLine")
    statements = [table for table, _, _ in incident.statements()]
    assert statements.index("InvoiceLine") < statements.index("Track"), "children are deleted first"
    query, expected = historical_rows(seed)
    assert set(expected) >= {"Track", "InvoiceLine", "Artist"} and "rowid <=" in query


def test_set_null_rows_are_cleared_not_deleted(tmp_path: Path) -> None:
    seed = _seed(tmp_path, str(CHINOOK))
    counts = {t: d.count for t, d in seed.tables.items()}
    employees = plan_incident(seed.schema, seed.path, {t: (n if t == "Employee" else 0) for t, n in counts.items()},
                              Picks(rows=(0.3, 0.5), loose=()))  # fmt: skip
    assert employees.target == "Employee"
    assert employees.nulled.get("Customer") and not employees.deleted.get("Customer"), employees.describe()


def test_a_seed_without_rows_cannot_carry_an_incident_and_says_so(tmp_path: Path) -> None:
    dump = tmp_path / "empty.sql"
    dump.write_text("CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT);\nCREATE TABLE b (id INTEGER PRIMARY KEY, "
                    "a_id INTEGER REFERENCES a(id));\n")  # fmt: skip
    seed = _seed(tmp_path, str(dump))
    with pytest.raises(SchemaError, match=r"no table of the seed holds rows .*tables: a, b.*Give drill_seed"):
        plan_incident(seed.schema, seed.path, {t: d.count for t, d in seed.tables.items()}, Picks())
    run = run_pytest(["drills/test_row_deletion.py", f"--drill-seed={dump}", "--drill-backend=process"], tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    assert "row-deletion-surgical cannot run on seed" in run.output and "no table of the seed holds rows" in run.output
    assert run.history == [] and not list((tmp_path / "artifacts").glob("*/*/*.log")), "a server was started"


def test_table_corruption_damages_the_largest_table_and_index_of_any_schema(tmp_path: Path) -> None:
    from fixtures.damage import btree_pages, largest_object
    from scenarios.table_corruption import FORMS, fits

    seed = _seed(tmp_path, str(CHINOOK))
    table, index = largest_object(seed.path, "table"), largest_object(seed.path, "index")
    assert table is not None and all(
        len(btree_pages(seed.path, t)) <= len(btree_pages(seed.path, str(table))) for t in seed.tables
    ), table  # the most b-tree pages
    assert index is not None and len(btree_pages(seed.path, index)) >= 1
    bare = tmp_path / "bare.sql"
    bare.write_text("CREATE TABLE t (x TEXT);\nINSERT INTO t VALUES ('a');\n")
    no_index = _seed(tmp_path, str(bare))
    fits(FORMS["table"])(no_index)  # a table to overwrite
    with pytest.raises(SchemaError, match=r"has no index.*'index' damage has nothing to overwrite"):
        fits(FORMS["index"])(no_index)
