"""Layer 2, point-in-time recovery, on sqld's own mechanism: bottomless streams the WAL of every
namespace to the primary region's bucket in batches; a point in time is restored by forking a namespace
at a timestamp (admin `POST /v1/namespaces/NS/fork/NEW`). Before a point is relied on, the WAL up to it
is proven to be in S3 (a fork otherwise silently comes back older). Two recoveries build on a fork:
the in-place rewind (the live tables are made equal to the fork's) and the surgical repair (only the rows an
incident removed are copied back from the fork into the live database)."""

from __future__ import annotations

import base64
import contextlib
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from fixtures.digest import Row
from fixtures.hrana import HranaSession, Value
from fixtures.s3 import S3Endpoint, aws_region_name
from fixtures.schema import ROWID_ALIASES, quote
from fixtures.sqld import SqldServer

PITR_ARGS = ("--enable-namespaces", "--enable-bottomless-replication")
PRODUCTION_BATCH_INTERVAL = 15  # sqld's default LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS
_BATCH_KEY = re.compile(r"/(\d{12})-(\d{12})-(\d+)\.[a-z]+$")  # <first frame>-<last frame>-<flush second>.<codec>
FLUSH_MARGIN = 0.25  # seconds a local batch flush may take past its second
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class PitrError(RuntimeError):
    """Layer 2 cannot give what was asked; the message says why and what to do."""


class WalNotInS3(PitrError):
    """The WAL up to the requested point has not reached S3: a fork now would return older data."""


def namespace_headers(namespace: str) -> dict[str, str]:
    """sqld picks the namespace from this header (base64 without padding) when the Host does not name it."""
    return {"x-namespace-bin": base64.b64encode(namespace.encode()).decode().rstrip("=")}


def namespace_of(headers: Mapping[str, str]) -> str:
    """The namespace `namespace_headers` names (sqld's "default" when none is named)."""
    raw = headers.get("x-namespace-bin", "")
    return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode() if raw else "default"


def bottomless_env(endpoint: S3Endpoint, bucket: str, database_id: str, batch_interval: int) -> dict[str, str]:
    """The environment that makes sqld stream its WAL to `bucket` every `batch_interval` whole seconds."""
    if batch_interval < 1 or int(batch_interval) != batch_interval:
        raise PitrError(f"bottomless batch interval {batch_interval!r}: use whole seconds >= 1 (sqld exits on 0.5)")
    return {
        "LIBSQL_BOTTOMLESS_ENDPOINT": endpoint.url,
        "LIBSQL_BOTTOMLESS_AWS_ACCESS_KEY_ID": endpoint.access_key,
        "LIBSQL_BOTTOMLESS_AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "LIBSQL_BOTTOMLESS_AWS_DEFAULT_REGION": aws_region_name(endpoint.region),
        "LIBSQL_BOTTOMLESS_BUCKET": bucket,
        "LIBSQL_BOTTOMLESS_DATABASE_ID": database_id,
        "LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS": str(int(batch_interval)),
    }


def keep_for(s3: Any, bucket: str, days: float, batch_interval: int) -> str:
    """Layer 2's retention: a lifecycle rule expiring the bucket's objects after `days` (bottomless itself
    keeps every generation until deleted), read back from the store; the policy as results record it."""
    whole = max(1, math.ceil(days))  # S3 expiration is in whole days
    rule = {
        "ID": "drill-layer2-retention",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": whole},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    kept = [
        r["Expiration"]["Days"] for r in rules if r.get("Status") == "Enabled" and "Days" in r.get("Expiration", {})
    ]
    if not kept:
        raise PitrError(
            f"s3://{bucket}: the lifecycle rule did not hold (read back {rules!r}); layer 2 has no retention"
        )
    return f"continuous, WAL batches every {batch_interval}s, kept {min(kept):g} days (lifecycle rule, read back)"


def namespace_dir(server: SqldServer, namespace: str) -> Path:
    """A namespace's folder on this host (data, data-wal, wallog)."""
    return server.spec.storage / "db" / "dbs" / namespace


