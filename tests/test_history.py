"""The append-only history: concurrent writers never interleave or lose a record; storage by URI."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from fixtures.config import ConfigError
from reports.history import FileHistory, S3History, open_history


def _append_many(path: str, worker: int, count: int) -> None:
    history = FileHistory(Path(path))
    for i in range(count):
        history.append({"worker": worker, "i": i, "payload": "x" * 5000, "started_at": f"{worker}-{i:04d}"})


def test_two_processes_append_without_loss_or_interleaving(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    procs = [multiprocessing.Process(target=_append_many, args=(str(path), w, 200)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = path.read_text().splitlines()
    assert len(lines) == 400
    records = [json.loads(line) for line in lines]  # every line is one whole document
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in (1, 2) for i in range(200)}


def test_file_uri_relative_to_base(tmp_path: Path) -> None:
    history = open_history("file:hist/h.jsonl", base=tmp_path)
    history.append({"a": 1})
    assert history.load() == [{"a": 1}]
    assert (tmp_path / "hist" / "h.jsonl").exists()


def test_s3_history_keeps_one_object_per_record(moto_region) -> None:  # type: ignore[no-untyped-def]
    bucket = moto_region.new_bucket("hist", "history")
    history = S3History(bucket, "team/drills", moto_region.client())
    history.append({"started_at": "2026-01-02", "n": 2})
    history.append({"started_at": "2026-01-01", "n": 1})
    assert [r["n"] for r in history.load()] == [1, 2]
    assert history.uri == f"s3://{bucket}/team/drills"


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="file:PATH"):
        open_history("mysql://db")
