"""Layer 4, offsite copies: layer-1 backups of either format (catalog entry and object) copied from the
primary region's store to a bucket in another region, encrypted on the client before they leave, kept there
on their own retention (production: daily, 90 days), and restored from there alone when the primary region
is gone (`OffsiteSource`, a source for layers.recovery: page snapshots are restored by file, dumps replayed).

Encryption is AES-256-GCM (`cryptography`'s AESGCM) in the STREAM construction of Hoang, Reyhanitabar,
Rogaway and Vizár (2015), as used by Tink's streaming AEAD and by age: each object gets its own key,
HKDF-SHA256(master key, random salt, object name); the plaintext is cut into chunks of CHUNK bytes, each
sealed with nonce = 7 random bytes || 32-bit chunk counter || last-chunk flag and with the header (format,
key id, salt, nonce prefix, chunk size) plus the object name as associated data. Reordered, altered,
truncated, extended or renamed objects, and objects sealed under another key, all fail authentication.
Memory stays at about one chunk: objects stream through temp files.

The master key never goes beside the data: it comes from the environment or is generated for one drill
and held in memory; objects carry only its id (in the header and in their metadata)."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import secrets
import struct
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fixtures.background import Background
from layers.backup import BackupCatalog, CatalogEntry, download_verified, hashing
from layers.notify import Event, Notifier
from layers.policy import Policy
from layers.recovery import Fetched, Offer, Refusal, Refused, materialize
from layers.store import ObjectMissing, ObjectStore

CATALOG = "layer4/catalog/"
BACKUPS = "layer4/backups/"
OBJECTS = "layer4/objects/"  # sealed copies of layer-2 (bottomless) objects, under their own names
MAGIC = b"L4STREAM1"
CHUNK = 1 << 20  # plaintext bytes per sealed chunk
MAX_CHUNK = 1 << 24  # a header claiming more is refused before anything that size is read
TAG = 16
KEY_ENV = "DRILL_OFFSITE_KEY"  # base64 of 32 bytes; unset: a key is generated for each drill


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class TamperedObject(ValueError):
    """An offsite object that does not authenticate under our key: refused, never half-used."""

    fetched = 0  # sealed bytes downloaded before it was refused


@dataclass(frozen=True)
class OffsiteKey:
    """A 256-bit master key and its id. Its repr never shows the key."""

    key_id: str
    secret: bytes = field(repr=False)
    source: str = "generated for this drill, held in memory only"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", self.key_id):
            raise ValueError(f"offsite key id {self.key_id!r}: use 1-64 letters, digits or . _ : -")
        if len(self.secret) != 32:
            raise ValueError(f"offsite key {self.key_id!r} has {len(self.secret)} bytes: AES-256 needs 32")

    @classmethod
    def generate(cls) -> OffsiteKey:
        return cls("l4-" + secrets.token_hex(6), AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OffsiteKey | None:
        """The key in $DRILL_OFFSITE_KEY (base64 of 32 bytes), its id from $DRILL_OFFSITE_KEY_ID or derived."""
        env = os.environ if env is None else env
        raw = env.get(KEY_ENV, "")
        if not raw:
            return None
        try:
            secret = base64.b64decode(raw, validate=True)
        except ValueError:
            secret = b""
        if len(secret) != 32:
            raise ValueError(f"${KEY_ENV} must be base64 of 32 random bytes, e.g. `openssl rand -base64 32`")
        key_id = env.get(f"{KEY_ENV}_ID") or "l4-" + hashlib.sha256(b"key id:" + secret).hexdigest()[:12]
        return cls(key_id, secret, f"${KEY_ENV}")


Keyring = Mapping[str, OffsiteKey]  # key id -> key: the keys a restore may use


def keyring(*keys: OffsiteKey) -> dict[str, OffsiteKey]:
    return {k.key_id: k for k in keys}


# -- the sealed format ------------------------------------------------------------------------------
def _header(key_id: str, salt: bytes, prefix: bytes, chunk: int) -> bytes:
    kid = key_id.encode()
    return MAGIC + bytes([len(kid)]) + kid + salt + prefix + struct.pack(">I", chunk)


def _subkey(key: OffsiteKey, salt: bytes, name: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"layer4 object:" + name.encode())
    return AESGCM(hkdf.derive(key.secret))


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 1 << 32:
        raise ValueError("object too large for one sealed stream (2^32 chunks)")
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


def seal(src: IO[bytes], dst: IO[bytes], key: OffsiteKey, name: str, chunk: int = CHUNK) -> int:
    """Encrypt src into dst for the object `name`; returns the bytes written."""
    if not 0 < chunk <= MAX_CHUNK:
        raise ValueError(f"chunk size {chunk}: use 1 to {MAX_CHUNK} bytes")
    salt, prefix = secrets.token_bytes(16), secrets.token_bytes(7)
    header = _header(key.key_id, salt, prefix, chunk)
    aead, aad = _subkey(key, salt, name), header + name.encode()
    written = dst.write(header)
    counter, block = 0, src.read(chunk)
    while True:
        following = src.read(chunk) if len(block) == chunk else b""
        last = not following
        sealed = aead.encrypt(_nonce(prefix, counter, last), block, aad)
        written += dst.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return written
        counter, block = counter + 1, following


def _read_exact(src: IO[bytes], n: int, what: str) -> bytes:
    data = src.read(n)
    if len(data) != n:
        raise TamperedObject(f"truncated: the object ends inside the {what}")
    return data


def open_sealed(src: IO[bytes], dst: Sink, keys: Keyring, name: str) -> str:
    """Decrypt src into dst; returns the key id used. Raises TamperedObject, having written only chunks
    that authenticated (the caller discards dst on failure)."""
    if src.read(len(MAGIC)) != MAGIC:
        raise TamperedObject("not a layer-4 sealed object (bad magic)")
    kid = _read_exact(src, _read_exact(src, 1, "header")[0], "header").decode(errors="replace")
    salt, prefix = _read_exact(src, 16, "header"), _read_exact(src, 7, "header")
    (chunk,) = struct.unpack(">I", _read_exact(src, 4, "header"))
    if not 0 < chunk <= MAX_CHUNK:
        raise TamperedObject(f"header claims {chunk}-byte chunks (at most {MAX_CHUNK})")
    key = keys.get(kid)
    if key is None:
        raise TamperedObject(f"sealed under key id {kid!r}, which is not in the keyring ({', '.join(keys) or 'empty'})")
    aad = _header(kid, salt, prefix, chunk) + name.encode()
    aead = _subkey(key, salt, name)
    counter = 0
    while True:
        length_bytes = src.read(4)
        if not length_bytes:
            raise TamperedObject(f"truncated: no final chunk after {counter} chunk(s)")
        if len(length_bytes) < 4:
            raise TamperedObject(f"truncated: the object ends inside frame {counter}'s length")
        (length,) = struct.unpack(">I", length_bytes)
        if length > chunk + TAG or length < TAG:
            raise TamperedObject(f"frame {counter} claims {length} bytes (chunks hold at most {chunk + TAG})")
        sealed = _read_exact(src, length, f"chunk {counter}")
        plain = None
        for last in (False, True):
            try:
                plain = aead.decrypt(_nonce(prefix, counter, last), sealed, aad)
                break
            except InvalidTag:
                continue
        if plain is None:
            raise TamperedObject(f"authentication failed at chunk {counter} (altered, or sealed under another key)")
        dst.write(plain)
        if last:
            if src.read(1):
                raise TamperedObject(f"data after the final chunk {counter}")
            return kid
        counter += 1


# -- policy, catalog, copies -------------------------------------------------------------------------
PRODUCTION_POLICY = Policy(schedule="daily 03:00", retention_days=90.0)


@dataclass(frozen=True)
class OffsiteCopy:
    entry: CatalogEntry  # the layer-1 entry copied
    sealed_bytes: int
    seconds: float
    key_id: str


def _created(backup_id: str) -> datetime:
    """Backup ids start with their UTC creation time (layers.backup._backup_id)."""
    return datetime.strptime(backup_id.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


def object_key(backup_id: str) -> str:
    """The sealed copy of a backup object, either format (the format is in its sealed catalog entry)."""
    return f"{BACKUPS}{backup_id}.sealed"


def entry_key(backup_id: str) -> str:
    return f"{CATALOG}{backup_id}.json.sealed"


def offsite_ids(store: ObjectStore) -> list[str]:
    """Backup ids held offsite, newest first (from object names: needs no key)."""
    ids = [i.key.removeprefix(CATALOG).removesuffix(".json.sealed") for i in store.list(CATALOG)]
    return sorted(ids, reverse=True)


def _put_sealed(store: ObjectStore, key: str, plain: IO[bytes], okey: OffsiteKey, meta: dict[str, str]) -> int:
    with tempfile.TemporaryFile() as sealed:
        size = seal(plain, sealed, okey, key)
        sealed.seek(0)
        store.put(key, sealed, {**meta, "key-id": okey.key_id, "format": MAGIC.decode().lower()})
    return size


def copy_backup(source: BackupCatalog, entry: CatalogEntry, offsite: ObjectStore, okey: OffsiteKey) -> OffsiteCopy:
    """Verify a layer-1 backup's checksum, seal and upload it, then its catalog entry (entry last, so a
    partial copy is never catalogued). Raises ValueError when the layer-1 object is unusable."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as plain:
        problem = download_verified(source, entry, plain)
        if problem:
            raise ValueError(f"layer-1 backup {entry.id} not copied: {problem}")
        size = _put_sealed(offsite, object_key(entry.id), plain, okey, {"backup-id": entry.id})
    record = json.dumps({**asdict(entry), "replicated_at": datetime.now(UTC).isoformat()}).encode()
    with tempfile.TemporaryFile() as buf:
        buf.write(record)
        buf.seek(0)
        size += _put_sealed(offsite, entry_key(entry.id), buf, okey, {"backup-id": entry.id})
    return OffsiteCopy(entry, size, time.monotonic() - started, okey.key_id)


