"""Layer 1, automated backups: full backups of the running server stored in the region's bucket with a
catalog entry and a SHA-256, retention by count and age, a notification on success and on failure.
Two formats: `page` (layers.snapshot: a zstd'd file snapshot of an embedded replica, restored by file) and
`dump` (sqld's consistent `/dump`, gzip; portable, restored by replaying it in one Hrana stream). Restores
go through layers.recovery."""

from __future__ import annotations

import builtins
import contextlib
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, Any, cast

import requests

from fixtures.background import Background
from fixtures.hrana import HranaSession
from fixtures.progress import progress
from layers.notify import Event, Notifier
from layers.policy import Policy
from layers.store import STORE_ERRORS, ObjectMissing, ObjectStore

CATALOG = "layer1/catalog/"
BACKUPS = "layer1/backups/"
REPLAY_CHUNK = 1 << 20  # bytes of dump text per Hrana request
FORMATS = {"page": ".db.zst", "dump": ".sql.gz"}  # backup format -> object name suffix
HOLD_POLL = 0.05  # seconds a held scheduler waits between looks


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
    format: str = "dump"  # "page" | "dump" (entries written before page snapshots carry no format: dump)
    replication_index: int = 0  # page: the replica's replication frame number the snapshot holds; dump: 0

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
        entry = cls.parse(raw)
        if catalog_key != f"{CATALOG}{entry.id}.json":
            raise ValueError(f"id {entry.id[:80]!r} does not match its place in the catalog ({catalog_key[:120]!r})")
        return entry

    @classmethod
    def parse(cls, raw: Any) -> CatalogEntry:
        """Check one decoded entry (a layer-1 catalog object or a layer-4 copy of one); ValueError says why not."""
        if not isinstance(raw, dict):
            raise ValueError(f"not a JSON object but {type(raw).__name__}")
        fields = {f: int if f in ("bytes", "replication_index") else str for f in cls.__dataclass_fields__}
        raw = {"format": "dump", "replication_index": 0, **raw}
        if raw.keys() != fields.keys():
            missing, unknown = sorted(fields.keys() - raw.keys()), sorted(map(str, raw.keys() - fields.keys()))
            raise ValueError(f"fields missing {missing} / unknown {unknown}")
        for name, kind in fields.items():
            if type(raw[name]) is not kind:
                raise ValueError(f"field {name!r} is {type(raw[name]).__name__}, not {kind.__name__}")
        entry = cls(**raw)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", entry.id):
            raise ValueError(f"id {entry.id[:80]!r} is not a backup id")
        if entry.format not in FORMATS:
            raise ValueError(f"format {entry.format[:20]!r} is not one of {', '.join(FORMATS)}")
        if entry.key != backup_key(entry.id, entry.format):
            raise ValueError(
                f"points elsewhere: key {entry.key[:120]!r}, expected {backup_key(entry.id, entry.format)}"
            )
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or entry.bytes < 0 or entry.replication_index < 0:
            raise ValueError("sha256 is not 64 hex digits, or bytes or replication_index is negative")
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


