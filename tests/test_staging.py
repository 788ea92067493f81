"""Verifying backups the user already has (dump files, dump folders, SQLite files, layer-1 catalogs):
restored into a staging sqld, checked against expectations, the source only read. Bottomless sources:
tests/test_restore_bottomless.py."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fixtures.hrana import HranaSession
from fixtures.s3 import Region
from layers.restore_sources import parse_source
from layers.source_access import ReadOnlyStore, SourceError
from layers.staging import main
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
    assert result["ok"] and result["row_counts"]["customers"] == 50
    assert {c["name"] for c in result["checks"]} >= {"integrity_check", "foreign_key_check", "benchmark"}
    assert "app checks: the built-in schema's" in result["notes"]


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
    catalog = BackupCatalog(LocalStore(tmp_path / "catalog"))
    with source:
        first = take_backup(source.http_url, catalog, sqld_version="test")
        with HranaSession(source.http_url) as s:
            s.execute("INSERT INTO customers (id, email, name, created_at) VALUES (9999, 'x@y', 'x', '2026-01-01')")
        take_backup(source.http_url, catalog, sqld_version="test")
    before = sorted(p.name for p in (tmp_path / "catalog").rglob("*"))
    assert main(["--source", f"catalog:{tmp_path / 'catalog'}", "--out", str(tmp_path / "latest.json")]) == 0
    assert json.loads((tmp_path / "latest.json").read_text())["row_counts"]["customers"] == 51
    point = first.created_at
    assert (
        main(["--source", f"catalog:{tmp_path / 'catalog'}", "--point", point, "--out", str(tmp_path / "at.json")]) == 0
    )
    at = json.loads((tmp_path / "at.json").read_text())
    assert at["details"]["backup_id"] == first.id and at["row_counts"]["customers"] == 50
    assert sorted(p.name for p in (tmp_path / "catalog").rglob("*")) == before


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    store = ReadOnlyStore(LocalStore(tmp_path))
    with pytest.raises(PermissionError, match="read-only"):
        store.put("x", io.BytesIO(b"1"))
    with pytest.raises(PermissionError, match="read-only"):
        store.delete("x")


@pytest.mark.parametrize("text", ["s3://bucket", "dump:", "zip:file", "bottomless:/dir"])
def test_bad_source_is_named(text: str) -> None:
    with pytest.raises(SourceError, match="s3://BUCKET/DATABASE_ID"):
        parse_source(text)


def test_cli_reports_a_missing_dump_without_traceback(tmp_path: Path) -> None:
    import sys

    done = subprocess.run([sys.executable, "-m", "layers.staging", "--source", f"dump:{tmp_path}/none.sql"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def _foreign_db(path: Path, albums: int = 100) -> Path:
    """A schema that is not the built-in one (two tables, a foreign key), `albums` rows in one of them."""
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE artists (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "CREATE TABLE albums (id INTEGER PRIMARY KEY, artist_id INTEGER REFERENCES artists(id), title TEXT);"
        )
        db.executemany("INSERT INTO artists VALUES (?, ?)", [(i, f"artist {i}") for i in range(1, 21)])
        db.executemany("INSERT INTO albums VALUES (?, ?, ?)", [(i, i % 20 + 1, f"album {i}") for i in range(albums)])
    db.close()
    return path


def _gz_dump(db: Path, out: Path) -> Path:
    text = subprocess.run(["sqlite3", str(db), ".dump"], capture_output=True, text=True, check=True).stdout
    out.write_bytes(gzip.compress(text.encode()))
    return out


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_foreign_schema_verifies_then_a_row_drop_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = f"file:{tmp_path / 'history.jsonl'}"
    dump = _gz_dump(_foreign_db(tmp_path / "team.db"), tmp_path / "backup.sql.gz")
    code, first = _run_json(capsys, "--source", f"dump:{dump}", "--history", history)
    assert code == 0 and first["ok"] and first["row_counts"] == {"albums": 100, "artists": 20}
    assert {"source", "point_requested", "point_achieved", "restore_seconds"} <= first.keys()
    assert any("not the built-in schema" in n for n in first["notes"])
    assert all("baseline recorded" in c["detail"] for c in first["checks"] if c["name"] in ("row_counts", "benchmark"))
    (tmp_path / "team.db").unlink()
    _gz_dump(_foreign_db(tmp_path / "team.db", albums=90), dump)
    code, later = _run_json(capsys, "--source", f"dump:{dump}", "--history", history, "--max-row-drop", "5%")
    failed = {c["name"]: c["detail"] for c in later["checks"] if not c["ok"]}
    assert code == 1 and not later["ok"] and list(failed) == ["row_counts"]
    assert "albums: 90 rows, 10.0% fewer than 100" in failed["row_counts"] and "artists" not in failed["row_counts"]
    records = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["restore-test", "restore-test"] and [r["ok"] for r in records] == [
        True,
        False,
    ]


def test_a_counts_file_is_the_expectation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = _gz_dump(_foreign_db(tmp_path / "team.db"), tmp_path / "backup.sql.gz")
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps({"albums": 100, "artists": 20, "tracks": 5}))
    code, result = _run_json(capsys, "--source", f"dump:{dump}", "--expect-counts", str(counts))
    detail = next(c["detail"] for c in result["checks"] if c["name"] == "row_counts")
    assert code == 1 and "tracks: missing (expected 5 rows)" in detail and "counts file" in detail


def test_a_dump_cut_short_fails_the_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "cut.sql"
    text = subprocess.run(["sqlite3", str(_foreign_db(tmp_path / "t.db")), ".dump"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    dump.write_text(text[: len(text) // 2])
    code, result = _run_json(capsys, "--source", f"dump:{dump}")
    failed = {c["name"]: c["detail"] for c in result["checks"] if not c["ok"]}
    assert code == 1 and "cut short" in failed["restore"] and "no table" in failed["row_counts"]


def _dump_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three cron'd dumps, a day apart (modification times), 10/20/30 albums."""
    folder = tmp_path / "dumps"
    folder.mkdir()
    names = []
    for day, albums in enumerate((10, 20, 30), 1):
        db = _foreign_db(tmp_path / f"day{day}.db", albums=albums)
        name = f"team-2026-11-0{day}.sql" + (".gz" if day != 2 else "")
        out = folder / name
        if name.endswith(".gz"):
            _gz_dump(db, out)
        else:
            out.write_text(subprocess.run(["sqlite3", str(db), ".dump"], capture_output=True, text=True).stdout)
        stamp = datetime(2026, 11, day, 2, 0, tzinfo=UTC).timestamp()
        os.utime(out, (stamp, stamp))
        names.append(name)
    (folder / "README.txt").write_text("not a dump")
    return folder, names