def replicate_once(
    source: BackupCatalog, offsite: ObjectStore, okey: OffsiteKey
) -> tuple[OffsiteCopy | None, list[str]]:
    """Copy the newest layer-1 backup newer than anything offsite (older ones are superseded); a backup
    that fails its checksum is skipped for the next newest. Returns the copy (None: nothing new) and the
    problems met."""
    held = offsite_ids(offsite)
    newest_held = held[0] if held else ""
    problems: list[str] = []
    for entry in source.entries():
        if entry.id <= newest_held:
            break
        try:
            return copy_backup(source, entry, offsite, okey), problems
        except ValueError as exc:
            problems.append(str(exc))
    return None, problems


def apply_offsite_retention(offsite: ObjectStore, policy: Policy, now: datetime) -> list[str]:
    """Drop offsite copies past the offsite policy's age or count (needs no key); returns their ids."""
    doomed = policy.expired(offsite_ids(offsite), _created, now)
    for backup_id in doomed:
        offsite.delete(entry_key(backup_id))  # entry first: a half-deleted copy is never listed
        offsite.delete(object_key(backup_id))
    return doomed


def sealed_object_key(name: str) -> str:
    return f"{OBJECTS}{name}.sealed"


def copy_new_objects(source: ObjectStore, prefix: str, offsite: ObjectStore, okey: OffsiteKey) -> tuple[int, int]:
    """Seal every object under `prefix` in `source` (layer 2's snapshots and WAL batches) that the offsite
    store does not hold yet; returns (objects copied, sealed bytes). Bottomless never rewrites an object
    under the same name, so a held name is never copied again."""
    held = {i.key for i in offsite.list(OBJECTS)}
    copied = size = 0
    for info in sorted(source.list(prefix), key=lambda i: i.key):
        name = sealed_object_key(info.key)
        if name in held:
            continue
        with tempfile.TemporaryFile() as plain:
            source.get(info.key, plain)
            plain.seek(0)
            size += _put_sealed(offsite, name, plain, okey, {"source-key": info.key})
        copied += 1
    return copied, size


