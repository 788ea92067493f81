"""Layer 4: the sealed format refuses every alteration; copies go from a real us-east moto region to a
real eu-west one over verified TLS without the key beside them; eu-west keeps its own retention; and a
restore from eu-west alone refuses a tampered, truncated or wrongly keyed newest copy and falls back."""

from __future__ import annotations

import base64
import io
import ssl
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import botocore.exceptions
import pytest

from fixtures.hrana import HranaSession
from fixtures.s3 import Region, S3Endpoint, open_region
from fixtures.tls import handshake, make_tls
from layers.backup import BackupCatalog, NoUsableBackup, apply_retention, take_backup
from layers.offsite import (
    MAGIC,
    OBJECTS,
    Keyring,
    OffsiteKey,
    OffsiteReplicator,
    OffsiteSource,
    TamperedObject,
    apply_offsite_retention,
    copy_new_objects,
    keyring,
    object_key,
    offsite_ids,
    open_sealed,
    replicate_once,
    restore_objects,
    seal,
)
from layers.policy import Policy
from layers.recovery import Candidate, Gate, restore_first
from layers.store import LocalStore, S3Store
from scenarios.region_outage import FAULTS, OffsiteFault
from tests.servers import SqldFactory

KEY = OffsiteKey.generate()
SMALL = 16  # bytes per chunk in format tests, so small objects span many chunks


def sealed(data: bytes, name: str = "obj", key: OffsiteKey = KEY, chunk: int = SMALL) -> bytes:
    out = io.BytesIO()
    seal(io.BytesIO(data), out, key, name, chunk)
    return out.getvalue()


def opened(blob: bytes, name: str = "obj", keys: dict[str, OffsiteKey] | None = None) -> bytes:
    out = io.BytesIO()
    open_sealed(io.BytesIO(blob), out, keyring(KEY) if keys is None else keys, name)
    return out.getvalue()


# -- the sealed format -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL, 5 * SMALL + 7])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    assert opened(sealed(data[:size])) == data[:size]


def test_each_object_is_sealed_differently() -> None:
    """Fresh salt and nonce prefix per object: the same plaintext never gives the same bytes."""
    assert sealed(b"same plaintext") != sealed(b"same plaintext")


def test_every_flipped_bit_is_refused() -> None:
    blob = sealed(b"customer rows " * 5)
    for at in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = blob[:at] + bytes([blob[at] ^ bit]) + blob[at + 1 :]
            with pytest.raises(TamperedObject):
                opened(bad)


def test_every_truncation_and_any_extension_is_refused() -> None:
    blob = sealed(b"x" * (4 * SMALL + 3))
    for cut in range(len(blob)):
        with pytest.raises(TamperedObject):
            opened(blob[:cut])
    with pytest.raises(TamperedObject, match="after the final chunk"):
        opened(blob + b"\x00")