def fork_timestamp(instant: float) -> str:
    """The fork API's naive-UTC timestamp for an epoch instant (microseconds kept)."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def point_before(instant: float) -> float:
    """The newest restore point that surely excludes a change committed at or after `instant`.
    A fork at T applies every batch whose flush second is <= T, so a batch flushed a little after T
    still applies: only T < floor(instant) keeps the change's batch out. The state restored is that of
    the last batch flushed before floor(instant): granularity is the batch interval plus up to 1 s."""
    return float(math.floor(instant) - 1)


@dataclass(frozen=True)
class Batch:
    generation: str
    first_frame: int
    last_frame: int
    flushed_second: int
    modified: float  # epoch


@dataclass(frozen=True)
class UploadProof:
    """Evidence that the WAL up to `instant` is in S3."""

    instant: float
    local_frame: int  # the newest local WAL frame, read after `instant`
    uploaded_frame: int  # the newest frame in S3 (current generation)
    generation: str
    waited: float
    newest_flush_second: int

    def describe(self) -> dict[str, Any]:
        return {
            "local_frame": self.local_frame,
            "uploaded_frame": self.uploaded_frame,
            "generation": self.generation,
            "waited_seconds": round(self.waited, 3),
            "newest_batch_flushed": datetime.fromtimestamp(self.newest_flush_second, UTC).isoformat(),
        }


@dataclass(frozen=True)
class Fork:
    namespace: str
    requested: float  # the restore point asked for (epoch)
    timestamp: str  # as sent to sqld
    proof: UploadProof
    seconds: float
    attempts: int = 1  # fork requests it took (a failed restore is rolled back and tried again)


@dataclass(frozen=True)
class Layer2:
    """One namespace of a sqld streaming to `bucket`: uploads proven, forks at a time, namespaces made."""

    http_url: str
    admin_url: str
    namespace: str
    database_id: str
    bucket: str
    s3: Any  # a boto3 S3 client of the bucket's region
    batch_interval: int
    timeout: float = 30.0
    http: requests.Session = field(default_factory=requests.Session, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _NAMESPACE.match(self.namespace):
            raise PitrError(f"namespace {self.namespace!r}: use lowercase letters, digits, '-' or '_'")
        # sqld's admin port closes kept-alive connections (RemoteDisconnected on reuse, seen under forks and
        # checkpoints): a GET (metrics) is asked again; POSTs are retried where it is safe (_admin_tried)
        retry = Retry(total=3, connect=3, read=3, status=0, allowed_methods=frozenset({"GET"}), backoff_factor=0.05)
        for scheme in ("http://", "https://"):
            self.http.mount(scheme, HTTPAdapter(max_retries=retry))

    @property
    def db_name(self) -> str:
        """bottomless's name of this namespace (metrics label, S3 prefix before the generation)."""
        return f"ns-{self.database_id}:{self.namespace}"

    def headers(self, namespace: str | None = None) -> dict[str, str]:
        return namespace_headers(namespace or self.namespace)

    def session(self, namespace: str | None = None, timeout: float = 60.0) -> HranaSession:
        return HranaSession(self.http_url, timeout=timeout, headers=self.headers(namespace))

    # -- namespaces ----------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> requests.Response:
        response = self.http.request(method, f"{self.admin_url}{path}", json=body or {}, timeout=self.timeout)
        if response.status_code != 200:
            raise PitrError(f"{method} {path} answered HTTP {response.status_code}: {response.text[:300]}")
        return response

    def create(self, namespace: str | None = None) -> None:
        """Create the namespace; an existing local file in its folder is adopted (and snapshotted to S3)."""
        self._admin("POST", f"/v1/namespaces/{namespace or self.namespace}/create", {})

    def _admin_tried(self, method: str, path: str, body: Mapping[str, Any], attempts: int, what: str) -> int:
        """`_admin`, tried `attempts` times 0.25 s apart on a 500 or a kept-alive connection sqld closed;
        the attempts it took."""
        last, attempt = "", 0
        for attempt in range(1, attempts + 1):
            try:
                self._admin(method, path, body)
                return attempt
            except (PitrError, requests.ConnectionError) as exc:
                last = str(exc)
                if "HTTP 4" in last:  # a 4xx is an answer: trying again changes nothing
                    break
                if attempt < attempts:
                    time.sleep(0.25)
        raise PitrError(f"{what} failed {attempt} time(s): {last}"[:400])

    def checkpoint(self, attempts: int = 5) -> None:
        """A TRUNCATE checkpoint of the live namespace: bottomless starts a new generation. sqld sometimes
        answers 500 (busy readers; "disk I/O error" seen in containers) or drops a kept-alive connection."""
        self._admin_tried("POST", f"/v1/namespaces/{self.namespace}/checkpoint", {}, attempts,
                          f"checkpoint of {self.namespace}")  # fmt: skip

    def delete(self, namespace: str) -> None:
        """Delete a namespace this layer forked (never the live one); its S3 backup is kept."""
        if namespace == self.namespace:
            raise PitrError(f"refusing to delete the live namespace {namespace!r}")
        self._admin("DELETE", f"/v1/namespaces/{namespace}", {"keep_backup": True})

    # -- what reached S3 -----------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """This namespace's bottomless gauges and counters from /metrics, by metric name."""
        response = self.http.get(f"{self.admin_url}/metrics", timeout=self.timeout)
        response.raise_for_status()
        label = f'{{db_name="{self.db_name}"}}'
        out: dict[str, float] = {}
        for line in response.text.splitlines():
            name, _, value = line.partition(label)
            if value and name.startswith("bottomless_"):
                out[name] = float(value)
        return out

    def batches(self) -> list[Batch]:
        """Every WAL batch of this namespace in the bucket, all generations."""
        found: list[Batch] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.db_name}-"):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                m = _BATCH_KEY.search(key)
                if m:
                    generation = key[len(self.db_name) + 1 : key.index("/")]
                    found.append(Batch(generation, int(m[1]), int(m[2]), int(m[3]), obj["LastModified"].timestamp()))
        return found

    def current_batches(self) -> list[Batch]:
        """The batches of the newest generation (the one written most recently)."""
        all_batches = self.batches()
        if not all_batches:
            return []
        newest = max(all_batches, key=lambda b: (b.modified, b.flushed_second)).generation
        return sorted((b for b in all_batches if b.generation == newest), key=lambda b: b.last_frame)

    def confirm_uploaded(self, instant: float, timeout: float | None = None) -> UploadProof:
        """Block until every WAL batch a fork at `instant` would use is in S3, or raise WalNotInS3. The
        newest local frame is read after `instant`'s second closed; the proof is a batch in S3 reaching it."""
        budget = timeout if timeout is not None else self.batch_interval * 3 + 10
        started = time.monotonic()
        # A batch is keyed by the second it was flushed in, and the local frame gauge moves at flush time:
        # once instant's second has closed, every batch a fork at `instant` may use is flushed locally.
        wait = math.floor(instant) + 1 + FLUSH_MARGIN - time.time()
        if wait > 0:
            time.sleep(wait)
        local = int(self.metrics().get("bottomless_local_last_frame_no", 0))
        queue = 0.0
        batches: list[Batch] = []
        problem = ""
        while True:
            try:
                batches = self.current_batches()
            except (BotoCoreError, ClientError) as exc:  # S3 unreachable: nothing can be proven
                problem = f"; listing the bucket failed: {exc}"[:300]
            uploaded = batches[-1].last_frame if batches else 0
            queue = self.metrics().get("bottomless_s3_queue_size", 0.0)
            if batches and uploaded >= local:
                return UploadProof(instant, local, uploaded, batches[-1].generation, time.monotonic() - started,
                                   batches[-1].flushed_second)  # fmt: skip
            if time.monotonic() - started > budget:
                break
            time.sleep(min(0.1, self.batch_interval / 10))
        newest = (
            f"newest batch ends at frame {batches[-1].last_frame}, flushed "
            f"{datetime.fromtimestamp(batches[-1].flushed_second, UTC).isoformat()}"
            if batches
            else "no WAL batch in the bucket at all"
        )
        raise WalNotInS3(
            f"the WAL of {self.namespace} up to {fork_timestamp(instant)}Z (local frame {local}) has not reached "
            f"s3://{self.bucket} after {budget:g}s ({newest}; upload queue {queue:g}{problem}): a fork to that time would "
            "silently return older data. Check the S3 endpoint and sqld's log, then retry once the queue drains."
        )

    def earlier_points(self, before: float) -> list[float]:
        """The restore points older than the state a fork at `before` holds, newest first: the flush
        seconds of the batches in the bucket (every generation) before that state's batch. Each gives a
        different state; only batches change the rows (a new generation's snapshot holds the same rows)."""
        seconds = sorted({b.flushed_second for b in self.batches() if b.flushed_second <= before}, reverse=True)
        return [float(second) for second in seconds[1:]]

    def wait_for_batches(self, count: int, timeout: float) -> None:
        """Block until this namespace has at least `count` WAL batches in S3 (layer 2 is streaming)."""
        deadline = time.monotonic() + timeout
        while len(self.current_batches()) < count:
            if time.monotonic() > deadline:
                raise PitrError(
                    f"layer 2 uploaded fewer than {count} WAL batch(es) of {self.namespace} to s3://{self.bucket} "
                    f"in {timeout:g}s: check the bottomless settings and sqld's log"
                )
            time.sleep(0.05)

    def wait_for_flush(self, timeout: float) -> float:
        """Block until the next local batch flush (a batch boundary); its epoch instant."""
        name = "bottomless_local_flush_time_count"
        before = self.metrics().get(name, 0.0)
        deadline = time.monotonic() + timeout
        while self.metrics().get(name, 0.0) == before:
            if time.monotonic() > deadline:
                raise PitrError(f"no bottomless batch flush of {self.namespace} within {timeout:g}s")
            time.sleep(0.02)
        return time.time()

    # -- restores ----------------------------------------------------------------------------------------
    def fork(self, to: str, at: float, *, upload_timeout: float | None = None) -> Fork:
        """A new namespace `to` holding this namespace as of `at` (epoch), once the WAL up to `at` is
        proven in S3. The restored state is that of the last batch flushed in or before `at`'s second."""
        if at > time.time():
            raise PitrError(f"restore point {fork_timestamp(at)}Z is in the future: pick a time that has passed")
        if to == self.namespace or not _NAMESPACE.match(to) or to.startswith(f"{self.namespace}-"):
            # sqld 0.24 bug: deleting NS while a namespace NS-... exists leaves a tombstone that breaks NS
            raise PitrError(f"fork target {to!r}: use a new name that is not the live namespace or NS-...")
        proof = self.confirm_uploaded(at, upload_timeout)
        started = time.monotonic()
        stamp = fork_timestamp(at)
        # a restore that fails is rolled back by sqld (500 "early eof" seen once, right after 4 checkpoints)
        attempts = self._admin_tried("POST", f"/v1/namespaces/{self.namespace}/fork/{to}", {"timestamp": stamp}, 3,
                                     f"fork of {self.namespace} at {stamp}Z")  # fmt: skip
        return Fork(to, at, stamp, proof, time.monotonic() - started, attempts)