@dataclass(frozen=True)
class ObjectsRestore:
    objects: int
    sealed_bytes: int
    key_ids: tuple[str, ...]


def restore_objects(offsite: ObjectStore, keys: Keyring, dest: ObjectStore) -> ObjectsRestore:
    """Decrypt every sealed layer-2 object into `dest` under its original name. Raises TamperedObject on
    the first object that does not authenticate (a half-restored bucket is the caller's to discard)."""
    count = fetched = 0
    kids: set[str] = set()
    for info in offsite.list(OBJECTS):
        with tempfile.TemporaryFile() as plain:
            kid, size = _get_opened(offsite, info.key, keys, plain)
            plain.seek(0)
            dest.put(info.key.removeprefix(OBJECTS).removesuffix(".sealed"), plain)
        count, fetched = count + 1, fetched + size
        kids.add(kid)
    return ObjectsRestore(count, fetched, tuple(sorted(kids)))


class OffsiteReplicator(Background):
    """Runs replicate_once and the offsite retention on the policy's interval in a thread; notifies each
    outcome as a layer-4 event; counts copies and bytes moved."""

    thread_name = "layer4-offsite"
    join_timeout = 60.0

    def __init__(
        self, source: BackupCatalog, offsite: ObjectStore, key: OffsiteKey, policy: Policy, notify: Notifier
    ) -> None:
        super().__init__()
        if policy.interval_seconds is None:
            raise ValueError("OffsiteReplicator runs on an interval: set Policy.interval_seconds")
        self.source = source
        self.offsite = offsite
        self.key = key
        self.policy = policy
        self.notify = notify
        self.copies: list[OffsiteCopy] = []
        self.failed = 0
        self._done = threading.Condition()
        self.objects_source: tuple[ObjectStore, str] | None = None  # layer 2's store and prefix (copy_objects)
        self.objects_copied = 0
        self.objects_bytes = 0
        self.cycles = 0
        self.cycle_seconds_max = 0.0  # the longest cycle (copies and retention): how stale an offsite copy may get

    def copy_objects(self, source: ObjectStore, prefix: str) -> None:
        """Also seal layer 2's objects under `prefix` in `source` each cycle (only those not yet offsite)."""
        self.objects_source = (source, prefix)

    @property
    def bytes_moved(self) -> int:
        """Bytes read from the source region plus bytes written to the offsite region."""
        return sum(c.entry.bytes + c.sealed_bytes for c in self.copies)

    def run_once(self) -> OffsiteCopy | None:
        started = time.monotonic()
        try:
            copy, problems = replicate_once(self.source, self.offsite, self.key)
        except Exception as exc:
            self.failed += 1
            self.notify(
                Event(4, "failure", time.time(), {"source": self.source.store.url}, f"{type(exc).__name__}: {exc}")
            )
            self._end_cycle(started)
            return None
        if problems:
            self.notify(Event(4, "failure", time.time(), {"skipped": problems}, "; ".join(problems)))
        if copy is not None:
            self.copies.append(copy)
            self.notify(Event(4, "success", time.time(), {"backup_id": copy.entry.id, "sealed_bytes": copy.sealed_bytes,
                                                          "seconds": round(copy.seconds, 4), "key_id": copy.key_id,
                                                          "to": self.offsite.url}))  # fmt: skip
        try:
            removed = apply_offsite_retention(self.offsite, self.policy, datetime.now(UTC))
        except Exception as exc:
            self.notify(Event(4, "failure", time.time(), {"retention": True}, f"{type(exc).__name__}: {exc}"))
        else:
            if removed:
                self.notify(Event(4, "retention", time.time(), {"removed": removed}))
        self._end_cycle(started)
        return copy

    def _end_cycle(self, started: float) -> None:
        """Layer 2's objects (if armed), then the cycle is counted and waiters woken."""
        if self.objects_source is not None:
            self._copy_objects(*self.objects_source)
        with self._done:
            self.cycles += 1
            self.cycle_seconds_max = max(self.cycle_seconds_max, time.monotonic() - started)
            self._done.notify_all()

    def _copy_objects(self, source: ObjectStore, prefix: str) -> None:
        try:
            count, size = copy_new_objects(source, prefix, self.offsite, self.key)
        except Exception as exc:
            self.failed += 1
            self.notify(Event(4, "failure", time.time(), {"objects": source.url}, f"{type(exc).__name__}: {exc}"))
            return
        self.objects_copied += count
        self.objects_bytes += size
        if count:
            self.notify(Event(4, "success", time.time(), {"layer2_objects": count, "sealed_bytes": size,
                                                          "to": self.offsite.url}))  # fmt: skip

    def wait_cycles(self, cycles: int, timeout: float) -> bool:
        """Block until `cycles` more cycles have finished (copies or not)."""
        with self._done:
            target = self.cycles + cycles
            return self._done.wait_for(lambda: self.cycles >= target, timeout=timeout)

    def wait_for(self, copies: int, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: len(self.copies) >= copies, timeout=timeout)

    def _run(self) -> None:
        assert self.policy.interval_seconds is not None
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.policy.interval_seconds)


