"""Layer 2 (layers/pitr.py) against a real sqld streaming to a real moto_server: what a fork at a point
holds, the upload proof (and its refusal when S3 is gone), the surgical repair and the in-place rewind."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.binary import sqld_binary
from fixtures.digest import TableDigest
from fixtures.hrana import HranaError
from fixtures.s3 import MOTO_CREDENTIALS, MotoServer, Region, S3Endpoint
from fixtures.seed import TABLES, SeedInfo, install_seed
from fixtures.sqld import SqldServer, SqldSpec
from fixtures.sqld_process import ProcessSqld
from layers.pitr import (
    PITR_ARGS,
    Layer2,
    PitrError,
    RepairPlan,
    RowScope,
    WalNotInS3,
    apply_repair,
    bottomless_env,
    fork_timestamp,
    namespace_dir,
    namespace_headers,
    plan_repair,
    point_before,
    rewind_in_place,
    table_diff,
)
from layers.pitr_repair import RepairSource, plan_across_points
from layers.verify import scan


@dataclass
class Streaming:
    moto: MotoServer
    server: SqldServer
    layer2: Layer2


@pytest.fixture
def streaming(tmp_path: Path, small_seed: SeedInfo) -> Iterator[Streaming]:
    """A sqld whose namespace `shop` (the small seed) streams to its own moto_server, batch interval 1 s."""
    moto = MotoServer("us-east", tmp_path / "moto.log").start()
    server: SqldServer | None = None
    try:
        region = Region("us-east", S3Endpoint("us-east", moto.url, *MOTO_CREDENTIALS), moto)
        bucket = region.new_bucket("test", "layer2")
        spec = SqldSpec("pitr", tmp_path / "pitr", tmp_path / "pitr.log",
                        env=bottomless_env(region.endpoint, bucket, "test", 1), args=PITR_ARGS)  # fmt: skip
        server = ProcessSqld(spec, binary=str(sqld_binary()))
        install_seed(small_seed, namespace_dir(server, "shop") / "data")
        server.start()
        layer2 = Layer2(server.http_url, server.admin_url, "shop", "test", bucket, region.client(), 1)
        layer2.create()
        yield Streaming(moto, server, layer2)
    finally:
        if server is not None:
            server.kill()
        moto.kill()


def _digests(layer2: Layer2, namespace: str | None = None) -> dict[str, TableDigest]:
    with layer2.session(namespace) as s:
        return {t: scan(s, t, set())[0] for t in TABLES}


def _write_marks(layer2: Layer2, seconds: float) -> list[tuple[int, float, float]]:
    """Insert a row every 50 ms into table t: (id, sent, acknowledged) per row."""
    marks = []
    with layer2.session() as s:
        s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at REAL)")
        end, i = time.time() + seconds, 0
        while time.time() < end:
            sent = time.time()
            s.execute("INSERT INTO t VALUES (?, ?)", [i, sent])
            marks.append((i, sent, time.time()))
            i += 1
            time.sleep(0.05)
    return marks


def test_plain_helpers() -> None:
    assert namespace_headers("shop") == {"x-namespace-bin": "c2hvcA"}
    assert base64.b64decode(namespace_headers("pitr-staging")["x-namespace-bin"] + "==") == b"pitr-staging"
    assert fork_timestamp(0.5) == "1970-01-01T00:00:00.500000"
    assert point_before(100.0) == 99.0 and point_before(100.99) == 99.0
    endpoint = S3Endpoint("eu-west", "http://127.0.0.1:1", "k", "s")
    env = bottomless_env(endpoint, "bucket", "db", 15)
    assert env["LIBSQL_BOTTOMLESS_AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS"] == "15"
    for bad in (0, 0.5):
        with pytest.raises(PitrError, match="whole seconds"):
            bottomless_env(endpoint, "bucket", "db", bad)  # type: ignore[arg-type]


def test_metrics_are_asked_again_when_sqld_drops_the_connection() -> None:
    """sqld's admin port closes kept-alive connections; a GET that meets one (no response at all) is retried."""
    listener = socket.create_server(("127.0.0.1", 0))
    body = b'bottomless_local_last_frame_no{db_name="ns-test:shop"} 42\n'

    def serve() -> None:
        for n in range(2):
            conn, _ = listener.accept()
            conn.recv(4096)
            if n:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            conn.close()  # the first connection: dropped without a response

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert Layer2(url, url, "shop", "test", "bucket", None, 1, timeout=5).metrics() == {
            "bottomless_local_last_frame_no": 42.0
        }
    finally:
        thread.join(timeout=5)
        listener.close()