def quote_column(column: str) -> str:
    """A column for SQL text: rowid as the keyword (a quoted "rowid" could read as a column named so)."""
    return column if column.lower() in ROWID_ALIASES else quote(column)


def in_clause(columns: Sequence[str], keys: Sequence[tuple[Value, ...]]) -> tuple[str, list[Value]]:
    """`(a, b) IN (VALUES (?, ?), ...)` and its arguments; always false for no keys."""
    if not keys:
        return "0", []
    cols = ", ".join(quote_column(c) for c in columns)
    marks = ", ".join("(" + ", ".join("?" * len(columns)) + ")" for _ in keys)
    return f"({cols}) IN (VALUES {marks})", [v for key in keys for v in key]


@dataclass(frozen=True)
class RowScope:
    """Rows of one table an incident touched, picked by `by` (rowid, or the primary key of a WITHOUT ROWID
    table): what a surgical repair compares between the fork and the live database."""

    table: str
    by: tuple[str, ...]
    keys: tuple[tuple[Value, ...], ...]

    def where(self) -> tuple[str, list[Value]]:
        return in_clause(self.by, self.keys)

    def rows(self, s: HranaSession) -> dict[tuple[Value, ...], Row]:
        """key -> the row's stored values (`SELECT *` order), for the keys of the scope."""
        where, args = self.where()
        cols = ", ".join(quote_column(c) for c in self.by)
        found = s.execute(f"SELECT {cols}, * FROM {quote(self.table)} WHERE {where}", args).rows
        width = len(self.by)
        return {tuple(r[:width]): tuple(r[width:]) for r in found}

    def narrowed(self, keys: Sequence[tuple[Value, ...]]) -> RowScope:
        return RowScope(self.table, self.by, tuple(keys))