def _frames(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a sealed object into its header and its frames (length-prefixed)."""
    kid_len = blob[len(MAGIC)]
    pos = len(MAGIC) + 1 + kid_len + 16 + 7 + 4
    header, frames = blob[:pos], []
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos : pos + 4])
        frames.append(blob[pos : pos + 4 + n])
        pos += 4 + n
    return header, frames


def test_reordered_dropped_or_duplicated_chunks_are_refused() -> None:
    header, frames = _frames(sealed(bytes(range(SMALL * 4))))
    assert len(frames) == 4
    for bad in ([frames[1], frames[0], *frames[2:]], frames[:2] + frames[3:], [frames[0], *frames]):
        with pytest.raises(TamperedObject):
            opened(header + b"".join(bad))
    with pytest.raises(TamperedObject, match="no final chunk"):  # whole chunks cut off at a frame boundary
        opened(header + b"".join(frames[:3]))


def test_an_object_under_another_name_is_refused() -> None:
    """The object's name is authenticated: a copy moved over another backup's key does not open."""
    with pytest.raises(TamperedObject, match="authentication failed at chunk 0"):
        opened(sealed(b"backup A", name="layer4/backups/a"), name="layer4/backups/b")


def test_wrong_key_and_unknown_key_id_are_refused() -> None:
    impostor = OffsiteKey(KEY.key_id, OffsiteKey.generate().secret)
    with pytest.raises(TamperedObject, match="authentication failed at chunk 0"):
        opened(sealed(b"data", key=impostor))
    with pytest.raises(TamperedObject, match="not in the keyring"):
        opened(sealed(b"data", key=OffsiteKey.generate()))


def test_not_a_sealed_object_and_oversized_frames_are_refused() -> None:
    with pytest.raises(TamperedObject, match="bad magic"):
        opened(b"-- plain SQL dump\n")
    header, frames = _frames(sealed(b"abc"))
    huge = struct.pack(">I", 1 << 31) + frames[0][4:]
    with pytest.raises(TamperedObject, match="claims"):  # refused before anything that size is read
        opened(header + huge)
    with pytest.raises(TamperedObject, match="claims 4294967295-byte chunks"):  # the header's chunk size too
        opened(header[:-4] + struct.pack(">I", 0xFFFFFFFF) + b"".join(frames))


class _Reads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, n: int | None = -1) -> bytes:
        self.largest = max(self.largest, n if n is not None and n >= 0 else 1 << 62)
        return super().read(n)


def test_memory_stays_at_one_chunk() -> None:
    """Sealing and opening read at most a chunk (plus its tag) at a time, whatever the object's size."""
    data = _Reads(b"y" * (50 * 1024 + 11))
    out = io.BytesIO()
    seal(data, out, KEY, "big", 1024)
    assert data.largest == 1024
    back = _Reads(out.getvalue())
    open_sealed(back, io.BytesIO(), keyring(KEY), "big")
    assert back.largest <= 1024 + 16


def test_key_from_environment() -> None:
    secret = bytes(range(32))
    key = OffsiteKey.from_env({"DRILL_OFFSITE_KEY": base64.b64encode(secret).decode()})
    assert key is not None and key.secret == secret and key.key_id.startswith("l4-")
    assert secret.hex() not in repr(key) and "secret" not in repr(key)
    assert OffsiteKey.from_env({}) is None
    with pytest.raises(ValueError, match="base64 of 32 random bytes"):
        OffsiteKey.from_env({"DRILL_OFFSITE_KEY": base64.b64encode(b"short").decode()})


# -- real regions -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Region, Region]]:
    """us-east over HTTP and eu-west over HTTPS with a drill-made CA, each its own moto_server."""
    logs = tmp_path_factory.mktemp("regions")
    east = open_region("us-east", "moto", log_dir=logs, reaper=None, timeout=30)
    west = open_region("eu-west", "moto+tls", log_dir=logs, reaper=None, timeout=30)
    try:
        yield east, west
    finally:
        for region in (east, west):
            if region.server is not None:
                region.server.kill()


def test_offsite_endpoint_is_verified_tls(regions: tuple[Region, Region], tmp_path: Path) -> None:
    _, west = regions
    assert west.endpoint.url.startswith("https://127.0.0.1:")
    assert isinstance(west.endpoint.verify, str), "clients must verify the eu-west certificate"
    seen = handshake(west.endpoint.url, west.endpoint.verify)
    assert seen.version in ("TLSv1.2", "TLSv1.3") and "127.0.0.1" in seen.peer_subject
    other_ca = make_tls(tmp_path / "other").ca  # a CA that did not sign the endpoint's certificate
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(west.endpoint.url, other_ca)
    stranger = S3Endpoint(west.name, west.endpoint.url, "k", "s", verify=str(other_ca))
    with pytest.raises(botocore.exceptions.SSLError):
        stranger.client().list_buckets()


def _rows(url: str) -> int:
    with HranaSession(url) as s:
        return int(s.execute("SELECT count(*) FROM t").rows[0][0])  # type: ignore[arg-type]


@pytest.fixture
def backups(regions: tuple[Region, Region], process_sqld: SqldFactory) -> Iterator[tuple[BackupCatalog, S3Store, str]]:
    """Three layer-1 backups (2, 4 and 6 rows) in a us-east bucket, an empty eu-west bucket, and the
    URL of the source server."""
    east, west = regions
    source = process_sqld("source").start()
    catalog = BackupCatalog(S3Store(east.client(), east.new_bucket("t", "layer1")))
    offsite = S3Store(west.client(), west.new_bucket("t", "layer4"))
    with HranaSession(source.http_url) as s:
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for n in range(3):
        with HranaSession(source.http_url) as s:
            s.execute(f"INSERT INTO t (v) VALUES ('{n}a'), ('{n}b')")
        take_backup(source.http_url, catalog, sqld_version="test")
    try:
        yield catalog, offsite, source.http_url
    finally:
        for region, bucket in ((east, catalog.store.bucket), (west, offsite.bucket)):  # type: ignore[attr-defined]
            if region.owns(bucket):  # a region revived after an outage has no buckets left
                region.delete_bucket(bucket)


def test_copies_are_sealed_with_only_the_key_id_beside_them(backups: tuple[BackupCatalog, S3Store, str]) -> None:
    catalog, offsite, _ = backups
    copy, problems = replicate_once(catalog, offsite, KEY)
    assert copy is not None and problems == []
    assert copy.entry.id == catalog.entries()[0].id, "the newest layer-1 backup is copied"
    assert replicate_once(catalog, offsite, KEY)[0] is None, "nothing newer: nothing copied"
    secret_forms = [KEY.secret, KEY.secret.hex().encode(), base64.b64encode(KEY.secret)]
    for info in offsite.list():
        buf = io.BytesIO()
        meta = offsite.get(info.key, buf)
        assert buf.getvalue().startswith(MAGIC), f"{info.key} left unsealed"
        assert b"CREATE TABLE" not in buf.getvalue() and b"layer1/" not in buf.getvalue()
        assert meta["key-id"] == KEY.key_id
        assert not any(f in buf.getvalue() or f.decode("latin-1") in str(meta) for f in secret_forms)


def test_offsite_retention_is_independent_of_layer_1(backups: tuple[BackupCatalog, S3Store, str]) -> None:
    catalog, offsite, url = backups
    for _ in range(2):
        copy, _ = replicate_once(catalog, offsite, KEY)
        assert copy is not None
        take_backup(url, catalog, sqld_version="test")  # a newer one for the next round
    apply_retention(catalog, Policy(interval_seconds=1, retention_count=1), _now())
    assert len(catalog.entries()) == 1
    assert len(offsite_ids(offsite)) == 2, "layer-1 retention in us-east removed offsite copies"
    oldest = offsite_ids(offsite)[-1]
    assert apply_offsite_retention(offsite, Policy(retention_count=1), _now()) == [oldest]
    assert len(offsite_ids(offsite)) == 1
    assert len(catalog.entries()) == 1


def _now() -> datetime:
    return datetime.now(UTC)


def _two_copies(catalog: BackupCatalog, offsite: S3Store, url: str) -> None:
    assert replicate_once(catalog, offsite, KEY)[0] is not None
    with HranaSession(url) as s:
        s.execute("INSERT INTO t (v) VALUES ('late')")
    take_backup(url, catalog, sqld_version="test")
    assert replicate_once(catalog, offsite, KEY)[0] is not None


def _restore(offsite: S3Store, keys: Keyring, make: SqldFactory, workdir: Path) -> Candidate:
    return restore_first([OffsiteSource(offsite, keys)], Gate(), lambda: make("restored"), workdir)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_restore_refuses_a_damaged_newest_copy_and_falls_back(
    backups: tuple[BackupCatalog, S3Store, str], process_sqld: SqldFactory, fault: OffsiteFault, tmp_path: Path
) -> None:
    catalog, offsite, url = backups
    _two_copies(catalog, offsite, url)
    newest, older = offsite_ids(offsite)[:2]
    fault.apply(offsite, newest, KEY)
    outcome = _restore(offsite, keyring(KEY), process_sqld, tmp_path)
    assert outcome.entry.id == older
    assert [r[0] for r in outcome.refused_pairs] == [newest]
    assert fault.caught_by in outcome.refused_pairs[0][1]
    assert _rows(outcome.server.http_url) == 6, "the older copy (6 rows, without 'late') is what was restored"
    assert outcome.bytes_downloaded > 2 * offsite.list(object_key(older))[0].size * 0.9


def test_restore_of_the_undamaged_newest_copy(
    backups: tuple[BackupCatalog, S3Store, str], process_sqld: SqldFactory, tmp_path: Path
) -> None:
    catalog, offsite, url = backups
    _two_copies(catalog, offsite, url)
    outcome = _restore(offsite, keyring(KEY), process_sqld, tmp_path)
    assert outcome.refused == () and outcome.entry.id == offsite_ids(offsite)[0]
    assert _rows(outcome.server.http_url) == 7


def test_restore_with_the_wrong_key_refuses_everything(
    backups: tuple[BackupCatalog, S3Store, str], tmp_path: Path
) -> None:
    catalog, offsite, url = backups
    _two_copies(catalog, offsite, url)
    made: list[str] = []
    with pytest.raises(NoUsableBackup, match="not in the keyring") as raised:
        _restore(offsite, keyring(OffsiteKey.generate()), lambda name: made.append(name), tmp_path)  # type: ignore[arg-type,return-value]
    assert str(raised.value).count("not in the keyring") == 2
    assert made == [], "no server was provisioned: nothing authenticated"


def test_replicator_thread_and_region_outage(
    regions: tuple[Region, Region], backups: tuple[BackupCatalog, S3Store, str]
) -> None:
    """The thread copies on its interval and notifies; after us-east dies it reports failures, and a
    region brought back is empty and answers again. Requests are counted per region."""
    east, _ = regions
    catalog, offsite, _ = backups
    events: list[object] = []
    replicator = OffsiteReplicator(catalog, offsite, KEY, Policy(interval_seconds=0.2), events.append).start()
    try:
        assert replicator.wait_for(1, 20)
        assert replicator.bytes_moved > 0
        before = east.requests
        east.outage()
        failed = replicator.failed
        replicator.wait_for(99, 1.5)
        assert replicator.failed > failed, "copies from a dead region must be reported as failures"
        assert east.requests > before, "the attempts to reach us-east are counted"
    finally:
        replicator.stop()
        east.revive()
    assert east.server is not None and east.server.running()
    assert east.client().list_buckets()["Buckets"] == []
    assert [getattr(e, "layer", None) for e in events][:1] == [4]


# -- layer 2's objects offsite ------------------------------------------------------------------------
def test_layer2_objects_are_copied_once_sealed_and_restored_under_their_names(tmp_path: Path) -> None:
    source, offsite, dest = (LocalStore(tmp_path / n) for n in ("east", "west", "scratch"))
    prefix = "ns-drill:default-"
    source.put_bytes(f"{prefix}gen1/db.gz", b"snapshot " * 50)
    source.put_bytes(f"{prefix}gen1/000000000001-000000000004-1764400000.gz", b"wal batch one")
    source.put_bytes("ns-other:default-gen9/db.gz", b"another database")
    assert copy_new_objects(source, prefix, offsite, KEY)[0] == 2
    assert copy_new_objects(source, prefix, offsite, KEY)[0] == 0  # nothing new: nothing copied again
    source.put_bytes(f"{prefix}gen1/000000000005-000000000009-1764400001.gz", b"wal batch two")
    assert copy_new_objects(source, prefix, offsite, KEY)[0] == 1
    for info in offsite.list(OBJECTS):
        assert b"wal batch" not in offsite.get_bytes(info.key) and b"snapshot" not in offsite.get_bytes(info.key)
    restored = restore_objects(offsite, keyring(KEY), dest)
    assert restored.objects == 3 and restored.key_ids == (KEY.key_id,)
    assert {i.key: dest.get_bytes(i.key) for i in dest.list()} == {
        i.key: source.get_bytes(i.key) for i in source.list(prefix)
    }


@pytest.mark.parametrize("fault", ["flip", "rename"])
def test_layer2_restore_refuses_an_altered_or_renamed_object(tmp_path: Path, fault: str) -> None:
    source, offsite = LocalStore(tmp_path / "east"), LocalStore(tmp_path / "west")
    source.put_bytes("ns-drill:default-gen1/000000000001-000000000004-1764400000.gz", b"wal batch " * 20)
    copy_new_objects(source, "ns-drill:default-", offsite, KEY)
    (held,) = offsite.list(OBJECTS)
    blob = offsite.get_bytes(held.key)
    if fault == "flip":
        offsite.put_bytes(held.key, blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:])
    else:  # an older batch's bytes under a newer batch's name
        offsite.put_bytes(held.key.replace("000000000004", "000000000009"), blob)
        offsite.delete(held.key)
    with pytest.raises(TamperedObject, match="authentication failed"):
        restore_objects(offsite, keyring(KEY), LocalStore(tmp_path / "scratch"))
