"""The SqldServer contract, run against both backends (process and container), in the style of
Litestream's ReplicaClient integration suite: every backend must behave the same to the drills."""

from __future__ import annotations

import time

import pytest

from fixtures.binary import SQLD_VERSION
from fixtures.hrana import HranaSession, Value
from fixtures.seed import TABLES, SeedInfo, install_seed
from fixtures.sqld import SqldServer
from fixtures.wait import NotReady
from tests.servers import SqldFactory

ROWS = 25


def _write_rows(server: SqldServer, n: int = ROWS) -> None:
    with HranaSession(server.http_url) as s:
        s.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        for i in range(1, n + 1):
            s.execute("INSERT INTO notes (id, body) VALUES (?, ?)", [i, f"note {i}"])


def _rows(server: SqldServer) -> list[tuple[Value, ...]]:
    with HranaSession(server.http_url) as s:
        return s.execute("SELECT id, body FROM notes ORDER BY id").rows


def _expected(n: int = ROWS) -> list[tuple[Value, ...]]:
    return [(i, f"note {i}") for i in range(1, n + 1)]


def test_start_answers_health_and_reports_version(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    assert server.healthy()
    assert SQLD_VERSION in server.version()


def test_graceful_restart_keeps_data(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    _write_rows(server)
    server.stop()
    assert not server.healthy()
    server.start()
    assert _rows(server) == _expected()


def test_restart_after_kill_keeps_committed_data(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    _write_rows(server)
    server.kill()
    assert not server.healthy()
    server.start()
    assert _rows(server) == _expected()


def test_destroy_storage_removes_everything(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    _write_rows(server, 3)
    server.destroy_storage()
    assert not server.spec.storage.exists()
    assert not server.healthy()


def test_db_file_is_on_the_host_after_writes(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    _write_rows(server)
    assert server.db_file.is_file()
    assert server.db_file.is_relative_to(server.spec.storage)


def test_log_tail_is_not_empty(sqld_factory: SqldFactory) -> None:
    server = sqld_factory().start()
    _write_rows(server, 1)
    assert server.log_tail().strip()
    assert server.log_tail() != "(no log)"


def test_seeded_server_serves_the_seed(sqld_factory: SqldFactory, small_seed: SeedInfo) -> None:
    server = sqld_factory("seeded")
    install_seed(small_seed, server.db_file)
    server.start()
    with HranaSession(server.http_url) as s:
        counts = {t: s.execute(f"SELECT count(*) FROM {t}").rows[0][0] for t in TABLES}
    assert counts == {t: d.count for t, d in small_seed.tables.items()}
    assert counts["customers"] == 120


def test_bad_argument_fails_fast_with_the_log(sqld_factory: SqldFactory) -> None:
    server = sqld_factory("bad", args=("--no-such-flag",), startup_timeout=60)
    started = time.monotonic()
    with pytest.raises(NotReady) as failure:
        server.start()
    assert time.monotonic() - started < 20, "a server that cannot start must fail before the startup timeout"
    assert "unexpected argument '--no-such-flag'" in str(failure.value)  # sqld's own words, from its log
    assert not server.healthy()
