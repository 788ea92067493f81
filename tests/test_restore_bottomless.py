"""Restore tests of a real bottomless bucket: a separate sqld streams to moto (batch interval 1 s) in two
generations (the first WAL only, the second with a snapshot after a restart); `python -m layers.staging
--source bottomless:...` restores it at three points in time, with the source's keys and ETags unchanged;
a deleted WAL batch inside the range is a named failure; an unreachable bucket one clear error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.binary import sqld_binary
from fixtures.hrana import HranaSession
from fixtures.s3 import Region
from fixtures.sqld import SqldSpec, free_port
from fixtures.sqld_process import ProcessSqld
from layers.pitr import PITR_ARGS, Layer2, bottomless_env
from layers.recovery_points import iso
from layers.staging import main

ROWS_PER_ROUND = 10
ROUND_GAP = 3.5  # seconds between commits: a point 2 s after a commit holds it and not the next one
POINT_AFTER = 2.0


@dataclass(frozen=True)
class Stream:
    bucket: str
    points: tuple[tuple[str, int], ...]  # (point in time, rows committed by then)
    region: Region


def _round(url: str, n: int) -> float:
    """Commit ROWS_PER_ROUND rows of round n in one transaction; when the commit was acknowledged."""
    with HranaSession(url) as s:
        s.execute(f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS_PER_ROUND}) "
                  "INSERT INTO events (round) SELECT ? FROM c", [n])  # fmt: skip
    return time.time()


@pytest.fixture(scope="module")
def stream(moto_region: Region, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    """A table, rounds 1 and 2 in the first generation, a restart (second generation, snapshot), round 3; stopped."""
    root = tmp_path_factory.mktemp("bottomless-source")
    bucket = moto_region.new_bucket("test", "team-prod")
    env = bottomless_env(moto_region.endpoint, bucket, "prod", 1)
    spec = SqldSpec("team", root / "team", root / "team.log", env=env, args=("--enable-bottomless-replication",))
    server = ProcessSqld(spec, binary=str(sqld_binary()))
    points = []
    try:
        server.start()
        with HranaSession(server.http_url) as s:
            s.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, round INTEGER NOT NULL)")
        time.sleep(1.5)  # the table's batch, then one batch per round
        for n in (1, 2, 3):
            if n == 3:
                server.stop()  # SIGTERM flushes the queue; the restart starts a new generation
                server.start()
            committed = _round(server.http_url, n)
            points.append((iso(datetime.fromtimestamp(committed + POINT_AFTER, UTC)), n * ROWS_PER_ROUND))
            time.sleep(ROUND_GAP)
        server.stop()
        yield Stream(bucket, tuple(points), moto_region)
    finally:
        server.kill()


def _etags(region: Region, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for o in region.client().list_objects_v2(Bucket=bucket).get("Contents", [])}


def _verify(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, region: Region, bucket: str,
            *args: str) -> tuple[int, dict[str, Any]]:  # fmt: skip
    monkeypatch.setenv("DRILL_SOURCE_ACCESS_KEY_ID", region.endpoint.access_key)
    monkeypatch.setenv("DRILL_SOURCE_SECRET_ACCESS_KEY", region.endpoint.secret_key)
    code = main(["--source", f"bottomless:s3://{bucket}/prod", "--s3-endpoint", region.endpoint.url, "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_three_points_in_time_hold_what_was_committed(
    stream: Stream, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = _etags(stream.region, stream.bucket)
    history = f"file:{tmp_path / 'history.jsonl'}"
    generations = set()
    for point, committed in stream.points:
        code, result = _verify(
            capsys, monkeypatch, stream.region, stream.bucket, "--point", point, "--history", history
        )
        assert code == 0, result["checks"]
        assert result["row_counts"] == {"events": committed}, (point, result["details"])
        assert result["point_requested"] == point and 0 <= result["point_lag_seconds"] <= POINT_AFTER + 1
        assert result["details"]["newest_batch"] and result["details"]["newest_batch_time"] == result["point_achieved"]
        generations.add(result["details"]["generation"])
    assert len(generations) == 2, "rounds 1-2 restore from the first generation, round 3 from the second"
    code, latest = _verify(capsys, monkeypatch, stream.region, stream.bucket, "--point", "latest")
    assert code == 0 and latest["row_counts"] == {"events": 3 * ROWS_PER_ROUND}
    assert _etags(stream.region, stream.bucket) == before, "the source bucket must never be written"


def test_a_deleted_batch_inside_the_range_fails_naming_the_gap(
    stream: Stream, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = stream.region.client()
    damaged = stream.region.new_bucket("test", "team-damaged")
    for key in _etags(stream.region, stream.bucket):
        client.copy_object(Bucket=damaged, Key=key, CopySource={"Bucket": stream.bucket, "Key": key})
    point, _ = stream.points[1]
    first_gen = sorted({k.split("/")[0] for k in _etags(stream.region, damaged)})[-1]  # reversed UUIDs: oldest last
    batches = sorted(k for k in _etags(stream.region, damaged) if k.startswith(first_gen) and k.endswith(".zstd")
                     and "/db." not in k)  # fmt: skip
    assert len(batches) == 3, batches  # the table, round 1, round 2
    client.delete_object(Bucket=damaged, Key=batches[1])
    code, result = _verify(capsys, monkeypatch, stream.region, damaged, "--point", point)
    failed = {c["name"]: c["detail"] for c in result["checks"] if not c["ok"]}
    assert code == 1 and not result["ok"] and "restore" in failed
    frames = batches[1].rsplit("/", 1)[1].split("-")
    assert f"frames {int(frames[0])}-{int(frames[1])} missing" in failed["restore"]
    assert batches[0] in failed["restore"] and batches[2] in failed["restore"], "named by its neighbouring objects"


def test_a_point_before_the_first_generation_names_the_range(
    stream: Stream, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    early = iso(datetime.fromisoformat(stream.points[0][0].removesuffix("Z")).replace(tzinfo=UTC) - timedelta(hours=1))
    monkeypatch.setenv("DRILL_SOURCE_ACCESS_KEY_ID", stream.region.endpoint.access_key)
    monkeypatch.setenv("DRILL_SOURCE_SECRET_ACCESS_KEY", stream.region.endpoint.secret_key)
    argv = ["--source", f"bottomless:s3://{stream.bucket}/prod", "--s3-endpoint", stream.region.endpoint.url]
    assert main([*argv, "--point", early]) == 2
    assert "no recovery point at or before" in capsys.readouterr().err
    assert main([*argv, "--namespace", "other"]) == 2
    assert "no bottomless generation of ns-prod:other" in capsys.readouterr().err


def test_an_unreachable_bucket_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--source", "bottomless:s3://team/prod", "--s3-endpoint", f"http://127.0.0.1:{free_port()}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "cannot read the bottomless bucket" in err and "--s3-endpoint" in err


def test_a_namespace_of_a_multi_tenant_sqld(
    moto_region: Region, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqld with --enable-namespaces keys each namespace's stream ns-DATABASE_ID:NAMESPACE-...: --namespace."""
    bucket = moto_region.new_bucket("test", "tenants")
    env = bottomless_env(moto_region.endpoint, bucket, "prod", 1)
    server = ProcessSqld(SqldSpec("tenants", tmp_path / "t", tmp_path / "t.log", env=env, args=PITR_ARGS),
                         binary=str(sqld_binary()))  # fmt: skip
    try:
        server.start()
        layer2 = Layer2(server.http_url, server.admin_url, "shop", "prod", bucket, moto_region.client(), 1)
        layer2.create()
        with layer2.session() as s:
            s.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
            s.execute("INSERT INTO items VALUES (1), (2), (3)")
        server.stop()
    finally:
        server.kill()
    code, result = _verify(capsys, monkeypatch, moto_region, bucket, "--namespace", "shop")
    assert code == 0 and result["row_counts"] == {"items": 3}
    assert result["details"]["newest_batch"].startswith("ns-prod:shop-")
