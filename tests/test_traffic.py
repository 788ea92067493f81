"""The application's side of a drill: concurrent writer streams judged on their own and across each other,
the service address re-pointed as a failover would, reads judged against the ledger, the load actually
held and the two outage clocks compared, and a drill that asks for more load than it gets failing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import service_address
from fixtures.ledger import Ledger, RowChange, assess
from fixtures.readers import Read, Reader, judge_reads
from fixtures.reaper import SESSION_ENV, Reaper
from fixtures.service_address import ServiceAddress
from fixtures.service_proxy import ServiceProxy
from fixtures.traffic import AppView
from scenarios.service import load_held, outage_agrees
from tests.drillrun import run_pytest


def _write(ledger: Ledger, stream: int, key: int, sent: float, acked: float) -> None:
    ledger.record("place", (RowChange("t", key, (key, stream)),), acked, stream=stream, sent_at=sent)


def test_streams_are_judged_on_their_own_so_reordered_acks_are_no_loss() -> None:
    ledger = Ledger()
    # two writers in flight together: B's write committed first but its ack arrived after A's
    _write(ledger, 0, 1, sent=1.0, acked=1.2)
    _write(ledger, 1, 101, sent=1.05, acked=1.25)
    _write(ledger, 0, 2, sent=1.3, acked=1.5)
    _write(ledger, 1, 102, sent=1.31, acked=1.4)  # acked before A's key 2, recorded after
    observed: dict[tuple[str, object], tuple[object, ...] | None] = {
        ("t", 1): (1, 0),
        ("t", 101): (101, 1),
        ("t", 102): (102, 1),
    }  # A's key 2 was in flight
    loss = assess(ledger.writes, observed)
    assert [w.changes[0].key for w in loss.lost] == [2] and loss.holes == (), loss


def test_a_write_kept_while_an_earlier_acknowledged_one_of_another_stream_is_lost_is_a_hole() -> None:
    ledger = Ledger()
    _write(ledger, 0, 1, sent=1.0, acked=1.1)
    _write(ledger, 1, 101, sent=2.0, acked=2.1)  # sent after stream 0's write was acknowledged
    loss = assess(ledger.writes, {("t", 101): (101, 1)})
    assert [w.changes[0].key for w in loss.lost] == [1] and [w.changes[0].key for w in loss.holes] == [1]


@pytest.fixture
def echo_servers() -> Iterator[list[tuple[str, int]]]:
    """Two TCP servers on 127.0.0.1 answering each connection with their name."""
    servers, stop = [], threading.Event()
    for name in (b"one", b"two"):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)

        def serve(lst: socket.socket = listener, tag: bytes = name) -> None:
            while not stop.is_set():
                try:
                    conn, _ = lst.accept()
                except OSError:
                    continue
                conn.sendall(tag)
                threading.Thread(target=lambda c=conn: (c.recv(10), c.close()), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        servers.append(listener.getsockname())
    yield servers
    stop.set()


def _hello(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock, sock.recv(10)


@pytest.mark.parametrize("kind", [ServiceAddress, ServiceProxy], ids=["own process", "in process"])
def test_the_service_address_follows_a_repoint_and_drains_open_connections(
    echo_servers: list[tuple[str, int]], kind: type[ServiceAddress] | type[ServiceProxy]
) -> None:
    proxy = kind(echo_servers[0])
    try:
        held, first = _hello(proxy.port)
        assert first == b"one"
        proxy.repoint(echo_servers[0])  # the same server again: nothing is dropped
        held.sendall(b"x")
        proxy.repoint(echo_servers[1])
        assert held.recv(10) == b"", "an open connection survived the failover"
        assert _hello(proxy.port)[1] == b"two"
    finally:
        proxy.close()


def test_the_proxy_forwards_small_writes_at_once_and_keeps_idle_connections(
    echo_servers: list[tuple[str, int]],
) -> None:
    """TCP_NODELAY on both legs (a request written in two parts otherwise waited ~40 ms for a delayed ACK:
    every read and health probe through the service address did) and no timeout on an idle connection."""
    proxy = ServiceProxy(echo_servers[0])
    try:
        held, _ = _hello(proxy.port)
        with proxy._lock:
            legs = list(proxy._open)
        assert len(legs) == 2
        for leg in legs:
            assert leg.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert leg.gettimeout() is None
        held.close()
    finally:
        proxy.close()


def test_the_service_address_process_is_tracked_and_ends_with_close(
    echo_servers: list[tuple[str, int]], tmp_path: Path
) -> None:
    reaper = Reaper(tmp_path)
    address = ServiceAddress(echo_servers[0], reaper=reaper)
    record = reaper.dir / f"pid-{address.pid}"
    assert record.read_text() == "service-proxy"
    assert f"{SESSION_ENV}={reaper.session}".encode() in Path(f"/proc/{address.pid}/environ").read_bytes()
    held, _ = _hello(address.port)
    address.close()
    assert held.recv(10) == b"", "a connection outlived the proxy"
    assert not record.exists() and not Path(f"/proc/{address.pid}").exists()


def test_a_service_proxy_that_cannot_start_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_address, "PROXY", Path("/nonexistent/service_proxy.py"))
    with pytest.raises(RuntimeError, match=r"service proxy .* answered '' instead of 'listening'"):
        ServiceAddress(("127.0.0.1", 9))


def test_reads_are_judged_against_the_ledger() -> None:
    ledger = Ledger()
    _write(ledger, 0, 1, sent=1.0, acked=1.1)
    reader = Reader("http://127.0.0.1:9", ledger, _schema(), rate=1, headers={})
    reader.reads += [Read(1.2, ("t", 1), (1, 0)), Read(1.3, ("t", 1), (1, 99))]
    verdict = judge_reads([reader], ledger, recovered_at=None, expected={})
    assert verdict.wrong == ("('t', 1): read (1, 99), a row the ledger never wrote",)
    reader.reads[1:] = [Read(3.0, ("t", 1), None)]  # after the recovery, a row the recovered state holds
    assert not judge_reads([reader], ledger, recovered_at=2.0, expected={("t", 1): None}).wrong  # lost, measured
    missing = judge_reads([reader], ledger, recovered_at=2.0, expected={("t", 1): (1, 0)})
    assert missing.wrong and "missing after the recovery" in missing.wrong[0]


def _schema():  # type: ignore[no-untyped-def]
    import sqlite3

    from fixtures.schema import introspect

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, stream INTEGER)")
    return introspect(db)


def _view(**kw: object) -> AppView:
    base = {"requested_rate": 100.0, "achieved_rate": 95.0, "longest_stall": 0.2, "latency_before": None, "latency_after": None,
            "last_ack_before": 10.0, "first_failure": 10.05, "first_ack_after": 12.0}  # fmt: skip
    return AppView(**{**base, **kw})  # type: ignore[arg-type]


def test_load_held_and_the_two_outage_clocks() -> None:
    assert load_held(_view(), 4).ok and not load_held(_view(achieved_rate=80.0), 4).ok
    assert (
        "80 writes/s acknowledged before the damage of 100 requested" in load_held(_view(achieved_rate=80.0), 4).detail
    )
    stalled = load_held(_view(achieved_rate=40.0, longest_stall=4.94), 4)
    assert not stalled.ok and stalled.detail.endswith("; no write was acknowledged for 4.94s)"), stalled.detail
    assert "acknowledged for" not in load_held(_view(achieved_rate=80.0), 4).detail  # no stall worth naming
    # damage at 10.0, re-pointed at 12.0 (RTO 2.0): the application's 1.95 s agrees
    assert outage_agrees(_view(), rto=2.0, failure_at=10.0, probe_interval=0.2).ok
    late = outage_agrees(_view(first_ack_after=14.0), rto=2.0, failure_at=10.0, probe_interval=0.2)
    assert not late.ok and "+2.00s apart" in late.detail
    assert not outage_agrees(_view(first_ack_after=None), rto=2.0, failure_at=10.0, probe_interval=0.2).ok
    kept = outage_agrees(_view(first_failure=None), rto=2.0, failure_at=10.0, probe_interval=0.2)
    assert kept.ok and "kept serving" in kept.detail


def test_a_drill_under_less_load_than_asked_for_fails_load_held(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=process", "--drill-writer-rate=20000"], tmp_path)
    assert run.returncode == 1, run.output[-3000:]
    (record,) = run.history
    load = next(c for c in record["checks"] if c["name"] == "load_held")
    assert not load["ok"] and "of 20000 requested over 1 writer(s)" in load["detail"], load
    assert record["details"]["load"]["requested_rate"] == 20000.0 and record["details"]["load"]["achieved_rate"] > 0
    assert 0 < record["details"]["load"]["longest_stall_s"] < 5, record["details"]["load"]