def backup_id(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


def backup_key(backup_id: str, fmt: str) -> str:
    return f"{BACKUPS}{backup_id}{FORMATS[fmt]}"


def upload(catalog: BackupCatalog, spool: IO[bytes], entry: CatalogEntry) -> CatalogEntry:
    """Upload a backup object spooled at its end, then its catalog entry (entry last: a partial upload is
    never catalogued)."""
    spool.seek(0)
    catalog.store.put(entry.key, spool, {"sha256": entry.sha256, "format": entry.format})
    catalog.add(entry)
    return entry


def take_backup(
    server_url: str, catalog: BackupCatalog, *, sqld_version: str, timeout: float = 600, size_hint: int = 0
) -> CatalogEntry:
    """A dump backup: stream the server's dump through gzip into a temp file (bounded memory), upload,
    catalog. `size_hint` (the database's bytes) sizes the progress line of a large one."""
    started = datetime.now(UTC)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        with requests.get(f"{server_url}/dump", stream=True, timeout=timeout) as response:
            response.raise_for_status()
            with (
                gzip.GzipFile(fileobj=hashing(spool, digest), mode="wb", compresslevel=1, mtime=0) as gz,
                progress("backup: layer-1 dump", size_hint) as step,
            ):
                for block in response.iter_content(1 << 20):
                    gz.write(block)
                    step.advance(len(block))
        new_id = backup_id(started)
        entry = CatalogEntry(new_id, backup_key(new_id, "dump"), started.isoformat(), digest.hexdigest(),
                             spool.tell(), server_url, sqld_version, "dump")  # fmt: skip
        return upload(catalog, spool, entry)


def hashing(sink: IO[bytes], digest: hashlib._Hash) -> IO[bytes]:
    """`sink`, hashing what is written to it into `digest` (a write-only file)."""
    return cast(IO[bytes], _Hashing(sink, digest))


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


def dump_job(
    server_url: str, catalog: BackupCatalog, sqld_version: str, size_hint: int = 0
) -> Callable[[], CatalogEntry]:
    """The dump format as a scheduler job."""
    return lambda: take_backup(server_url, catalog, sqld_version=sqld_version, size_hint=size_hint)


class BackupScheduler(Background):
    """Runs a backup job (one backup per call: `dump_job`, or layers.snapshot.PageSnapshots) on the policy's
    schedule in a thread, applies retention, notifies each outcome."""

    thread_name = "layer1-backups"
    join_timeout = 60.0

    def __init__(
        self, server_url: str, catalog: BackupCatalog, policy: Policy, notify: Notifier, *, sqld_version: str,
        job: Callable[[], CatalogEntry] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.server_url = server_url
        self.catalog = catalog
        self.policy = policy
        self.notify = notify
        self.job = job or dump_job(server_url, catalog, sqld_version)
        self.succeeded = 0
        self.failed = 0
        self.last_seconds = 0.0  # how long the newest backup took
        self.seconds: list[float] = []  # every successful cycle's duration, in order
        self._done = threading.Condition()
        self._held = threading.Event()

    def run_once(self) -> CatalogEntry | None:
        started = time.monotonic()
        try:
            entry = self.job()
        except Exception as exc:
            self.failed += 1
            self.notify(Event(1, "failure", time.time(), {"source": self.server_url}, f"{type(exc).__name__}: {exc}"))
            return None
        self.succeeded += 1
        self.last_seconds = time.monotonic() - started
        self.seconds.append(self.last_seconds)
        self.notify(Event(1, "success", time.time(), asdict(entry)))
        with self._done:
            self._done.notify_all()
        self._retain()
        return entry

    def _retain(self) -> None:
        """Apply retention; a store that fails it (e.g. its region just went away) is notified, and the
        schedule goes on (the thread used to die on it)."""
        try:
            removed = apply_retention(self.catalog, self.policy, datetime.now(UTC))
        except Exception as exc:
            self.notify(Event(1, "retention", time.time(), {"removed": []}, f"{type(exc).__name__}: {exc}"[:500]))
            return
        if removed:
            self.notify(Event(1, "retention", time.time(), {"removed": [e.id for e in removed]}))

    def wait_for(self, successes: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.succeeded >= successes, timeout=timeout)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No backup starts inside the block (one under way finishes); the schedule goes on afterwards. For
        a drill's own steps around a damage (a backup there would see the application stopped by the runner,
        not as it runs: it would hold every acknowledged write)."""
        self._held.set()
        try:
            yield
        finally:
            self._held.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._held.is_set():
                self._stop.wait(HOLD_POLL)
                continue
            self.run_once()
            now = datetime.now(UTC)
            self._stop.wait((self.policy.next_run(now) - now).total_seconds())


class NoUsableBackup(RuntimeError):
    """No candidate restored: each one's refusal is in the message (and in `refused`, when known)."""

    def __init__(self, message: str, refused: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


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
    """Fetch a backup into spool (hashed as it streams in); return why it is unusable, or None when its
    SHA-256 holds."""
    digest = hashlib.sha256()
    try:
        catalog.store.get(entry.key, hashing(spool, digest))
    except ObjectMissing:
        return "object missing"
    except STORE_ERRORS as exc:
        return f"could not read {catalog.store.url}{entry.key} ({type(exc).__name__}: {str(exc)[:200]})"
    spool.seek(0)
    if digest.hexdigest() != entry.sha256:
        return f"checksum mismatch (catalog {entry.sha256[:12]}, object {digest.hexdigest()[:12]})"
    return None
