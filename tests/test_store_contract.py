"""The ObjectStore contract, run against both backends: an S3 bucket on a moto region and a local folder."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.s3 import Region, S3Endpoint
from layers.store import LocalStore, ObjectMissing, ObjectStore, S3Store

SECRET_KEY = f"contractSecretMarker{secrets.token_hex(8)}"  # the S3 store's key: it must never show


@pytest.fixture(params=("s3", "local"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """A fresh, empty store of the parametrized backend."""
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    region: Region = request.getfixturevalue("moto_region")
    bucket = region.new_bucket("store", request.node.name[-20:])
    endpoint = S3Endpoint(region.name, region.endpoint.url, "contract-key", SECRET_KEY)  # moto takes any key
    try:
        yield S3Store(endpoint.client(), bucket, prefix="contract")
    finally:
        region.delete_bucket(bucket)


def test_put_get_round_trip_with_metadata(store: ObjectStore) -> None:
    store.put_bytes("a/b/object.bin", b"\x00payload\xff", {"sha256": "abc123", "kind": "full"})
    sink = io.BytesIO()
    metadata = store.get("a/b/object.bin", sink)
    assert sink.getvalue() == b"\x00payload\xff"
    assert metadata == {"sha256": "abc123", "kind": "full"}


def test_put_without_metadata_gets_empty_metadata(store: ObjectStore) -> None:
    store.put_bytes("plain", b"x")
    assert store.get("plain", io.BytesIO()) == {}


def test_overwrite_replaces_content(store: ObjectStore) -> None:
    store.put_bytes("k", b"first")
    store.put_bytes("k", b"second")
    assert store.get_bytes("k") == b"second"


def test_list_by_prefix_sorted(store: ObjectStore) -> None:
    for key in ("logs/3", "data/b", "data/a", "data/c/deep", "datum"):
        store.put_bytes(key, key.encode())
    listed = store.list("data/")
    assert [o.key for o in listed] == ["data/a", "data/b", "data/c/deep"]
    assert [o.size for o in listed] == [len("data/a"), len("data/b"), len("data/c/deep")]
    assert [o.key for o in store.list()] == ["data/a", "data/b", "data/c/deep", "datum", "logs/3"]
    assert store.list("nothing/") == []


def test_delete(store: ObjectStore) -> None:
    store.put_bytes("gone", b"1", {"m": "v"})
    store.put_bytes("kept", b"2")
    store.delete("gone")
    assert [o.key for o in store.list()] == ["kept"]
    with pytest.raises(ObjectMissing):
        store.get_bytes("gone")
    store.delete("never-existed")  # deleting a missing key is not an error


def test_get_missing_raises_object_missing(store: ObjectStore) -> None:
    with pytest.raises(ObjectMissing):
        store.get("no/such/key", io.BytesIO())
    with pytest.raises(KeyError):  # ObjectMissing is a KeyError
        store.get_bytes("no/such/key")


def test_large_object_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    source = tmp_path / "big.in"
    source.write_bytes(data)
    with source.open("rb") as fh:
        store.put("big/object", fh, {"size": str(len(data))})
    target = tmp_path / "big.out"
    with target.open("wb") as fh:
        metadata = store.get("big/object", fh)
    assert target.read_bytes() == data
    assert metadata == {"size": str(len(data))}
    assert [o.size for o in store.list("big/")] == [len(data)]


def test_url_and_reprs_never_show_the_secret_key(store: ObjectStore) -> None:
    store.put_bytes("k", b"v")  # the store's client signs with the secret key
    shown = [store.url, str(store), repr(store), repr(vars(store))]
    if isinstance(store, S3Store):
        assert store.client._request_signer._credentials.secret_key == SECRET_KEY  # it is there to leak
        shown += [repr(store.client), repr(store.client.meta.config), str(store.client.meta.endpoint_url)]
    assert store.url.startswith(("s3://", "file:"))
    leaked = [text for text in shown if SECRET_KEY in text]
    assert not leaked


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd"])
def test_local_store_refuses_keys_leaving_it(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(ValueError, match="leaves the store"):
        store.put_bytes(key, b"escape")
    with pytest.raises(ValueError, match="leaves the store"):
        store.get_bytes(key)
    assert not (tmp_path / "x").exists()


def test_local_store_hides_its_metadata_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("k", b"v", {"a": "b"})
    assert [o.key for o in store.list()] == ["k"]
