"""Reading a team's backup source without ever writing it: the one S3 client of a restore test (endpoint
from --s3-endpoint, credentials from DRILL_SOURCE_* or AWS_*), a read-only store wrapper, and what a
restore of any source kind hands to the checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from fixtures.s3 import s3_client
from layers.store import ObjectInfo, ObjectStore


class SourceError(ValueError):
    """The source cannot be read as asked; the message names the problem and the fix."""


class RestoreFailed(RuntimeError):
    """The source was read but did not restore: the restore test fails (and is recorded as failed)."""


@dataclass(frozen=True)
class Restored:
    """What a restore into the staging sqld did."""

    source: str  # as given, without credentials
    bytes: int  # read from the source
    seconds: float  # from the first read to a serving staging sqld
    achieved: datetime | None  # the recovery point restored (None when the source does not say)
    details: dict[str, Any] = field(default_factory=dict)  # chosen dump, generation, newest batch, ...
    problems: tuple[str, ...] = ()  # what makes the restore incomplete (gaps, unreadable objects)


def source_client(endpoint: str | None) -> Any:
    """The S3 client of the source; short timeouts so an unreachable endpoint fails in seconds."""
    env = os.environ.get
    return s3_client(
        endpoint,
        env("DRILL_SOURCE_ACCESS_KEY_ID") or env("AWS_ACCESS_KEY_ID"),
        env("DRILL_SOURCE_SECRET_ACCESS_KEY") or env("AWS_SECRET_ACCESS_KEY"),
        env("AWS_DEFAULT_REGION") or "us-east-1",
        connect_timeout=5,
        read_timeout=60,
    )


def split_s3(location: str) -> tuple[str, str]:
    """'s3://BUCKET/PREFIX' -> (BUCKET, PREFIX)."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


class ReadOnlyStore(ObjectStore):
    """Lets a restore read the source and nothing else."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    @property
    def url(self) -> str:
        return self.inner.url

    def put(self, key: str, source: IO[bytes], metadata: dict[str, str] | None = None) -> None:
        raise PermissionError(f"refusing to write {key} to the source {self.url}: a restore test is read-only")

    def delete(self, key: str) -> None:
        raise PermissionError(f"refusing to delete {key} from the source {self.url}: a restore test is read-only")

    def get(self, key: str, sink: IO[bytes]) -> dict[str, str]:
        return self.inner.get(key, sink)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self.inner.list(prefix)
