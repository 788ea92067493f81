"""Hostile and bad input, fuzzed with hypothesis: settings, app checks files, catalog entries and backup
objects. Each bad input gets one clear error of the runner's own type naming the field (ConfigError,
AppChecksError, a refused catalog entry, a skipped backup) — never an unexpected exception — and nothing
is destroyed: a bad catalog entry or backup object is skipped with its reason and the restore falls back
to the newest good backup. Example counts stay modest (DRILL_FUZZ_EXAMPLES=400 for a monthly run)."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.config import OPTIONS, ConfigError, DrillConfig
from fixtures.seed import SeedInfo, install_seed
from fixtures.sqld import SqldServer
from layers.appchecks import AppChecks, AppChecksError, load_app_checks
from layers.backup import (
    BACKUPS,
    CATALOG,
    BackupCatalog,
    CatalogEntry,
    NoUsableBackup,
    take_backup,
)
from layers.store import LocalStore
from tests.servers import restore_catalog, sqld_servers
from tests.test_backup import table_digests

EXAMPLES = int(os.environ.get("DRILL_FUZZ_EXAMPLES", "40"))  # pure checks; those with servers run a sixth
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVERS = settings(max_examples=max(2, EXAMPLES // 6), deadline=None, suppress_health_check=list(HealthCheck))

NEAR_MISSES = st.sampled_from(
    ["", " ", "0", "-1", "nan", "NaN", "inf", "-inf", "1e309", "2", "2.5", "1" * 5000, "2MB", "0MB", "1TB",
     "rows:0", "rows:-5", "rows:1", "auto", "process,container", "docker", "us-east=moto", "us-east=moto eu-west=moto",
     "a=b c=d", "x.rto_seconds=5", "total-loss.rpo_writes=1", "rto_seconds:20%", "bogus:1", "us-east/bucket",
     "us-east/*", "nowhere/bucket", "\x00", "\uff12", "\u0663", "\u202e5"]
)  # fmt: skip
TEXT = st.one_of(NEAR_MISSES, st.text(max_size=40), st.builds(lambda a, b: f"{a} {b}", NEAR_MISSES, NEAR_MISSES))
CHECKED = [o for o in OPTIONS if o.parse is not str or o.multiple]


def _field_named(option: str) -> str:
    return "drill_" + option


@pytest.mark.parametrize("option", CHECKED, ids=lambda o: o.name)
@FAST
@given(text=TEXT)
def test_any_setting_value_parses_or_names_the_setting(option: Any, text: str) -> None:
    try:
        config = DrillConfig.from_values({option.name: [text] if option.multiple else text})
    except ConfigError as exc:
        assert _field_named(option.name) in str(exc), str(exc)
        return
    for name in ("backup_interval", "writer_rate", "probe_interval", "startup_timeout", "backup_retention_days"):
        value = getattr(config, name)
        assert math.isfinite(value) and value > 0, (name, value)


# -- app checks files ----------------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # ASCII-only strings: a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(i) for i in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(i)}" for k, i in v.items()) + "}"


SCALARS = st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20))  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2), max_leaves=5)  # fmt: skip
ENTRY = st.dictionaries(st.sampled_from(["name", "sql", "expect", "extra"]), VALUES, max_size=4)
DOCS = st.dictionaries(
    st.sampled_from(["check", "benchmark", "chek", "settings"]),
    st.one_of(st.lists(ENTRY, max_size=3), VALUES),
    max_size=3,
)


def _toml(doc: dict[str, Any]) -> str:
    lines = []
    for section, value in doc.items():
        if isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            for entry in value:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        else:
            lines.insert(0, f"{section} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


@FAST
@given(doc=DOCS)
def test_any_app_checks_document_loads_or_names_the_file(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checks.toml"
        path.write_text(_toml(doc))
        try:
            checks = load_app_checks(path)
        except AppChecksError as exc:
            assert str(path) in str(exc), str(exc)
            return
    assert isinstance(checks, AppChecks)
    assert all(isinstance(c.expect, str | int | float) for c in checks.checks)


@FAST
@given(data=st.binary(max_size=200))
def test_any_bytes_as_app_checks_file_load_or_name_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checks.toml"
        path.write_bytes(data)
        try:
            load_app_checks(path)
        except AppChecksError as exc:
            assert str(path) in str(exc)


def test_app_checks_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(AppChecksError, match=str(tmp_path)):
        load_app_checks(tmp_path)


# -- catalog entries -------------------------------------------------------------------------------------
def _good(backup_id: str, data: bytes, at: datetime) -> dict[str, Any]:
    return {"id": backup_id, "key": f"{BACKUPS}{backup_id}.sql.gz", "created_at": at.isoformat(),
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "source": "src", "sqld_version": "v"}  # fmt: skip


def _mutations() -> st.SearchStrategy[tuple[str, Any]]:
    """(description, how to spoil a good entry): garbage, wrong types, pointing elsewhere."""
    field = st.sampled_from(["id", "key", "created_at", "sha256", "bytes", "source", "sqld_version"])
    wrong = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10), st.lists(st.integers(), max_size=2),
                      st.booleans(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))  # fmt: skip
    return st.one_of(
        st.tuples(st.just("garbage bytes"), st.binary(max_size=60)),
        st.tuples(st.just("json not an object"), st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=8))),
        st.tuples(st.just("field replaced"), st.tuples(field, wrong)),
        st.tuples(st.just("field dropped"), field),
        st.tuples(st.just("field added"), st.text(min_size=1, max_size=8)),
        st.tuples(st.just("points elsewhere"), st.sampled_from([
            "layer1/backups/good.sql.gz", "../outside.sql.gz", "/etc/passwd", "layer1/catalog/good.json", ""])),
    )  # fmt: skip


def _spoil(entry: dict[str, Any], how: tuple[str, Any]) -> bytes:
    kind, arg = how
    if kind == "garbage bytes":
        return bytes(arg)
    if kind == "json not an object":
        return json.dumps(arg).encode()
    spoiled = dict(entry)
    if kind == "field replaced":
        spoiled[arg[0]] = arg[1]
    elif kind == "field dropped":
        spoiled.pop(arg)
    elif kind == "field added":
        spoiled[arg if arg not in spoiled else arg + "_"] = 1
    else:
        spoiled["key"] = arg
    return json.dumps(spoiled).encode()


@FAST
@given(spoils=st.lists(_mutations(), min_size=1, max_size=4))
def test_bad_catalog_entries_are_refused_with_a_reason_and_nothing_is_deleted(spoils: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        catalog = BackupCatalog(store)
        data = gzip.compress(b"BEGIN TRANSACTION;\nCOMMIT;\n")
        now = datetime.now(UTC)
        good = _good("good", data, now - timedelta(hours=1))
        store.put_bytes(good["key"], data)
        store.put_bytes(f"{CATALOG}good.json", json.dumps(good).encode())
        planted = []
        for n, how in enumerate(spoils):
            bad_id = f"bad{n}"
            raw = _spoil(_good(bad_id, data, now), how)
            try:  # a mutation may happen to leave the entry valid (e.g. same type): then it must be accepted
                CatalogEntry.from_json(raw, f"{CATALOG}{bad_id}.json")
                continue
            except ValueError:
                pass
            store.put_bytes(f"{CATALOG}{bad_id}.json", raw)
            planted.append(f"{CATALOG}{bad_id}.json")
        before = [o.key for o in store.list()]
        entries, refused = catalog.scan()
        assert [e.id for e in entries] == ["good"]
        assert sorted(k for k, _ in refused) == sorted(planted)
        assert all(why.startswith("catalog entry refused: ") and len(why) > 30 for _, why in refused)
        assert [o.key for o in store.list()] == before, "a bad entry must never be deleted or changed"


# -- backup objects: not gzip, not SQL, SQL that fails mid-way ---------------------------------------------
BAD_OBJECTS = st.one_of(
    st.tuples(st.just("random bytes"), st.binary(min_size=1, max_size=200)),
    st.tuples(st.just("gzip of random bytes"), st.binary(max_size=200).map(gzip.compress)),
    st.tuples(st.just("gzip of text, not a dump"), st.text(max_size=200).map(lambda t: gzip.compress(t.encode()))),
    st.tuples(st.just("truncated gzip dump"), st.integers(10, 60).map(
        lambda n: gzip.compress(b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE junk(a);\nCOMMIT;\n")[:n])),
    st.tuples(st.just("dump failing mid-way"), st.sampled_from([
        "CREATE TABLE junk(a);\nINSERT INTO junk VALUES(1);\nINSERT INTO nowhere VALUES(1);\n",
        "CREATE TABLE junk(a);\nCREATE TABLE junk(a);\n",
        "INSERT INTO junk VALUES(1);\n",
        "CREATE TABLE junk(a);\nTHIS IS NOT SQL;\n",
    ]).map(lambda body: gzip.compress(f"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n{body}COMMIT;\n".encode()))),
)  # fmt: skip


@dataclass(frozen=True)
class GoodBackup:
    data: bytes = field(repr=False)
    record: dict[str, Any]


@pytest.fixture(scope="module")
def good_backup(tmp_path_factory: pytest.TempPathFactory, small_seed: SeedInfo) -> Iterator[GoodBackup]:
    """The bytes and catalog record of one real backup of the small seed."""
    store = LocalStore(tmp_path_factory.mktemp("good"))
    with sqld_servers("process", tmp_path_factory.mktemp("source")) as make:
        server: SqldServer = make("source")
        install_seed(small_seed, server.db_file)
        server.start()
        entry = take_backup(server.http_url, BackupCatalog(store), sqld_version="v")
    yield GoodBackup(store.get_bytes(entry.key), json.loads(store.get_bytes(f"{CATALOG}{entry.id}.json")))


@SERVERS
@given(bad=st.lists(BAD_OBJECTS, min_size=1, max_size=2))
def test_bad_backup_objects_are_skipped_and_the_restore_falls_back(
    bad: list[tuple[str, bytes]], good_backup: GoodBackup, small_seed: SeedInfo
) -> None:
    data, record = good_backup.data, good_backup.record
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        store.put_bytes(record["key"], data)
        store.put_bytes(f"{CATALOG}{record['id']}.json", json.dumps(record).encode())
        newer = datetime.fromisoformat(record["created_at"])
        bad_ids = []
        for n, (_, blob) in enumerate(bad):  # newer than the good one: tried first, with a checksum that holds
            newer += timedelta(seconds=1)
            bad_id = f"zz-bad-{n}"
            store.put_bytes(f"{BACKUPS}{bad_id}.sql.gz", blob)
            store.put_bytes(f"{CATALOG}{bad_id}.json", json.dumps(_good(bad_id, blob, newer)).encode())
            bad_ids.append(bad_id)
        before = {o.key: o.size for o in store.list()}
        with sqld_servers("process", Path(tmp) / "servers") as make:
            outcome = restore_catalog(BackupCatalog(store), make, Path(tmp) / "restore")
            target = outcome.server
            assert outcome.entry.id == record["id"]
            assert sorted(i for i, _ in outcome.refused_pairs) == sorted(bad_ids)
            assert all(why for _, why in outcome.refused_pairs)
            assert table_digests(target.http_url) == small_seed.tables
            from fixtures.hrana import HranaSession

            with HranaSession(target.http_url) as s:
                names = {r[0] for r in s.execute("SELECT name FROM sqlite_schema WHERE type='table'").rows}
            assert "junk" not in names, "a refused dump must leave nothing behind in the target"
        assert {o.key: o.size for o in store.list()} == before, "nothing in the store is destroyed"


def _no_server(name: str) -> SqldServer:
    raise AssertionError("nothing restorable: no server may be provisioned")


def test_only_bad_backups_give_no_usable_backup_naming_each(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    blob = b"not gzip"
    store.put_bytes(f"{BACKUPS}b1.sql.gz", blob)
    store.put_bytes(f"{CATALOG}b1.json", json.dumps(_good("b1", blob, datetime.now(UTC))).encode())
    store.put_bytes(f"{CATALOG}b2.json", b"{garbage")
    with pytest.raises(NoUsableBackup) as failed:
        restore_catalog(BackupCatalog(store), _no_server, tmp_path / "restore")  # nothing is usable: no server
    assert "b1: not a gzip'd UTF-8 SQL dump" in str(failed.value)
    assert f"{CATALOG}b2.json: catalog entry refused: not JSON" in str(failed.value)
