"""Every kind of backup a team may already have, parsed from `--source` and restored into a fresh
staging sqld at a recovery point, the source only ever read:

    bottomless:s3://BUCKET/DATABASE_ID   sqld's own WAL stream (layers/bottomless_source.py)
    dumps:s3://BUCKET/PREFIX | dumps:DIR  a set of .sql / .sql.gz dumps; one picked by --point
    dump:FILE                             one .sql / .sql.gz dump
    sqlite:FILE                           one SQLite database file (a copy of it is served)
    catalog:s3://BUCKET/PREFIX | catalog:DIR  this runner's layer-1 catalog
"""

from __future__ import annotations

import gzip
import itertools
import random
import shutil
import sqlite3
import tempfile
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import requests

from fixtures.hrana import HranaError
from fixtures.sqld import SqldServer
from layers.backup import CATALOG, BackupCatalog, NoUsableBackup, replay_sql
from layers.bottomless_source import restore_bottomless
from layers.recovery import Gate, Layer1Source, RestoreIncomplete, restore_first
from layers.recovery_points import RecoveryPoint, choose
from layers.source_access import ReadOnlyStore, Restored, RestoreFailed, SourceError, source_client, split_s3
from layers.staging_server import new_staging, start_staging
from layers.store import STORE_ERRORS, LocalStore, ObjectInfo, ObjectStore, S3Store

KINDS = ("bottomless", "dumps", "dump", "sqlite", "catalog")
USAGE = ("use bottomless:s3://BUCKET/DATABASE_ID, dumps:s3://BUCKET/PREFIX, dumps:DIR, dump:FILE, sqlite:FILE, "
         "catalog:s3://BUCKET[/PREFIX] or catalog:DIR")  # fmt: skip
DUMP_SUFFIXES = (".sql", ".sql.gz")


@dataclass(frozen=True)
class BackupSource:
    kind: str
    location: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


@dataclass(frozen=True)
class RestoreOptions:
    backend: str  # "process" | "container"
    endpoint: str | None  # S3 endpoint of s3:// sources
    namespace: str  # bottomless namespace
    workdir: Path  # the run's own scratch folder


def parse_source(text: str) -> BackupSource:
    kind, sep, location = text.partition(":")
    if not (sep and kind in KINDS and location):
        raise SourceError(f"--source {text!r}: {USAGE}")
    if kind == "bottomless" and not location.startswith("s3://"):
        raise SourceError(f"--source {text!r}: a bottomless source is a bucket: bottomless:s3://BUCKET/DATABASE_ID")
    return BackupSource(kind, location)


def dump_problem(path: Path) -> str | None:
    """Why a dump file is not a whole SQL dump (`.dump` of sqlite3 or sqld: BEGIN ... COMMIT), or None."""
    head, tail = "", ""
    try:
        with _open_dump(path) as text:
            for block in iter(lambda: text.read(1 << 20), ""):
                head = head or block[:512]
                tail = (tail + block)[-64:]
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        return f"{path.name} is not a readable UTF-8 SQL dump ({type(exc).__name__}: {str(exc)[:120]})"
    if "BEGIN TRANSACTION;" not in head or not tail.rstrip().endswith("COMMIT;"):
        return f"{path.name} is not a whole SQL dump: it must open a transaction and end with COMMIT; (cut short?)"
    return None


def _open_dump(path: Path) -> TextIO:
    """The dump's text, gunzipped when it is gzip'd (by content, whatever its name)."""
    with path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def replay_dump_file(path: Path, url: str) -> None:
    with _open_dump(path) as text:
        replay_sql(text, url)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _local_file(location: str, what: str) -> Path:
    path = Path(location)
    if not path.is_file():
        raise SourceError(f"{what} {path} does not exist (or is not a file)")
    return path


def _replay_checked(path: Path, server: SqldServer) -> tuple[str, ...]:
    """Replay a whole dump; a dump cut short is not replayed and is the problem returned."""
    problem = dump_problem(path)
    if problem is not None:
        return (problem,)
    try:
        replay_dump_file(path, server.http_url)
    except HranaError as exc:  # the dump's transaction is rolled back when the stream closes
        return (f"{path.name}: the staging sqld refused the replay ({str(exc)[:300]})",)
    except requests.RequestException as exc:
        raise RestoreFailed(
            f"replaying {path.name}: the staging sqld stopped answering ({type(exc).__name__})"
        ) from None
    return ()


def _source_store(location: str, endpoint: str | None) -> ObjectStore:
    if location.startswith("s3://"):
        bucket, prefix = split_s3(location)
        return ReadOnlyStore(S3Store(source_client(endpoint), bucket, prefix))
    path = Path(location)
    if not path.is_dir():
        raise SourceError(f"folder {path} does not exist")
    return ReadOnlyStore(LocalStore(path))


def _listed(store: ObjectStore, prefix: str = "") -> list[ObjectInfo]:
    try:
        return store.list(prefix)
    except STORE_ERRORS as exc:
        raise SourceError(
            f"cannot list {store.url} ({type(exc).__name__}: {str(exc)[:200]}): check --s3-endpoint and the "
            "DRILL_SOURCE_ACCESS_KEY_ID / DRILL_SOURCE_SECRET_ACCESS_KEY credentials"
        ) from None


