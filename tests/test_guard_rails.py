"""Guard rails: destructive steps refuse any bucket, endpoint or server storage the runner did not create
for the drill, unless the user opts in explicitly for that one target (drill_allow_destroy = REGION/BUCKET
for buckets; SqldSpec(destroy_existing=True) for a server's storage). A refusal destroys nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.binary import sqld_binary
from fixtures.config import ConfigError, DrillConfig
from fixtures.s3 import MOTO_CREDENTIALS, Region
from fixtures.session import DrillSession
from fixtures.sqld import SqldSpec
from fixtures.sqld_process import ProcessSqld
from tests.drillrun import ROOT, run_pytest


@pytest.fixture
def foreign_bucket(moto_region: Region, request: pytest.FixtureRequest) -> Iterator[str]:
    """A bucket made behind the runner's back (as a user's own production bucket would be), with data."""
    name = "user-owned-" + request.node.name[-20:].lower().replace("_", "-").strip("-[]")
    client = moto_region.endpoint.client()
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="precious.db", Body=b"production data")
    try:
        yield name
    finally:
        for obj in client.list_objects_v2(Bucket=name).get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)


def _objects(region: Region, bucket: str) -> list[str]:
    return [o["Key"] for o in region.endpoint.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_bucket_the_runner_did_not_create_is_never_deleted(moto_region: Region, foreign_bucket: str) -> None:
    with pytest.raises(PermissionError, match=f"drill_allow_destroy = us-east/{foreign_bucket}"):
        moto_region.delete_bucket(foreign_bucket)
    assert _objects(moto_region, foreign_bucket) == ["precious.db"]


def test_opt_in_is_per_bucket(moto_region: Region, foreign_bucket: str) -> None:
    moto_region.destroy_allowed.add("some-other-bucket")
    try:
        with pytest.raises(PermissionError):
            moto_region.delete_bucket(foreign_bucket)
        assert _objects(moto_region, foreign_bucket) == ["precious.db"]
    finally:
        moto_region.destroy_allowed.discard("some-other-bucket")


def test_opted_in_bucket_is_deleted(moto_region: Region) -> None:
    client = moto_region.endpoint.client()
    client.create_bucket(Bucket="user-scratch-opted-in")
    client.put_object(Bucket="user-scratch-opted-in", Key="x", Body=b"x")
    moto_region.destroy_allowed.add("user-scratch-opted-in")
    try:
        moto_region.delete_bucket("user-scratch-opted-in")
    finally:
        moto_region.destroy_allowed.discard("user-scratch-opted-in")
    assert "user-scratch-opted-in" not in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_allow_destroy_setting_parses_and_refuses_wildcards_and_unknown_regions() -> None:
    config = DrillConfig.from_values({"allow_destroy": "us-east/scratch-a eu-west/scratch.b us-east/scratch-a"})
    assert config.allow_destroy == (("us-east", "scratch-a"), ("eu-west", "scratch.b"))
    assert DrillConfig.from_values({}).allow_destroy == ()
    for bad in ("us-east/*", "us-east", "scratch", "us-east/Bad_Name", "us-east/"):
        with pytest.raises(ConfigError, match=r"drill_allow_destroy item .* is not REGION/BUCKET"):
            DrillConfig.from_values({"allow_destroy": bad})
    with pytest.raises(ConfigError, match=r"drill_allow_destroy names region.*mars"):
        DrillConfig.from_values({"allow_destroy": "mars/scratch"})


def test_the_session_wires_the_opt_in_to_its_regions(
    moto_region: Region, foreign_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both regions as real endpoints (the session starts nothing): the opt-in reaches the named region only,
    and an outage of an endpoint the runner did not start is refused."""
    for region in ("US_EAST", "EU_WEST"):
        monkeypatch.setenv(f"DRILL_S3_{region}_ACCESS_KEY_ID", MOTO_CREDENTIALS[0])
        monkeypatch.setenv(f"DRILL_S3_{region}_SECRET_ACCESS_KEY", MOTO_CREDENTIALS[1])
    url = moto_region.endpoint.url
    config = DrillConfig.from_values({"regions": f"us-east={url} eu-west={url}", "allow_destroy": f"us-east/{foreign_bucket}",
                                      "history": f"file:{tmp_path}/h.jsonl", "artifacts": str(tmp_path / "a")})  # fmt: skip
    session = DrillSession(config, ROOT)
    try:
        regions = session.regions()
        assert regions["us-east"].destroy_allowed == {foreign_bucket}
        assert regions["eu-west"].destroy_allowed == set()
        with pytest.raises(PermissionError, match="drill_allow_destroy"):
            regions["eu-west"].delete_bucket(foreign_bucket)
        with pytest.raises(PermissionError, match="not started by the runner"):
            regions["us-east"].outage()
        assert moto_region.server is not None and moto_region.server.running()
        assert _objects(moto_region, foreign_bucket) == ["precious.db"]
        regions["us-east"].delete_bucket(foreign_bucket)  # opted in: allowed
    finally:
        session.close()
    client = moto_region.endpoint.client()
    assert foreign_bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.create_bucket(Bucket=foreign_bucket)  # for the fixture's teardown


def test_server_storage_that_held_data_before_is_never_destroyed(tmp_path: Path) -> None:
    storage = tmp_path / "someones-data"
    storage.mkdir()
    (storage / "data").write_bytes(b"production database")
    server = ProcessSqld(SqldSpec("adopted", storage, tmp_path / "a.log"), binary=str(sqld_binary()))
    with pytest.raises(PermissionError, match="held data before the runner made server adopted"):
        server.destroy_storage()
    assert (storage / "data").read_bytes() == b"production database"


def test_server_storage_opt_in_and_own_storage(tmp_path: Path) -> None:
    storage = tmp_path / "scratch"
    storage.mkdir()
    (storage / "data").write_bytes(b"scratch")
    spec = SqldSpec("opted", storage, tmp_path / "o.log", destroy_existing=True)
    ProcessSqld(spec, binary=str(sqld_binary())).destroy_storage()
    assert not storage.exists()
    own = ProcessSqld(SqldSpec("own", tmp_path / "own", tmp_path / "own.log"), binary=str(sqld_binary())).start()
    own.destroy_storage()  # made by the runner: total loss is allowed
    assert not (tmp_path / "own").exists() and not own.healthy()


def test_bad_allow_destroy_stops_the_run_with_a_usage_error(tmp_path: Path) -> None:
    run = run_pytest(["--collect-only", "-q", "drills/test_total_loss.py", "--drill-allow-destroy=us-east/*"], tmp_path)
    assert run.returncode == 4, run.output[-2000:]
    assert "drill_allow_destroy item 'us-east/*' is not REGION/BUCKET" in run.output