def test_a_dump_folder_latest_random_and_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, names = _dump_folder(tmp_path)
    code, latest = _run_json(capsys, "--source", f"dumps:{folder}")
    assert code == 0 and latest["details"]["chosen"] == names[2] and latest["row_counts"]["albums"] == 30
    assert latest["point_achieved"] == "2026-11-03T02:00:00Z"
    picked = set()
    for seed in range(6):
        code, rnd = _run_json(capsys, "--source", f"dumps:{folder}", "--point", "random", "--seed", str(seed))
        chosen = rnd["details"]["chosen"]
        assert code == 0 and chosen in names and rnd["point_requested"] == "random"
        assert rnd["row_counts"]["albums"] == (names.index(chosen) + 1) * 10
        picked.add(chosen)
    assert len(picked) > 1, "random must not always pick the same dump"
    code, at = _run_json(capsys, "--source", f"dumps:{folder}", "--point", "2026-11-02T12:00:00Z")
    assert code == 0 and at["details"]["chosen"] == names[1] and at["point_achieved"] == "2026-11-02T02:00:00Z"


def test_a_dump_folder_in_s3_is_read_only(tmp_path: Path, moto_region: Region, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder, names = _dump_folder(tmp_path)
    bucket = moto_region.new_bucket("test", "dumps")
    client = moto_region.client()
    for name in names:
        client.upload_file(str(folder / name), bucket, f"cron/{name}")
    before = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    monkeypatch.setenv("DRILL_SOURCE_ACCESS_KEY_ID", moto_region.endpoint.access_key)
    monkeypatch.setenv("DRILL_SOURCE_SECRET_ACCESS_KEY", "team-secret-4f1c")  # moto takes any secret
    history = tmp_path / "history.jsonl"
    code = main(["--source", f"dumps:s3://{bucket}/cron", "--s3-endpoint", moto_region.endpoint.url, "--json",
                 "--history", f"file:{history}"])  # fmt: skip
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert code == 0 and result["details"]["chosen"] in names and result["row_counts"]["artists"] == 20
    assert "team-secret-4f1c" not in out.out + out.err + history.read_text()
    assert {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]} == before