def restore_dump_set(location: str, point: RecoveryPoint, opts: RestoreOptions, server: SqldServer,
                     rng: random.Random) -> Restored:  # fmt: skip
    """`dumps:`: the dump `point` picks (by modification time) among the set's .sql / .sql.gz files."""
    store = _source_store(location, opts.endpoint)
    dumps = [o for o in _listed(store) if o.key.endswith(DUMP_SUFFIXES) and "/" not in o.key]
    if not dumps:
        raise SourceError(f"dumps:{location} holds no .sql or .sql.gz file")
    chosen = choose(dumps, lambda o: o.modified, point, rng)
    started = time.monotonic()
    spool = opts.workdir / Path(chosen.key).name
    try:
        with spool.open("wb") as out:
            store.get(chosen.key, out)
    except STORE_ERRORS as exc:
        raise SourceError(f"cannot read {store.url}{chosen.key} ({type(exc).__name__}: {str(exc)[:200]})") from None
    problems = _replay_checked(spool, server)
    details = {"chosen": chosen.key, "dumps_in_set": len(dumps), "newest": max(dumps, key=lambda o: o.modified).key}
    return Restored(f"dumps:{location}", chosen.size, time.monotonic() - started, chosen.modified, details, problems)


class _CatalogView(ReadOnlyStore):
    """A catalog in which only one entry is visible: restore_latest then restores that one."""

    def __init__(self, inner: ObjectStore, entry_key: str) -> None:
        super().__init__(inner)
        self.entry_key = entry_key

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return [o for o in self.inner.list(prefix) if not o.key.startswith(CATALOG) or o.key == self.entry_key]


def restore_catalog(location: str, point: RecoveryPoint, opts: RestoreOptions, stack: ExitStack,
                    rng: random.Random) -> tuple[SqldServer, Restored]:  # fmt: skip
    """`catalog:`: a layer-1 catalog (page snapshots or dumps) restored through the runner's own recovery
    (layers.recovery.restore_first behind the gate) into a new staging sqld."""
    store = _source_store(location, opts.endpoint)
    started = time.monotonic()
    _listed(store, CATALOG)  # an unreachable catalog is one clear error, not a failed restore
    if point.kind != "latest":
        entries = BackupCatalog(store).entries()
        chosen = choose(entries, lambda e: e.created, point, rng)
        store = _CatalogView(store, f"{CATALOG}{chosen.id}.json")
    names = itertools.count(1)

    def provision() -> SqldServer:
        return new_staging(opts.backend, opts.workdir, stack, name=f"staging-{next(names)}")

    try:
        won = restore_first([Layer1Source(BackupCatalog(store))], Gate(), provision, opts.workdir / "recovery")
    except (NoUsableBackup, RestoreIncomplete) as exc:
        raise RestoreFailed(str(exc)) from None
    problems = tuple(f"backup {r.backup_id} refused: {r.reason}" for r in won.refused)
    return won.server, Restored(f"catalog:{location}", won.entry.bytes, time.monotonic() - started,
                                won.entry.created, {"backup_id": won.entry.id, "format": won.entry.format}, problems)  # fmt: skip


def _sqlite_copy(path: Path, workdir: Path) -> Path:
    """A served copy of a SQLite file: the file (and its -wal) copied first, so the source is only read."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-source-", dir=workdir))
    shutil.copyfile(path, folder / "source.db")
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, folder / "source.db-wal")
    target = folder / "restored.db"
    try:
        with sqlite3.connect(folder / "source.db") as src, sqlite3.connect(target) as dst:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"sqlite:{path} is not a SQLite database ({exc}): use dump:FILE for a SQL dump") from None
    return target


def restore_source(source: BackupSource, point: RecoveryPoint, opts: RestoreOptions, stack: ExitStack,
                   rng: random.Random) -> tuple[SqldServer, Restored]:  # fmt: skip
    """Restore `source` at `point` into a new staging sqld (stopped when `stack` closes)."""
    if point.kind != "latest" and source.kind in ("dump", "sqlite"):
        raise SourceError(
            f"--point {point.describe()}: {source.kind}:FILE holds one recovery point; use --point latest"
        )
    if opts.namespace != "default" and source.kind != "bottomless":
        raise SourceError("--namespace applies to bottomless: sources only")
    if source.kind == "bottomless":
        return restore_bottomless(source.location, point, namespace=opts.namespace, endpoint=opts.endpoint,
                                  backend=opts.backend, workdir=opts.workdir, stack=stack, rng=rng)  # fmt: skip
    if source.kind == "sqlite":
        path = _local_file(source.location, "SQLite file")
        started = time.monotonic()
        server = start_staging(opts.backend, opts.workdir, stack, prefill=_sqlite_copy(path, opts.workdir))
        return server, Restored(str(source), path.stat().st_size, time.monotonic() - started, _mtime(path))
    if source.kind == "dump":
        path = _local_file(source.location, "dump file")
        server = start_staging(opts.backend, opts.workdir, stack)
        started = time.monotonic()
        problems = _replay_checked(path, server)
        return server, Restored(
            str(source), path.stat().st_size, time.monotonic() - started, _mtime(path), {}, problems
        )
    if source.kind == "catalog":
        return restore_catalog(source.location, point, opts, stack, rng)
    server = start_staging(opts.backend, opts.workdir, stack)
    return server, restore_dump_set(source.location, point, opts, server, rng)