Keyed = list[tuple[tuple[Value, ...], Row]]


@dataclass(frozen=True)
class RepairPlan:
    """What a surgical repair writes: per table, rows to insert again and rows to set back (by key); the
    scope's keys no fork read so far can tell (`unresolved`), and the earlier points read for them."""

    insert: dict[str, Keyed]
    restore: dict[str, Keyed]
    unresolved: dict[str, list[tuple[Value, ...]]] = field(default_factory=dict)
    earlier: tuple[str, ...] = ()  # fork timestamps of the earlier restore points the plan also read

    @property
    def counts(self) -> dict[str, int]:
        return {t: len(self.insert.get(t, [])) + len(self.restore.get(t, []))
                for t in {*self.insert, *self.restore}}  # fmt: skip

    def unresolved_scopes(self, scopes: Sequence[RowScope]) -> tuple[RowScope, ...]:
        """The scopes narrowed to their unresolved keys (scopes with none left out), in the same order."""
        return tuple(s.narrowed(self.unresolved[s.table]) for s in scopes if self.unresolved.get(s.table))

    def then(self, older: RepairPlan, timestamp: str) -> RepairPlan:
        """This plan with what a fork at an earlier point (`timestamp`) gave for its unresolved keys."""

        def merged(mine: dict[str, Keyed], theirs: dict[str, Keyed]) -> dict[str, Keyed]:
            return {t: [*mine.get(t, []), *theirs.get(t, [])] for t in {*mine, *theirs}}

        return RepairPlan(merged(self.insert, older.insert), merged(self.restore, older.restore),
                          older.unresolved, (*self.earlier, timestamp))  # fmt: skip


