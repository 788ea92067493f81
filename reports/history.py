"""The append-only run history, storage chosen by URI (as pytest-benchmark's --benchmark-storage):
file:PATH            one JSON document per line; appends are single locked writes, so concurrent
                     pytest workers never interleave or half-write a record
s3://BUCKET/PREFIX   one object per record (append-only by construction); endpoint and credentials from
                     DRILL_HISTORY_S3_ENDPOINT / DRILL_HISTORY_S3_ACCESS_KEY_ID / ..._SECRET_ACCESS_KEY
                     (or the AWS_* variables), so ephemeral CI runners keep a trend.
tests/test_history_contract.py runs one contract suite against both."""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fixtures.config import ConfigError
from fixtures.s3 import s3_client


class History(ABC):
    @abstractmethod
    def append(self, record: dict[str, Any]) -> None: ...

    @abstractmethod
    def load(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""

    @property
    @abstractmethod
    def uri(self) -> str: ...


class FileHistory(History):
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def uri(self) -> str:
        return f"file:{self.path}"

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _drop_torn_tail(fd)
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> list[dict[str, Any]]:
        """Every whole record; a writer killed mid-append (SIGKILL can cut a large write short) leaves a
        torn last line, which is not a record and is dropped by the next append."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open("rb") as fh:
            for line in fh:
                if line.endswith(b"\n") and line.strip():
                    out.append(json.loads(line))
        return out


def _drop_torn_tail(fd: int) -> None:
    """Under the lock: cut a last line that has no newline (its writer died mid-write)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    block, end = 1 << 16, size
    while end > 0:
        start = max(0, end - block)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    os.ftruncate(fd, 0)


class S3History(History):
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def append(self, record: dict[str, Any]) -> None:
        key = f"{self.prefix}/{record.get('started_at', '')}-{uuid.uuid4().hex}.json".lstrip("/")
        self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(record, sort_keys=True).encode())

    def load(self) -> list[dict[str, Any]]:
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                body = self.client.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                out.append(json.loads(body))
        return sorted(out, key=lambda r: r.get("started_at", ""))


def open_history(uri: str, *, base: Path | None = None) -> History:
    parsed = urlparse(uri)
    location = uri[len("file:") :].removeprefix("//")
    if parsed.scheme == "file" and location:
        path = Path(location)
        return FileHistory(path if path.is_absolute() or base is None else base / path)
    if parsed.scheme == "s3" and parsed.netloc:
        env = os.environ.get
        client = s3_client(
            env("DRILL_HISTORY_S3_ENDPOINT") or None,
            env("DRILL_HISTORY_S3_ACCESS_KEY_ID") or env("AWS_ACCESS_KEY_ID"),
            env("DRILL_HISTORY_S3_SECRET_ACCESS_KEY") or env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_DEFAULT_REGION") or "us-east-1",
        )
        return S3History(parsed.netloc, parsed.path, client)
    raise ConfigError(
        f"drill_history={uri!r} is not a history location: use file:PATH (e.g. file:.drills/history.jsonl) "
        "or s3://BUCKET/PREFIX"
    )
