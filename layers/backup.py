"""Layer 1, automated backups: full backups of the running server (sqld's consistent `/dump`, gzip),
stored in the region's bucket with a catalog entry and a SHA-256, retention by count and age, a
notification on success and on failure. Restore = the newest backup whose checksum holds, replayed into
a fresh server in one Hrana stream."""

from __future__ import annotations

import builtins
import gzip
import hashlib
import json
import re
import secrets
import sqlite3
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO

import requests

from fixtures.background import Background
from fixtures.hrana import HranaError, HranaSession
from layers.notify import Event, Notifier
from layers.policy import Policy
from layers.store import STORE_ERRORS, ObjectMissing, ObjectStore

CATALOG = "layer1/catalog/"
BACKUPS = "layer1/backups/"
REPLAY_CHUNK = 1 << 20  # bytes of dump text per Hrana request


PRODUCTION_POLICY = Policy(schedule="daily 02:00", retention_days=30.0)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    key: str
    created_at: str  # ISO-8601 UTC: when the dump started (the backup's point in time)
    sha256: str
    bytes: int
    source: str
    sqld_version: str

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @classmethod
    def from_json(cls, data: builtins.bytes, catalog_key: str) -> CatalogEntry:
        """Parse and check one stored entry; ValueError says what is wrong with it."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"not a JSON object but {type(raw).__name__}")
        fields = {f: int if f == "bytes" else str for f in cls.__dataclass_fields__}
        if raw.keys() != fields.keys():
            missing, unknown = sorted(fields.keys() - raw.keys()), sorted(map(str, raw.keys() - fields.keys()))
            raise ValueError(f"fields missing {missing} / unknown {unknown}")
        for name, kind in fields.items():
            if type(raw[name]) is not kind:
                raise ValueError(f"field {name!r} is {type(raw[name]).__name__}, not {kind.__name__}")
        entry = cls(**raw)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", entry.id) or catalog_key != f"{CATALOG}{entry.id}.json":
            raise ValueError(f"id {entry.id[:80]!r} does not match its place in the catalog ({catalog_key[:120]!r})")
        if entry.key != f"{BACKUPS}{entry.id}.sql.gz":
            raise ValueError(f"points elsewhere: key {entry.key[:120]!r}, expected {BACKUPS}{entry.id}.sql.gz")
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or entry.bytes < 0:
            raise ValueError("sha256 is not 64 hex digits or bytes is negative")
        try:
            aware = entry.created.tzinfo is not None
        except ValueError:
            aware = False
        if not aware:
            raise ValueError(f"created_at {entry.created_at[:40]!r} is not an ISO-8601 time with a zone")
        return entry


class BackupCatalog:
    """Catalog entries live beside the backups, one JSON object each; an entry is written only after its
    backup object is complete, so a partial upload is never catalogued."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def entries(self) -> list[CatalogEntry]:
        """Newest first."""
        return self.scan()[0]

    def scan(self) -> tuple[list[CatalogEntry], list[tuple[str, str]]]:
        """(entries newest first, [(catalog key, why it was refused)]): a malformed entry is skipped
        with its reason, never used and never deleted."""
        out, refused = [], []
        for info in self.store.list(CATALOG):
            try:
                out.append(CatalogEntry.from_json(self.store.get_bytes(info.key), info.key))
            except ObjectMissing:
                continue  # removed meanwhile
            except ValueError as exc:
                refused.append((info.key, f"catalog entry refused: {exc}"))
        return sorted(out, key=lambda e: (e.created, e.id), reverse=True), refused

    def add(self, entry: CatalogEntry) -> None:
        self.store.put_bytes(f"{CATALOG}{entry.id}.json", json.dumps(asdict(entry)).encode())

    def remove(self, entry: CatalogEntry) -> None:
        self.store.delete(f"{CATALOG}{entry.id}.json")
        self.store.delete(entry.key)