def test_fork_holds_the_point_and_nothing_from_the_incident_on(streaming: Streaming) -> None:
    layer2 = streaming.layer2
    marks = _write_marks(layer2, 3.5)
    incident_id, incident_at, _ = marks[-15]  # a commit ~0.75 s before the writes stop
    fork = layer2.fork("pitr-staging", point_before(incident_at))
    assert fork.proof.uploaded_frame >= fork.proof.local_frame > 0
    with layer2.session("pitr-staging") as s:
        ids = [int(r[0]) for r in s.execute("SELECT id FROM t ORDER BY id").rows]  # type: ignore[arg-type]
    assert ids == list(range(len(ids))), "a fork is a clean prefix of the commits"
    assert ids and ids[-1] < incident_id, "the incident's commit must not be in the fork"
    newest_ack = marks[ids[-1]][2]
    # granularity: the fork state is the last batch flushed before the incident's second (interval 1 s)
    assert incident_at - newest_ack < 1 + 1 + 0.5, (incident_at, newest_ack)
    assert _digests(layer2, "pitr-staging")["orders"] == _digests(layer2)["orders"]


def test_no_fork_when_the_wal_has_not_reached_s3(streaming: Streaming) -> None:
    layer2 = streaming.layer2
    _write_marks(layer2, 1.5)
    streaming.moto.kill()  # S3 is gone; the application keeps writing
    marks = _write_marks_more(layer2, 1.5)
    with pytest.raises(WalNotInS3, match="has not reached"):
        layer2.confirm_uploaded(marks[-1], timeout=2)
    with pytest.raises(WalNotInS3, match="silently return older data"):
        layer2.fork("pitr-staging", marks[-1], upload_timeout=2)


def _write_marks_more(layer2: Layer2, seconds: float) -> list[float]:
    acks = []
    with layer2.session() as s:
        end = time.time() + seconds
        while time.time() < end:
            s.execute("INSERT INTO t (at) VALUES (?)", [time.time()])
            acks.append(time.time())
            time.sleep(0.05)
    return acks


def test_fork_refuses_future_points_and_unsafe_names(streaming: Streaming) -> None:
    layer2 = streaming.layer2
    with pytest.raises(PitrError, match="in the future"):
        layer2.fork("pitr-staging", time.time() + 60)
    for name in ("shop", "shop-pitr", "Bad Name"):
        with pytest.raises(PitrError):
            layer2.fork(name, time.time() - 1)
    with pytest.raises(PitrError, match="refusing to delete the live namespace"):
        layer2.delete("shop")


def test_surgical_repair_puts_back_exactly_the_removed_rows(streaming: Streaming, small_seed: SeedInfo) -> None:
    layer2 = streaming.layer2
    _write_marks(layer2, 2.5)
    layer2.wait_for_batches(1, timeout=10)
    picked = (("orders", "id IN (3, 7)"), ("order_items", "order_id IN (3, 7) OR id = 11"),
              ("attachments", "order_id IN (3, 7)"))  # fmt: skip
    with layer2.session() as s:
        s.execute("INSERT INTO orders VALUES (900001, 1, 'new', 10, NULL, 'x', 1)")  # a later write to keep
        scopes = tuple(RowScope(t, ("rowid",), tuple(tuple(r) for r in s.execute(f"SELECT rowid FROM {t} WHERE {w}").rows))
                       for t, w in picked)  # fmt: skip
        incident_at = time.time()
        removed = sum(s.execute(f"DELETE FROM {t} WHERE {w}").affected for t, w in reversed(picked))
    layer2.fork("pitr-staging", point_before(incident_at))
    columns = {t: [c.name for c in small_seed.schema.table(t).columns] for t, _ in picked}
    with layer2.session("pitr-staging") as staging, layer2.session() as live:
        plan = plan_repair(staging, live, scopes)
        assert sum(plan.counts.values()) == removed > 0 and not any(plan.restore.values())
        assert apply_repair(live, plan, scopes, columns) == removed
        with pytest.raises(HranaError, match="CONSTRAINT"):
            apply_repair(live, plan, scopes, columns)  # the keys exist again: refuse, change nothing
        assert live.execute("SELECT count(*) FROM orders WHERE id = 900001").rows == [(1,)]
    after = _digests(layer2)
    for table in ("attachments", "order_items"):
        assert after[table] == small_seed.tables[table]
    assert after["orders"] == small_seed.tables["orders"].add((900001, 1, "new", 10, None, "x", 1))


def test_rewind_in_place_makes_the_live_tables_equal_to_the_fork(streaming: Streaming, small_seed: SeedInfo) -> None:
    layer2 = streaming.layer2
    _write_marks(layer2, 1.2)
    point = time.time()
    time.sleep(1.2)
    with layer2.session() as s:
        s.execute("DELETE FROM order_items WHERE order_id = 5")
        s.execute("DELETE FROM attachments WHERE order_id = 5")
        s.execute("UPDATE orders SET status = 'cancelled', version = 9 WHERE id = 5")
        s.execute("INSERT INTO orders VALUES (900002, 2, 'new', 10, NULL, 'x', 1)")
    layer2.fork("pitr-staging", point)
    with layer2.session("pitr-staging") as staging, layer2.session() as live:
        assert table_diff(staging, live, "orders")[1] == [(900002,)]
        spec = [(t, ("rowid",), [c.name for c in small_seed.schema.table(t).columns]) for t in TABLES]
        changed = rewind_in_place(staging, live, spec)
        assert changed["orders"] == (1, 1)
        assert all(table_diff(staging, live, t) == ([], []) for t in TABLES)
    assert _digests(layer2) == _digests(layer2, "pitr-staging")


