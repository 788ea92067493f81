"""The ransomware drill's pieces against real moto_servers with IAM enforced: the identities get exactly
their policies, the attacker's attempts are recorded with what S3 answered, and the versioned offsite
source finds the locked original under the attacker's versions and delete markers; without Object Lock
nothing survives. Plus the key escrow and the key source, with a real key service process."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import botocore.exceptions
import pytest

from fixtures.attacker import Attacker
from fixtures.iam_regions import Defences, IamRegions, open_iam_regions
from fixtures.key_service import KeyService
from fixtures.sqld import SqldServer
from layers.backup import BackupCatalog, CatalogEntry, NoUsableBackup, backup_id, backup_key, upload
from layers.key_escrow import EscrowError, RecoveryKey, open_escrow, put_escrow, unwrap, wrap
from layers.key_source import KeyUnavailable, obtain_key
from layers.offsite import OffsiteKey, OffsiteSource, copy_backup, keyring
from layers.offsite_versions import VersionedOffsiteSource, census, layer4_versions
from layers.recovery import Gate, Refused, restore_first
from layers.store import LocalStore, S3Store
from scenarios.ransomware import NO_SURVIVOR

DUMP = b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t(x);\nINSERT INTO t VALUES(1);\nCOMMIT;\n"


def _layer1(tmp: Path) -> tuple[BackupCatalog, CatalogEntry]:
    catalog = BackupCatalog(LocalStore(tmp / "layer1"))
    data = gzip.compress(DUMP)
    at = datetime.now(UTC)
    new_id = backup_id(at)
    entry = CatalogEntry(new_id, backup_key(new_id, "dump"), at.isoformat(), hashlib.sha256(data).hexdigest(),
                         len(data), "test", "test", "dump")  # fmt: skip
    spool = io.BytesIO(data)
    spool.seek(0, 2)
    return catalog, upload(catalog, spool, entry)


def _no_server() -> SqldServer:
    raise AssertionError("nothing survived: no server may be provisioned")


@pytest.fixture
def attacked(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[IamRegions, Attacker, OffsiteKey]]:
    """One sealed copy written by the offsite writer, then the attack with every key the primary holds."""
    regions = open_iam_regions(("us-east", "eu-west"), tmp_path, None, 30, request.param)
    try:
        key = OffsiteKey.generate()
        catalog, entry = _layer1(tmp_path)
        copy_backup(catalog, entry, S3Store(regions.offsite.client(), regions.bucket), key)
        attacker = Attacker()
        for region in regions.attacker_offsite:
            attacker.attack_offsite(region, "attacker", regions.bucket)
        yield regions, attacker, key
    finally:
        regions.close()


@pytest.mark.parametrize("attacked", [Defences()], indirect=True, ids=["all-defences"])
def test_locked_versions_survive_and_the_attackers_are_refused(
    attacked: tuple[IamRegions, Attacker, OffsiteKey], tmp_path: Path
) -> None:
    regions, attacker, key = attacked
    offsite = attacker.summary("eu-west")
    assert attacker.count("destroyed", "eu-west") == 0, offsite
    assert offsite["delete version"]["refused"] == 2 and offsite["delete versions (batch)"]["refused"] == 2
    assert offsite["overwrite"]["absorbed"] == 2 and offsite["delete (marker)"]["absorbed"] == 2
    primary_keys = [a for a in attacker.attempts if a.detail.startswith("InvalidAccessKeyId")]
    assert primary_keys, "the primary's keys were accepted by the offsite account"
    reader = S3Store(regions.reader.client(), regions.bucket)
    assert census(layer4_versions(reader)).describe() == {"keys": 2, "versions": 4, "delete_markers": 2,
                                                         "hidden_by_delete_marker": 2}  # fmt: skip
    assert OffsiteSource(reader, keyring(key)).offers() == ([], []), "a plain listing should see nothing"
    offers, refused = VersionedOffsiteSource(reader, keyring(key)).offers()
    assert [r.reason.split(":")[0].split(" ")[:2] for r in refused] == [["entry", "version"]]
    assert len(offers) == 2  # the attacker's object version, then the original
    (tmp_path / "w").mkdir()
    with pytest.raises(Refused, match=r"object version .*bad magic"):
        offers[0].fetch(tmp_path / "w")
    assert gzip.decompress(offers[1].fetch(tmp_path / "w").path.read_bytes()) == DUMP


@pytest.mark.parametrize(
    "attacked",
    [Defences(object_lock=False, versioning=False), Defences(object_lock=False, separate_credentials=False)],
    indirect=True,
    ids=["no-lock", "no-lock-shared-credentials"],
)
def test_without_object_lock_nothing_survives(
    attacked: tuple[IamRegions, Attacker, OffsiteKey], tmp_path: Path
) -> None:
    regions, attacker, key = attacked
    assert attacker.count("destroyed", "eu-west") >= 2, attacker.summary("eu-west")
    source = VersionedOffsiteSource(S3Store(regions.reader.client(), regions.bucket), keyring(key))
    with pytest.raises(NoUsableBackup, match=NO_SURVIVOR):  # an empty bucket, or none (deleted) at all
        restore_first([source], Gate(), _no_server, tmp_path / "w")


def test_identities_get_exactly_their_policies(tmp_path: Path) -> None:
    regions = open_iam_regions(("us-east", "eu-west"), tmp_path, None, 30, Defences())
    try:
        assert "InvalidAccessKeyId" in regions.enforced and "AccessDenied" in regions.enforced
        reader = regions.reader.client()
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            reader.delete_object(Bucket=regions.bucket, Key="x")
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            regions.offsite.client().list_object_versions(Bucket=regions.bucket)
        regions.primary.client().create_bucket(Bucket="primary-may")  # s3:* in its own account
    finally:
        regions.close()


def test_escrow_unwraps_only_under_its_recovery_key_and_key_id() -> None:
    key, recovery = OffsiteKey.generate(), RecoveryKey.generate()
    blob = wrap(key, recovery)
    assert unwrap(blob, key.key_id, recovery).secret == key.secret
    with pytest.raises(EscrowError, match="wrapped under recovery key"):
        unwrap(blob, key.key_id, RecoveryKey.generate())
    with pytest.raises(EscrowError, match="does not authenticate"):
        unwrap(blob, "l4-another", recovery)
    assert key.secret not in blob and key.secret.hex().encode() not in blob


def test_key_source_service_then_escrow_then_one_clear_error(tmp_path: Path) -> None:
    key, recovery = OffsiteKey.generate(), RecoveryKey.generate()
    store = LocalStore(tmp_path / "offsite")
    put_escrow(store, key, recovery)
    service = KeyService(tmp_path / "key-service.log").start(key)
    try:
        assert obtain_key(key.key_id, service.client(), store, None).via == "key service"
        service.kill()
        got = obtain_key(key.key_id, service.client(), store, recovery)
        assert got.via == "escrow" and got.key.secret == key.secret and "did not answer" in got.problems[0]
        with pytest.raises(KeyUnavailable, match=r"no escrow is configured\. Fix: .*drill_recovery_key"):
            obtain_key(key.key_id, service.client(), store, None)
        with pytest.raises(KeyUnavailable, match="escrow failed: no escrow of l4-other"):
            obtain_key("l4-other", service.client(), store, recovery)
        assert open_escrow(store, key.key_id, recovery).secret == key.secret
    finally:
        service.close()
    log = (tmp_path / "key-service.log").read_bytes()
    assert b"GET /v1/keys/" in log and key.secret.hex().encode() not in log