# -- restore from the offsite region alone ------------------------------------------------------------
def _get_opened(store: ObjectStore, key: str, keys: Keyring, sink: Sink) -> tuple[str, int]:
    """Fetch and decrypt one object into sink; returns (key id, sealed bytes fetched)."""
    with tempfile.TemporaryFile() as sealed:
        meta = store.get(key, sealed)
        size = sealed.tell()
        sealed.seek(0)
        try:
            kid = open_sealed(sealed, sink, keys, key)
            if meta.get("key-id", kid) != kid:
                raise TamperedObject(
                    f"metadata names key id {meta.get('key-id')!r}; the object is sealed under {kid!r}"
                )
        except TamperedObject as exc:
            exc.fetched = size
            raise
    return kid, size


def read_offsite_entry(store: ObjectStore, backup_id: str, keys: Keyring) -> tuple[CatalogEntry, str, int]:
    """One decrypted offsite catalog entry, checked as layer 1 checks its own: (entry, replicated_at, sealed
    bytes). Raises TamperedObject or ValueError."""
    with tempfile.TemporaryFile() as plain:
        _, size = _get_opened(store, entry_key(backup_id), keys, plain)
        plain.seek(0)
        try:
            raw: Any = json.loads(plain.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"catalog entry is not JSON ({exc})") from None
    replicated_at = str(raw.pop("replicated_at", "")) if isinstance(raw, dict) else ""
    try:
        entry = CatalogEntry.parse(raw)
    except ValueError as exc:
        raise ValueError(f"catalog entry refused: {exc}") from None
    if entry.id != backup_id:
        raise TamperedObject(f"catalog entry names backup {entry.id!r}, not {backup_id!r}")
    return entry, replicated_at, size