def test_a_sqlite_file_is_served_from_a_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _foreign_db(tmp_path / "team.db")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    code, result = _run_json(capsys, "--source", f"sqlite:{db}")
    assert code == 0 and result["row_counts"] == {"albums": 100, "artists": 20}
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest and sorted(p.name for p in tmp_path.iterdir()) == [
        "team.db"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--point", "yesterday"], "ISO-8601"),
        (["--point", "2999-01-01T00:00:00Z"], "in the future"),
        (["--max-row-drop", "150%"], "percentage"),
        (["--checks", "/nonexistent.toml"], "does not exist"),
        (["--point", "random"], "one recovery point"),
    ],
)
def test_bad_arguments_exit_2_with_one_message(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = _gz_dump(_foreign_db(tmp_path / "team.db"), tmp_path / "backup.sql.gz")
    history = tmp_path / "history.jsonl"
    assert main(["--source", f"dump:{dump}", "--history", f"file:{history}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1 and not history.exists()


def test_a_time_before_every_dump_names_the_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = _dump_folder(tmp_path)
    assert main(["--source", f"dumps:{folder}", "--point", "2026-10-01T00:00:00Z"]) == 2
    assert "the oldest is 2026-11-01T02:00:00Z" in capsys.readouterr().err


def test_the_readme_gives_one_command_per_source_kind() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Verify the backups you already have") :].split("\n## ", 1)[0]
    sources = [
        line.split("--source ", 1)[1].split()[0] for line in section.splitlines() if "layers.staging --source" in line
    ]
    assert {parse_source(s).kind for s in sources} >= {"bottomless", "dumps", "dump"}


def test_a_catalog_without_a_usable_backup_is_a_failed_restore_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from layers.backup import BACKUPS, BackupCatalog, CatalogEntry

    store = LocalStore(tmp_path / "catalog")
    store.put_bytes(f"{BACKUPS}b1.sql.gz", gzip.compress(b"BEGIN TRANSACTION;\nCOMMIT;\n"))
    BackupCatalog(store).add(CatalogEntry("b1", f"{BACKUPS}b1.sql.gz", "2026-11-01T02:00:00+00:00", "0" * 64, 10,
                                          "http://127.0.0.1:1", "test"))  # fmt: skip
    history = tmp_path / "history.jsonl"
    code, result = _run_json(capsys, "--source", f"catalog:{tmp_path / 'catalog'}", "--history", f"file:{history}")
    assert code == 1 and [c["name"] for c in result["checks"]] == ["restore"]
    assert "checksum mismatch" in result["checks"][0]["detail"]
    assert json.loads(history.read_text())["ok"] is False


def test_an_unreachable_catalog_or_dump_set_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from fixtures.sqld import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    for source in ("catalog:s3://team/layer1", "dumps:s3://team/cron"):
        assert main(["--source", source, "--s3-endpoint", endpoint]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "cannot list s3://team/" in err and "Traceback" not in err
