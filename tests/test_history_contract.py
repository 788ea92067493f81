"""The History contract, run against both storages: a file (file:PATH) and an S3 prefix on a moto region
(s3://BUCKET/PREFIX, endpoint and keys from the DRILL_HISTORY_S3_* variables as in a CI run). Every
history here is opened by URI through open_history, as the plugin and the CLI open theirs."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.config import ConfigError
from fixtures.s3 import CONNECT_TIMEOUT, MOTO_CREDENTIALS, READ_TIMEOUT, RETRY_ATTEMPTS, Region
from reports.history import FileHistory, History, S3History, open_history

PAYLOAD = "x" * 5000  # bigger than a pipe buffer's atomic write: a torn append would show


def record(writer: int, i: int) -> dict[str, Any]:
    """A record as the drills write them: started_at orders them, nested values, non-ASCII text."""
    return {"started_at": f"2026-01-01T00:{writer:02d}:{i:02d}Z", "writer": writer, "i": i, "payload": PAYLOAD,
            "phases": {"detect": 0.1, "restore": 1.5}, "checks": [{"name": "integrity", "ok": True}], "note": "é ✓"}  # fmt: skip


@pytest.fixture(params=("file", "s3"))
def history(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[History]:
    """A fresh, empty history of the parametrized storage, opened by its URI."""
    if request.param == "file":
        yield open_history(f"file:{tmp_path / 'runs' / 'history.jsonl'}")
        return
    region: Region = request.getfixturevalue("moto_region")
    monkeypatch.setenv("DRILL_HISTORY_S3_ENDPOINT", region.endpoint.url)
    monkeypatch.setenv("DRILL_HISTORY_S3_ACCESS_KEY_ID", MOTO_CREDENTIALS[0])
    monkeypatch.setenv("DRILL_HISTORY_S3_SECRET_ACCESS_KEY", MOTO_CREDENTIALS[1])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = region.new_bucket("history", request.node.name[-20:])
    try:
        yield open_history(f"s3://{bucket}/team/drills")
    finally:
        region.delete_bucket(bucket)


def stored(history: History) -> dict[str, bytes]:
    """What the storage holds, byte for byte: the file, or every object under the prefix."""
    if isinstance(history, FileHistory):
        return {"file": history.path.read_bytes()} if history.path.exists() else {}
    assert isinstance(history, S3History)
    client, bucket = history.client, history.bucket
    objects = client.list_objects_v2(Bucket=bucket, Prefix=history.prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects}


def test_a_new_history_is_empty(history: History) -> None:
    assert history.load() == []
    assert stored(history) == {}  # loading creates nothing


def test_append_then_load_returns_whole_records_oldest_first(history: History) -> None:
    records = [record(1, i) for i in range(5)]
    for r in records:
        history.append(r)
    assert history.load() == records


def test_concurrent_threads_lose_and_tear_nothing(history: History) -> None:
    def write(writer: int) -> None:
        for i in range(15):
            history.append(record(writer, i))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    loaded = history.load()
    assert len(loaded) == 8 * 15
    assert sorted(loaded, key=lambda r: (r["writer"], r["i"])) == [record(w, i) for w in range(8) for i in range(15)]


def append_many(uri: str, writer: int, count: int) -> None:
    """In a child process: open the history by URI (the environment is inherited) and append."""
    history = open_history(uri)
    for i in range(count):
        history.append(record(writer, i))


def test_concurrent_processes_lose_and_tear_nothing(history: History) -> None:
    context = multiprocessing.get_context("spawn")  # a clean child, as a pytest-xdist worker is
    procs = [context.Process(target=append_many, args=(history.uri, w, 20)) for w in (1, 2, 3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    loaded = history.load()
    assert sorted(loaded, key=lambda r: (r["writer"], r["i"])) == [record(w, i) for w in (1, 2, 3) for i in range(20)]
    if isinstance(history, FileHistory):  # every line is one whole document
        lines = history.path.read_bytes().split(b"\n")
        assert lines[-1] == b"" and [json.loads(line) for line in lines[:-1]] == loaded


def test_the_uri_round_trips_through_open_history(history: History) -> None:
    history.append(record(1, 1))
    again = open_history(history.uri)
    assert type(again) is type(history) and again.uri == history.uri
    assert again.load() == [record(1, 1)]


def test_a_record_is_never_modified_by_a_later_append(history: History) -> None:
    first = record(1, 1)
    history.append(first)
    before = stored(history)
    first["payload"] = "changed by the caller after the append"
    history.append(record(1, 2))
    after = stored(history)
    if isinstance(history, FileHistory):
        assert after["file"].startswith(before["file"]) and len(after["file"]) > len(before["file"])
    else:
        assert {k: after[k] for k in before} == before and len(after) == len(before) + 1
    assert history.load() == [record(1, 1), record(1, 2)]


def test_s3_history_client_has_timeouts_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_HISTORY_S3_ENDPOINT", "http://127.0.0.1:9")  # built, never called
    history = open_history("s3://bucket/prefix")
    assert isinstance(history, S3History)
    config = history.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
    assert config.retries == {"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS + 1}  # + the first try
    assert config.s3 == {"addressing_style": "path"}


@pytest.mark.parametrize(
    "uri", ["", "history.jsonl", "file:", "file://", "mysql://db/x", "s3://", "s3:///prefix", "s3:bucket"]
)
def test_a_bad_uri_is_a_config_error_naming_the_setting_and_the_forms(uri: str) -> None:
    with pytest.raises(ConfigError, match=r"drill_history=.*use file:PATH .* or s3://BUCKET/PREFIX"):
        open_history(uri)
