"""Verifying backups the user already has: restored into a staging sqld, checked, source only read."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from layers.staging import ReadOnlyStore, SourceError, main, parse_source
from layers.store import LocalStore
from tests.drillrun import ROOT


def _seed_dump(tmp_path: Path) -> Path:
    from fixtures.config import parse_scale
    from fixtures.seed import build_seed

    seed = build_seed(tmp_path / "cache", parse_scale("rows:50"))
    dump = tmp_path / "seed.sql"
    dump.write_text(
        subprocess.run(["sqlite3", str(seed.path), ".dump"], capture_output=True, text=True, check=True).stdout
    )
    return dump


def test_a_good_dump_is_verified(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert main(["--source", f"dump:{_seed_dump(tmp_path)}", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["ok"] and result["counts"]["customers"] == 50
    assert {c["name"] for c in result["checks"]} >= {"integrity_check", "foreign_key_check", "benchmark"}


def test_a_dump_that_breaks_an_app_check_is_not_verified(tmp_path: Path) -> None:
    dump = _seed_dump(tmp_path)
    text = dump.read_text().replace(
        "COMMIT;", "INSERT INTO orders VALUES(999999,1,'lost',5,NULL,'2026-01-01',1);\nCOMMIT;"
    )
    dump.write_text(text)
    out = tmp_path / "result.json"
    assert main(["--source", f"dump:{dump}", "--out", str(out)]) == 1
    failed = [c["name"] for c in json.loads(out.read_text())["checks"] if not c["ok"]]
    assert "app: every order has at least one item" in failed
    assert "app: order status within its domain" in failed


def test_a_layer1_catalog_folder_is_verified_read_only(tmp_path: Path) -> None:
    from fixtures.binary import sqld_binary
    from fixtures.sqld import SqldSpec
    from fixtures.sqld_process import ProcessSqld
    from layers.backup import BackupCatalog, take_backup

    db = tmp_path / "src.db"
    sqlite3.connect(db).executescript(_seed_dump(tmp_path).read_text())
    source = ProcessSqld(SqldSpec("src", tmp_path / "src", tmp_path / "src.log"), binary=str(sqld_binary()))
    source.db_file.parent.mkdir(parents=True)
    shutil.copyfile(db, source.db_file)
    with source:
        take_backup(source.http_url, BackupCatalog(LocalStore(tmp_path / "catalog")), sqld_version="test")
    before = sorted(p.name for p in (tmp_path / "catalog").rglob("*"))
    assert main(["--source", f"catalog:{tmp_path / 'catalog'}"]) == 0
    assert sorted(p.name for p in (tmp_path / "catalog").rglob("*")) == before


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    store = ReadOnlyStore(LocalStore(tmp_path))
    with pytest.raises(PermissionError, match="read-only"):
        store.put("x", io.BytesIO(b"1"))
    with pytest.raises(PermissionError, match="read-only"):
        store.delete("x")


@pytest.mark.parametrize("text", ["s3://bucket", "dump:", "zip:file"])
def test_bad_source_is_named(text: str) -> None:
    with pytest.raises(SourceError, match="dump:PATH"):
        parse_source(text)


def test_cli_reports_a_missing_dump_without_traceback(tmp_path: Path) -> None:
    import sys

    done = subprocess.run([sys.executable, "-m", "layers.staging", "--source", f"dump:{tmp_path}/none.sql"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