def _at_second(offset: float) -> None:
    """Sleep until `offset` seconds past the next whole second."""
    now = time.time()
    time.sleep(math.floor(now) + 1 + offset - now)


def _names(prefix: str) -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def test_a_second_incident_right_after_a_repair_gets_every_row_back(streaming: Streaming, small_seed: SeedInfo) -> None:
    """Regression (the random-sequence drill's loss on the own-schema seed): rows deleted, repaired from a
    fork, and deleted again within a batch interval + 1 s of the repair. The fork before the second incident
    (point_before: the last batch flushed before the incident's second) is then from between the first
    incident and its repair: it lacks those rows too. A repair that only copied what that fork holds came
    back short with nothing lost from the ledger; the repair reads an earlier point for them."""
    layer2 = streaming.layer2
    _write_marks(layer2, 2.5)
    layer2.wait_for_batches(1, timeout=10)
    picked = (("orders", "id IN (3, 7)"), ("order_items", "order_id IN (3, 7)"), ("attachments", "order_id IN (3, 7)"))
    columns = {t: [c.name for c in small_seed.schema.table(t).columns] for t, _ in picked}
    with layer2.session() as s:
        scopes = tuple(RowScope(t, ("rowid",), tuple(tuple(r) for r in s.execute(f"SELECT rowid FROM {t} WHERE {w}").rows))
                       for t, w in picked)  # fmt: skip

    def incident() -> float:
        with layer2.session() as s:
            at = time.time()
            s.execute("BEGIN IMMEDIATE")
            for t, w in reversed(picked):
                s.execute(f"DELETE FROM {t} WHERE {w}")
            s.execute("COMMIT")
        return at

    names = _names("pitr-staging")

    def repair(at: float) -> tuple[RepairPlan, float]:
        source = RepairSource(layer2, layer2.fork(names(), point_before(at)), at, names)
        with layer2.session() as live:
            plan = plan_across_points(source, live, scopes)
            apply_repair(live, plan, scopes, columns)
        return plan, time.time()

    _at_second(0.1)
    first = incident()  # flushed in its own second or the next one
    _at_second(1.02)  # the repair commits early in a second: its batch is flushed in that second or later
    plan, repaired = repair(first)
    assert not plan.unresolved and not plan.earlier, plan
    second = incident()  # same second as the repair: point_before(second) excludes the repair's batch
    assert math.floor(second) == math.floor(repaired), "timing: the second incident must follow the repair closely"
    plan, _ = repair(second)
    flushed = sorted({b.flushed_second for b in layer2.batches()})
    evidence = (f"first incident {first:.3f}, repaired {repaired:.3f}, second incident {second:.3f}, second fork "
                f"at {point_before(second)}, batch flush seconds {flushed[-6:]}, plan {plan.counts} {plan.earlier}")  # fmt: skip
    assert _digests(layer2) == {t: small_seed.tables[t] for t in TABLES}, evidence
    assert len(plan.earlier) >= 1 and sum(plan.counts.values()) == sum(len(s.keys) for s in scopes), evidence


def test_a_repair_refuses_rows_no_restore_point_holds(streaming: Streaming, small_seed: SeedInfo) -> None:
    """A row written after every restore point (inserted, then deleted by the incident within the same
    second) cannot be told from any fork: the repair names it and writes nothing, not a short repair. A fork
    that is not before the incident is refused (its missing rows may be the incident's own work)."""
    layer2 = streaming.layer2
    _write_marks(layer2, 2.5)
    layer2.wait_for_batches(1, timeout=10)
    with layer2.session() as s:
        s.execute("INSERT INTO orders VALUES (900003, 1, 'new', 10, NULL, 'x', 1)")
        scopes = (RowScope("orders", ("id",), ((900003,),)),)
        at = time.time()
        s.execute("DELETE FROM orders WHERE id = 900003")
    names = _names("pitr-staging")
    source = RepairSource(layer2, layer2.fork(names(), point_before(at)), at, names, lookback=2)
    with layer2.session() as live:
        with pytest.raises(PitrError, match=r"cannot tell what orders: 1 key\(s\) \[\(900003,\)\]"):
            plan_across_points(source, live, scopes)
        after = dataclasses.replace(source, incident_at=source.fork.requested)  # the fork holds the incident's second
        with pytest.raises(PitrError, match="may hold the incident"):
            plan_across_points(after, live, scopes)
        assert live.execute("SELECT count(*) FROM orders WHERE id = 900003").rows == [(0,)]