def plan_repair(staging: HranaSession, live: HranaSession, scopes: Sequence[RowScope]) -> RepairPlan:
    """Within `scopes`: rows the fork holds and the live database lacks (the incident removed them), and
    rows that differ (a foreign key the incident's deletes set to NULL). Rows outside the scopes, and rows
    only the live database has, are never touched.

    Every key of a scope is a row the incident removed or changed, so the fork must hold it as it was
    before: a key whose fork row equals the live one (both absent, or the same values) is `unresolved`. The
    fork's state is then from after an earlier change of that row that a later write undid, e.g. a previous
    incident whose repair committed within a batch interval + 1 s of this incident (no restore point before
    this incident holds the repair yet); an earlier restore point may hold the row (layers/pitr_repair.py)."""
    insert: dict[str, Keyed] = {}
    restore: dict[str, Keyed] = {}
    unresolved: dict[str, list[tuple[Value, ...]]] = {}
    for scope in scopes:
        want, have = scope.rows(staging), scope.rows(live)
        insert[scope.table] = [(k, r) for k, r in want.items() if k not in have]
        restore[scope.table] = [(k, r) for k, r in want.items() if k in have and have[k] != r]
        unresolved[scope.table] = [k for k in scope.keys if want.get(k) == have.get(k)]
    return RepairPlan(insert, restore, {t: keys for t, keys in unresolved.items() if keys})


def _insert_sql(verb: str, table: str, by: Sequence[str], columns: Sequence[str]) -> str:
    """An insert of every column; rowid tables name the rowid too, so a row comes back under its own."""
    target = (["rowid"] if tuple(by) == ("rowid",) else []) + list(columns)
    return (
        f"{verb} INTO {quote(table)} ({', '.join(map(quote_column, target))}) VALUES ({', '.join('?' * len(target))})"
    )


def _insert_values(by: Sequence[str], key: tuple[Value, ...], row: Row) -> list[Any]:
    return [*(key if tuple(by) == ("rowid",) else ()), *row]