def _backup_id(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


def take_backup(server_url: str, catalog: BackupCatalog, *, sqld_version: str, timeout: float = 600) -> CatalogEntry:
    """Stream the server's dump through gzip into a temp file (bounded memory), upload, then catalog."""
    started = datetime.now(UTC)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        with requests.get(f"{server_url}/dump", stream=True, timeout=timeout) as response:
            response.raise_for_status()
            with gzip.GzipFile(fileobj=_Hashing(spool, digest), mode="wb", compresslevel=1, mtime=0) as gz:
                for block in response.iter_content(1 << 20):
                    gz.write(block)
        size = spool.tell()
        spool.seek(0)
        backup_id = _backup_id(started)
        key = f"{BACKUPS}{backup_id}.sql.gz"
        catalog.store.put(key, spool, {"sha256": digest.hexdigest()})
    entry = CatalogEntry(backup_id, key, started.isoformat(), digest.hexdigest(), size, server_url, sqld_version)
    catalog.add(entry)
    return entry


class _Hashing:
    """A write-only file that hashes what passes through it."""

    def __init__(self, sink: IO[bytes], digest: hashlib._Hash) -> None:
        self.sink, self.digest = sink, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def apply_retention(catalog: BackupCatalog, policy: Policy, now: datetime) -> list[CatalogEntry]:
    """Drop backups older than the retention age or beyond the retention count (newest kept)."""
    doomed = policy.expired(catalog.entries(), lambda e: e.created, now)
    for entry in doomed:
        catalog.remove(entry)
    return doomed


class BackupScheduler(Background):
    """Runs take_backup on the policy's schedule in a thread, applies retention, notifies each outcome."""

    thread_name = "layer1-backups"
    join_timeout = 60.0

    def __init__(
        self, server_url: str, catalog: BackupCatalog, policy: Policy, notify: Notifier, *, sqld_version: str
    ) -> None:
        super().__init__()
        self.server_url = server_url
        self.catalog = catalog
        self.policy = policy
        self.notify = notify
        self.sqld_version = sqld_version
        self.succeeded = 0
        self.failed = 0
        self.last_seconds = 0.0  # how long the newest backup took
        self._done = threading.Condition()

    def run_once(self) -> CatalogEntry | None:
        started = time.monotonic()
        try:
            entry = take_backup(self.server_url, self.catalog, sqld_version=self.sqld_version)
        except Exception as exc:
            self.failed += 1
            self.notify(Event(1, "failure", time.time(), {"source": self.server_url}, f"{type(exc).__name__}: {exc}"))
            return None
        self.succeeded += 1
        self.last_seconds = time.monotonic() - started
        self.notify(Event(1, "success", time.time(), asdict(entry)))
        removed = apply_retention(self.catalog, self.policy, datetime.now(UTC))
        if removed:
            self.notify(Event(1, "retention", time.time(), {"removed": [e.id for e in removed]}))
        with self._done:
            self._done.notify_all()
        return entry

    def wait_for(self, successes: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.succeeded >= successes, timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            now = datetime.now(UTC)
            self._stop.wait((self.policy.next_run(now) - now).total_seconds())


@dataclass(frozen=True)
class RestoreOutcome:
    entry: CatalogEntry
    skipped: tuple[tuple[str, str], ...]  # (backup id, why it was refused)
    bytes: int


class NoUsableBackup(RuntimeError):
    pass


class RestoreIncomplete(RuntimeError):
    """The target stopped answering mid-replay: the restore did not complete (the catalog is untouched)."""


DUMP_HEAD = "BEGIN TRANSACTION;"
DUMP_TAIL = "COMMIT;"


def dump_problem(gz_file: IO[bytes]) -> str | None:
    """Why this object is not a whole gzip'd SQL dump of sqld (one transaction), or None. A dump that
    passes replays atomically: a failure mid-way leaves the target as it was."""
    head, tail = "", ""
    try:
        with gzip.open(gz_file, "rt", encoding="utf-8", newline="") as text:
            for block in iter(lambda: text.read(1 << 20), ""):
                head = head or block[:256]
                tail = (tail + block)[-64:]
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        return f"not a gzip'd UTF-8 SQL dump ({type(exc).__name__}: {str(exc)[:120]})"
    finally:
        gz_file.seek(0)
    if DUMP_HEAD not in head or not tail.rstrip().endswith(DUMP_TAIL):
        return f"not a SQL dump of sqld: it must start with {DUMP_HEAD!r} (after PRAGMAs) and end with {DUMP_TAIL!r}"
    return None


def _statements(text_lines: Iterator[str]) -> Iterator[str]:
    """Group dump lines into chunks of whole statements, about REPLAY_CHUNK bytes each."""
    buf: list[str] = []
    size = 0
    for line in text_lines:
        buf.append(line)
        size += len(line)
        if size >= REPLAY_CHUNK and sqlite3.complete_statement("".join(buf)):
            yield "".join(buf)
            buf, size = [], 0
    if buf:
        yield "".join(buf)


def replay_sql(lines: Iterable[str], target_url: str, timeout: float = 120) -> None:
    """Replay SQL dump text into a server in one Hrana stream (the dump's own BEGIN/COMMIT hold)."""
    with HranaSession(target_url, timeout=timeout) as s:
        for chunk in _statements(iter(lines)):
            s.sequence(chunk)


def replay_dump(gz_file: IO[bytes], target_url: str, timeout: float = 120) -> None:
    """Replay a gzip'd SQL dump (a layer-1 backup object)."""
    with gzip.open(gz_file, "rt", encoding="utf-8", newline="") as text:
        replay_sql(text, target_url, timeout)


def download_verified(catalog: BackupCatalog, entry: CatalogEntry, spool: IO[bytes]) -> str | None:
    """Fetch a backup into spool; return why it is unusable, or None when its SHA-256 holds."""
    try:
        catalog.store.get(entry.key, spool)
    except ObjectMissing:
        return "object missing"
    except STORE_ERRORS as exc:
        return f"could not read {catalog.store.url}{entry.key} ({type(exc).__name__}: {str(exc)[:200]})"
    spool.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: spool.read(1 << 20), b""):
        digest.update(block)
    spool.seek(0)
    if digest.hexdigest() != entry.sha256:
        return f"checksum mismatch (catalog {entry.sha256[:12]}, object {digest.hexdigest()[:12]})"
    return None


def restore_latest(catalog: BackupCatalog, target_url: str) -> RestoreOutcome:
    """Replay the newest backup whose checksum holds into the (fresh, empty) server at target_url.
    Unreadable, tampered, malformed or non-dump backups are skipped with their reason (older ones are
    tried); a target that stops answering raises RestoreIncomplete."""
    try:
        entries, skipped = catalog.scan()
    except STORE_ERRORS as exc:
        raise NoUsableBackup(
            f"restore did not start: could not list the layer-1 catalog {catalog.store.url}{CATALOG} "
            f"({type(exc).__name__}: {str(exc)[:200]}); check the region's endpoint and credentials"
        ) from None
    for entry in entries:
        with tempfile.TemporaryFile() as spool:
            problem = download_verified(catalog, entry, spool) or dump_problem(spool)
            if problem:
                skipped.append((entry.id, problem))
                continue
            try:
                replay_dump(spool, target_url)
            except requests.RequestException as exc:
                raise RestoreIncomplete(
                    f"restore of backup {entry.id} into {target_url} did not complete: the target stopped "
                    f"answering ({type(exc).__name__}); the catalog is untouched: restore into a fresh server again"
                ) from None
            except HranaError as exc:  # the dump's transaction is rolled back when the stream closes
                skipped.append((entry.id, f"replay refused by the target: {str(exc)[:200]}"))
                continue
            return RestoreOutcome(entry, tuple(skipped), entry.bytes)
    raise NoUsableBackup(
        f"no usable layer-1 backup in {catalog.store.url}: "
        + ("; ".join(f"{i}: {why}" for i, why in skipped) or "the catalog is empty")
    )
