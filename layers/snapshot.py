"""Layer 1 page snapshots: a backup agent that reaches the running server from outside, over its plain
HTTP port, as an embedded replica (`libsql_experimental`), with no access to its files. Each cycle opens
the replica, syncs it (only new frames travel) and closes it, in a process of its own
(layers/replica_sync.py), which checkpoints the replica's WAL into its
file: the file is then a consistent database at a transaction boundary that nothing writes until the next
cycle. It is compressed with zstd while hashed and uploaded with its catalog entry (format `page`,
SHA-256, bytes, the replication frame number it holds, its point in time). Restored by file
(layers.recovery).

The replica is never open in libsql and in Python's sqlite3 at once: they are two copies of SQLite, whose POSIX locks do not see each other (measured: Python's sqlite3 closing the replica deleted
the WAL libsql was writing, and the next sync failed with "disk I/O error")."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import zstandard

from fixtures.progress import counted, progress
from layers.backup import BackupCatalog, CatalogEntry, backup_id, backup_key, hashing, upload

ZSTD_LEVEL = 1  # measured on 108 MB: level 1 0.14-0.20 s, level 3 0.31-0.71 s for about the same size
ZSTD_THREADS = 2
BLOCK = 1 << 20
SYNC_PATIENCE = 120.0  # seconds a sync may keep meeting "Unavailable" (sqld still compacting its log)
SYNC_TIMEOUT = 300.0  # seconds one sync may take once sqld answers (1 GB first sync: 33-36 s measured)
REPLICA_SYNC = Path(__file__).with_name("replica_sync.py")


def copy_database(source: Path, target: Path) -> None:
    """A consistent single-file copy of the SQLite database at `source` (its -wal included) at `target`,
    with nothing left beside it (the copy's own WAL is checkpointed into it when it closes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    wal = target.with_name(target.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise RuntimeError(f"the copy {target} left {wal.stat().st_size} bytes in {wal.name}")
    wal.unlink(missing_ok=True)


def compress(source: Path, sink: IO[bytes]) -> None:
    size = source.stat().st_size
    with source.open("rb") as src, progress("backup: layer-1 page snapshot", size) as step:
        zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS).copy_stream(
            counted(src, step), sink, size=size, read_size=BLOCK, write_size=BLOCK
        )


def decompress(source: IO[bytes], target: Path, *, size_hint: int = 0) -> None:
    """Stream a zstd object into a file (fsynced: it is about to become a server's database); `size_hint`
    (an estimate of the file's bytes) sizes the progress line of a large one."""
    with target.open("wb") as out, progress(f"restore: {target.name}", size_hint) as step:
        zstandard.ZstdDecompressor().copy_stream(source, counted(out, step), read_size=BLOCK, write_size=BLOCK)
        out.flush()
        os.fsync(out.fileno())


def replication_index(replica: Path) -> int:
    """The frame number the replica has applied: bytes 16-24 (little endian) of its `-client_wal_index`
    (16 bytes of log id first; measured: it counts up by one per committed frame)."""
    meta = replica.with_name(replica.name + "-client_wal_index").read_bytes()
    return int.from_bytes(meta[16:24], "little")


class PageSnapshots:
    """The page-format backup job for BackupScheduler: one call, one snapshot."""

    def __init__(self, server_url: str, catalog: BackupCatalog, workdir: Path, *, sqld_version: str) -> None:
        self.server_url = server_url
        self.catalog = catalog
        self.workdir = workdir
        self.sqld_version = sqld_version
        self.replica = workdir / "replica.db"
        workdir.mkdir(parents=True, exist_ok=True)

    def sync(self) -> int:
        """Bring the replica up to the primary and close it (its WAL checkpointed into the file), in a
        process of its own (layers/replica_sync.py: libsql holds the GIL while it syncs); the frame number
        the replica then holds."""
        done = subprocess.run(
            [sys.executable, str(REPLICA_SYNC), str(self.replica), self.server_url, str(SYNC_PATIENCE)],
            capture_output=True, text=True, timeout=SYNC_PATIENCE + SYNC_TIMEOUT, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            error = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            raise RuntimeError(f"page snapshot: the replica sync from {self.server_url} failed: {error[0]}")
        return replication_index(self.replica)

    def __call__(self) -> CatalogEntry:
        started = datetime.now(UTC)  # the snapshot holds at least every write acknowledged before this
        index = self.sync()
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp, tempfile.TemporaryFile(dir=self.workdir) as spool:
            snapshot = self.replica
            if self.replica.with_name(self.replica.name + "-wal").exists():  # not checkpointed: copy it whole
                snapshot = Path(tmp) / "snapshot.db"
                copy_database(self.replica, snapshot)
            digest = hashlib.sha256()
            compress(snapshot, hashing(spool, digest))
            new_id = backup_id(started)
            entry = CatalogEntry(new_id, backup_key(new_id, "page"), started.isoformat(), digest.hexdigest(),
                                 spool.tell(), self.server_url, self.sqld_version, "page", index)  # fmt: skip
            return upload(self.catalog, spool, entry)