def entry_or_refusal(
    store: ObjectStore, backup_id: str, keys: Keyring, url: str, what: str = ""
) -> tuple[CatalogEntry, str, int] | Refusal:
    """`read_offsite_entry`, or the refusal saying why the entry cannot be used (`what` leads its reason)."""
    try:
        return read_offsite_entry(store, backup_id, keys)
    except ObjectMissing as exc:
        return Refusal(4, url, backup_id, f"{what}object missing: {exc}")
    except (TamperedObject, ValueError) as exc:
        fetched = exc.fetched if isinstance(exc, TamperedObject) else 0
        return Refusal(4, url, backup_id, f"{what}{exc}", fetched)


@dataclass(frozen=True)
class OffsiteSource:
    """The offsite region's sealed copies, for layers.recovery: `store` is the offsite store alone."""

    store: ObjectStore
    keys: Keyring
    layer: int = 4
    empty: str = "no offsite copies"

    @property
    def url(self) -> str:
        return self.store.url

    def offers(self) -> tuple[list[Offer], list[Refusal]]:
        offers, refused = [], []
        for backup_id in offsite_ids(self.store):
            found = entry_or_refusal(self.store, backup_id, self.keys, self.url)
            if isinstance(found, Refusal):
                refused.append(found)
                continue
            entry, replicated_at, size = found
            offers.append(Offer(4, self.url, entry, functools.partial(self.fetch, entry, replicated_at), size))
        return offers, refused

    def fetch(self, entry: CatalogEntry, replicated_at: str, workdir: Path) -> Fetched:
        """Download, decrypt and check the checksum (only authenticated chunks reach the file)."""
        spool = workdir / f"{entry.id}.opened"
        digest = hashlib.sha256()
        try:
            with spool.open("wb") as plain:
                kid, size = _get_opened(self.store, object_key(entry.id), self.keys, hashing(plain, digest))
        except ObjectMissing as exc:
            spool.unlink(missing_ok=True)
            raise Refused(f"object missing: {exc}") from None
        except TamperedObject as exc:
            spool.unlink(missing_ok=True)
            raise Refused(str(exc), exc.fetched) from None
        if digest.hexdigest() != entry.sha256:
            spool.unlink(missing_ok=True)
            raise Refused(f"checksum mismatch after decryption (catalog {entry.sha256[:12]})", size)
        return Fetched(materialize(entry, spool, workdir), size, kid, replicated_at)
