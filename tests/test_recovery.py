"""Page snapshots (layers.snapshot) and the one recovery pipeline (layers.recovery) against a real sqld
(process backend) holding the seed and a moto region: snapshots catalogued with format, checksum and
replication index; restored by file behind the gate, which refuses a corrupt file before any server starts
on it; the same through layer 4's sealed copies."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.damage import damage_object
from fixtures.hrana import HranaSession
from fixtures.seed import TABLES, SeedInfo
from fixtures.sqld import SqldServer
from layers.backup import CATALOG, BackupCatalog, CatalogEntry, NoUsableBackup
from layers.offsite import OffsiteKey, OffsiteSource, copy_backup, keyring
from layers.recovery import Gate, Layer1Source, restore_first
from layers.snapshot import PageSnapshots, compress, decompress
from layers.store import LocalStore
from tests.servers import SqldFactory
from tests.test_backup import table_digests


class Provisions:
    """A provision callback that counts the servers it made (none may start on a refused file)."""

    def __init__(self, make: SqldFactory) -> None:
        self.make = make
        self.made: list[SqldServer] = []

    def __call__(self) -> SqldServer:
        server = self.make("restored")
        self.made.append(server)
        return server


def _gate(seed: SeedInfo) -> Gate:
    return Gate(TABLES, seed.tables, ())  # no writes since the seed: the file must hold the seed exactly


def test_page_snapshot_is_catalogued_with_format_checksum_and_index(
    source: SqldServer, catalog: BackupCatalog, tmp_path: Path, small_seed: SeedInfo
) -> None:
    agent = PageSnapshots(source.http_url, catalog, tmp_path / "agent", sqld_version=source.version())
    first = agent()
    assert first.format == "page" and first.key.endswith(".db.zst") and first.replication_index > 0
    data = catalog.store.get_bytes(first.key)
    assert hashlib.sha256(data).hexdigest() == first.sha256 and len(data) == first.bytes
    with HranaSession(source.http_url) as s:
        s.execute("CREATE TABLE IF NOT EXISTS snapshot_probe (x)")
        s.execute("INSERT INTO snapshot_probe VALUES (1)")
    second = agent()
    assert second.replication_index > first.replication_index, "a later snapshot holds later frames"
    assert [e.id for e in catalog.entries()] == [second.id, first.id]
    assert (
        CatalogEntry.from_json(catalog.store.get_bytes(f"{CATALOG}{second.id}.json"), f"{CATALOG}{second.id}.json")
        == second
    )
    with (tmp_path / "first.zst").open("wb") as out:
        catalog.store.get(first.key, out)
    with (tmp_path / "first.zst").open("rb") as fh:
        decompress(fh, tmp_path / "first.db")
    assert _gate(small_seed).check_file(tmp_path / "first.db").ok


def test_page_restore_serves_the_file_it_verified(
    source: SqldServer, catalog: BackupCatalog, process_sqld: SqldFactory, tmp_path: Path, small_seed: SeedInfo
) -> None:
    agent = PageSnapshots(source.http_url, catalog, tmp_path / "agent", sqld_version=source.version())
    entry = agent()
    provisions = Provisions(process_sqld)
    won = restore_first([Layer1Source(catalog)], _gate(small_seed), provisions, tmp_path / "restore")
    assert won.entry == entry and won.refused == () and len(provisions.made) == 1
    assert won.verification is not None and won.verification.ok, won.verification
    assert {c.name for c in won.verification.checks} >= {"integrity_check", "foreign_key_check", "row_counts"}
    assert table_digests(won.server.http_url) == small_seed.tables
    assert not (tmp_path / "restore" / f"{entry.id}.db").exists(), "the verified file moved into the server"


def _replace_object(catalog: BackupCatalog, entry: CatalogEntry, database: Path, work: Path) -> CatalogEntry:
    """Store `database` as the snapshot's object with a catalog entry whose checksum holds for it."""
    with (work / "new.zst").open("wb") as out:
        compress(database, out)
    data = (work / "new.zst").read_bytes()
    catalog.store.put_bytes(entry.key, data)
    fixed = replace(entry, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    catalog.add(fixed)
    return fixed


def test_a_corrupt_file_is_refused_before_any_server_starts_on_it(
    source: SqldServer, catalog: BackupCatalog, process_sqld: SqldFactory, tmp_path: Path, small_seed: SeedInfo
) -> None:
    agent = PageSnapshots(source.http_url, catalog, tmp_path / "agent", sqld_version=source.version())
    older, newer = agent(), agent()
    with (tmp_path / "n.zst").open("wb") as out:
        catalog.store.get(newer.key, out)
    with (tmp_path / "n.zst").open("rb") as fh:
        decompress(fh, tmp_path / "n.db")
    damage_object(tmp_path / "n.db", "order_items")
    _replace_object(catalog, newer, tmp_path / "n.db", tmp_path)  # its checksum holds: only the gate can tell
    provisions = Provisions(process_sqld)
    won = restore_first([Layer1Source(catalog)], _gate(small_seed), provisions, tmp_path / "restore")
    assert won.entry.id == older.id
    (refused,) = won.refused
    assert refused.backup_id == newer.id and refused.reason.startswith("refused before serving: integrity_check")
    assert len(provisions.made) == 1, "a server was provisioned for the refused file"
    catalog.remove(older)
    only_corrupt = Provisions(process_sqld)
    with pytest.raises(NoUsableBackup, match="refused before serving"):
        restore_first([Layer1Source(catalog)], _gate(small_seed), only_corrupt, tmp_path / "again")
    assert only_corrupt.made == [], "no server may start on a file that fails the gate"


def test_a_page_snapshot_whose_checksum_fails_is_refused(
    source: SqldServer, catalog: BackupCatalog, process_sqld: SqldFactory, tmp_path: Path, small_seed: SeedInfo
) -> None:
    agent = PageSnapshots(source.http_url, catalog, tmp_path / "agent", sqld_version=source.version())
    entry = agent()
    data = bytearray(catalog.store.get_bytes(entry.key))
    data[len(data) // 2] ^= 0xFF
    catalog.store.put_bytes(entry.key, bytes(data))
    provisions = Provisions(process_sqld)
    with pytest.raises(NoUsableBackup, match=f"{entry.id}: checksum mismatch") as failed:
        restore_first([Layer1Source(catalog)], _gate(small_seed), provisions, tmp_path / "restore")
    assert provisions.made == [] and [r.backup_id for r in failed.value.refused] == [entry.id]


def test_layer4_restores_a_sealed_page_snapshot_by_file(
    source: SqldServer, catalog: BackupCatalog, process_sqld: SqldFactory, tmp_path: Path, small_seed: SeedInfo
) -> None:
    entry = PageSnapshots(source.http_url, catalog, tmp_path / "agent", sqld_version=source.version())()
    offsite, key = LocalStore(tmp_path / "offsite"), OffsiteKey.generate()
    copy_backup(catalog, entry, offsite, key)
    won = restore_first([OffsiteSource(offsite, keyring(key))], _gate(small_seed), Provisions(process_sqld),
                        tmp_path / "restore")  # fmt: skip
    assert won.entry == entry and won.offer.layer == 4 and won.fetched.key_id == key.key_id
    assert won.verification is not None and won.verification.ok
    assert table_digests(won.server.http_url) == small_seed.tables


def test_catalog_entries_without_a_format_are_dumps_and_unknown_formats_are_refused() -> None:
    old = {"id": "a1", "key": "layer1/backups/a1.sql.gz", "created_at": "2026-01-01T00:00:00+00:00",
           "sha256": "0" * 64, "bytes": 1, "source": "s", "sqld_version": "v"}  # fmt: skip
    assert CatalogEntry.parse(old).format == "dump"
    with pytest.raises(ValueError, match="format 'tar'"):
        CatalogEntry.parse({**old, "format": "tar"})
    with pytest.raises(ValueError, match="points elsewhere"):
        CatalogEntry.parse({**old, "format": "page"})  # a page snapshot's object is .db.zst


def test_a_replica_sync_that_fails_says_where_from_and_why(tmp_path: Path) -> None:
    """The sync runs in its own process (layers/replica_sync.py); its failure comes back as one error
    naming the server it could not sync from and the client's own reason."""
    agent = PageSnapshots(
        "http://127.0.0.1:9", BackupCatalog(LocalStore(tmp_path / "s")), tmp_path / "a", sqld_version="x"
    )
    with pytest.raises(RuntimeError, match=r"replica sync from http://127\.0\.0\.1:9 failed: .*Connection refused"):
        agent.sync()
