"""Layer 1, automated backups: full backups of the running server (sqld's consistent `/dump`, gzip),
stored in the region's bucket with a catalog entry and a SHA-256, retention by count and age, a
notification on success and on failure. Restore = the newest backup whose checksum holds, replayed into
a fresh server in one Hrana stream."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

import requests

from fixtures.hrana import HranaSession
from layers.notify import Event, Notifier
from layers.store import ObjectMissing, ObjectStore

CATALOG = "layer1/catalog/"
BACKUPS = "layer1/backups/"
REPLAY_CHUNK = 1 << 20  # bytes of dump text per Hrana request


@dataclass(frozen=True)
class BackupPolicy:
    """When full backups run and how long they are kept. Production: the seed's daily 02:00, 30 days.
    A drill sets `interval_seconds` to run on a short cycle with the same code."""

    schedule: str = "daily 02:00"
    retention_days: float = 30.0
    retention_count: int | None = None
    interval_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.interval_seconds is None and not re.fullmatch(r"daily ([01]\d|2[0-3]):[0-5]\d", self.schedule):
            raise ValueError(f"backup schedule {self.schedule!r}: use 'daily HH:MM' (UTC) or an interval")

    def next_run(self, after: datetime) -> datetime:
        if self.interval_seconds is not None:
            return after + timedelta(seconds=self.interval_seconds)
        hour, minute = map(int, self.schedule.removeprefix("daily ").split(":"))
        candidate = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return candidate if candidate > after else candidate + timedelta(days=1)

    @property
    def describe(self) -> str:
        when = f"every {self.interval_seconds:g}s" if self.interval_seconds is not None else self.schedule
        keep = f"{self.retention_days:g} days" + (f", at most {self.retention_count}" if self.retention_count else "")
        return f"{when}, kept {keep}"


PRODUCTION_POLICY = BackupPolicy()


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


class BackupCatalog:
    """Catalog entries live beside the backups, one JSON object each; an entry is written only after its
    backup object is complete, so a partial upload is never catalogued."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def entries(self) -> list[CatalogEntry]:
        """Newest first."""
        out = []
        for info in self.store.list(CATALOG):
            try:
                out.append(CatalogEntry(**json.loads(self.store.get_bytes(info.key))))
            except (ObjectMissing, ValueError, TypeError):
                continue  # removed meanwhile, or not an entry of ours
        return sorted(out, key=lambda e: e.created_at, reverse=True)

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


def apply_retention(catalog: BackupCatalog, policy: BackupPolicy, now: datetime) -> list[CatalogEntry]:
    """Drop backups older than the retention age or beyond the retention count (newest kept)."""
    entries = catalog.entries()
    oldest_allowed = now - timedelta(days=policy.retention_days)
    doomed = [e for e in entries if e.created < oldest_allowed]
    if policy.retention_count is not None:
        doomed += [e for e in entries[policy.retention_count :] if e not in doomed]
    for entry in doomed:
        catalog.remove(entry)
    return doomed


class BackupScheduler:
    """Runs take_backup on the policy's schedule in a thread, applies retention, notifies each outcome."""

    def __init__(
        self, server_url: str, catalog: BackupCatalog, policy: BackupPolicy, notify: Notifier, *, sqld_version: str
    ) -> None:
        self.server_url = server_url
        self.catalog = catalog
        self.policy = policy
        self.notify = notify
        self.sqld_version = sqld_version
        self.succeeded = 0
        self.failed = 0
        self.last_seconds = 0.0  # how long the newest backup took
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> BackupScheduler:
        self._thread = threading.Thread(target=self._run, name="layer1-backups", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)

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


def replay_dump(gz_file: IO[bytes], target_url: str, timeout: float = 120) -> None:
    """Replay a gzip'd SQL dump into a server in one Hrana stream (the dump's own BEGIN/COMMIT hold)."""
    with gzip.open(gz_file, "rt", encoding="utf-8", newline="") as text, HranaSession(target_url, timeout=timeout) as s:
        for chunk in _statements(iter(text)):
            s.sequence(chunk)


def download_verified(catalog: BackupCatalog, entry: CatalogEntry, spool: IO[bytes]) -> str | None:
    """Fetch a backup into spool; return why it is unusable, or None when its SHA-256 holds."""
    try:
        catalog.store.get(entry.key, spool)
    except ObjectMissing:
        return "object missing"
    spool.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: spool.read(1 << 20), b""):
        digest.update(block)
    spool.seek(0)
    if digest.hexdigest() != entry.sha256:
        return f"checksum mismatch (catalog {entry.sha256[:12]}, object {digest.hexdigest()[:12]})"
    return None


def restore_latest(catalog: BackupCatalog, target_url: str) -> RestoreOutcome:
    """Replay the newest backup whose checksum holds into the (fresh, empty) server at target_url."""
    skipped: list[tuple[str, str]] = []
    for entry in catalog.entries():
        with tempfile.TemporaryFile() as spool:
            problem = download_verified(catalog, entry, spool)
            if problem:
                skipped.append((entry.id, problem))
                continue
            replay_dump(spool, target_url)
            return RestoreOutcome(entry, tuple(skipped), entry.bytes)
    raise NoUsableBackup(
        f"no usable layer-1 backup in {catalog.store.url}: "
        + ("; ".join(f"{i}: {why}" for i, why in skipped) or "the catalog is empty")
    )