def apply_repair(
    live: HranaSession, plan: RepairPlan, scopes: Sequence[RowScope], columns: Mapping[str, Sequence[str]]
) -> int:
    """Write the plan in one transaction, in the scopes' order (parents first); rowid tables keep their
    rowids. Fails, and changes nothing, if a key to insert exists again (the live database moved on)."""
    count = 0
    live.execute("BEGIN IMMEDIATE")
    live.execute("PRAGMA defer_foreign_keys = ON")  # rows refer to each other (self-references): check at COMMIT
    try:
        for scope in scopes:
            names = list(columns[scope.table])
            insert = _insert_sql("INSERT", scope.table, scope.by, names)
            for key, row in plan.insert.get(scope.table, []):
                live.execute(insert, _insert_values(scope.by, key, row))
                count += 1
            sets = ", ".join(f"{quote(n)} = ?" for n in names)
            for key, row in plan.restore.get(scope.table, []):
                where, args = in_clause(scope.by, [key])
                live.execute(
                    f"UPDATE {quote(scope.table)} SET {sets} WHERE {where}", [*_insert_values((), (), row), *args]
                )
                count += 1
        live.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            live.execute("ROLLBACK")
        raise
    return count


def paged_rows(
    s: HranaSession, table: str, by: Sequence[str], page: int = 2000
) -> Iterator[tuple[tuple[Value, ...], Row]]:
    """Every row of the table as (key, row), in key order, `page` rows per request."""
    cols = ", ".join(quote_column(c) for c in by)
    width, head = len(by), f"SELECT {cols}, * FROM {quote(table)}"
    after: list[Value] | None = None
    while True:
        if after is None:
            rows = s.execute(f"{head} ORDER BY {cols} LIMIT {page}").rows
        else:
            marks = ", ".join("?" * width)
            rows = s.execute(f"{head} WHERE ({cols}) > ({marks}) ORDER BY {cols} LIMIT {page}", after).rows
        yield from ((tuple(r[:width]), tuple(r[width:])) for r in rows)
        if len(rows) < page:
            return
        after = list(rows[-1][:width])


def table_diff(
    staging: HranaSession, live: HranaSession, table: str, by: Sequence[str] = ("rowid",)
) -> tuple[list[tuple[tuple[Value, ...], Row]], list[tuple[Value, ...]]]:
    """(rows the live table must get, keys it must lose) to equal the staging table: a merge by key."""
    upsert: list[tuple[tuple[Value, ...], Row]] = []
    drop: list[tuple[Value, ...]] = []
    want, have = paged_rows(staging, table, by), paged_rows(live, table, by)
    a, b = next(want, None), next(have, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):  # type: ignore[operator]
            upsert.append(a)  # type: ignore[arg-type]
            a = next(want, None)
        elif a is None or b[0] < a[0]:  # type: ignore[operator]
            drop.append(b[0])
            b = next(have, None)
        else:
            if a[1] != b[1]:
                upsert.append(a)
            a, b = next(want, None), next(have, None)
    return upsert, drop


def rewind_in_place(
    staging: HranaSession, live: HranaSession, tables: Sequence[tuple[str, tuple[str, ...], Sequence[str]]]
) -> dict[str, tuple[int, int]]:
    """The in-place rewind: make each table (name, key columns, column names; parents first) in the live
    namespace equal to the staging fork, by key, in one transaction through sqld (bottomless streams it like
    any write; no restart). A file swap does not work with namespaces: on load bottomless sees the S3
    generation is newer than the swapped-in file and restores over it. Returns {table: (written, deleted)}."""
    diffs = {name: table_diff(staging, live, name, by) for name, by, _ in tables}
    live.execute("BEGIN IMMEDIATE")
    live.execute("PRAGMA defer_foreign_keys = ON")  # rows refer to each other (self-references): check at COMMIT
    try:
        for name, by, _ in reversed(tables):  # children first
            for key in diffs[name][1]:
                where, args = in_clause(by, [key])
                live.execute(f"DELETE FROM {quote(name)} WHERE {where}", args)
        for name, by, columns in tables:  # parents first
            insert = _insert_sql("INSERT OR REPLACE", name, by, columns)
            for key, row in diffs[name][0]:
                live.execute(insert, _insert_values(by, key, row))
        live.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            live.execute("ROLLBACK")
        raise
    return {name: (len(up), len(drop)) for name, (up, drop) in diffs.items()}
