"""The runner under network faults and crashes (tests/faultproxy.py between it and S3): transient faults
are retried away (botocore's standard retry mode, s3transfer's download retries), persistent ones fail
with a message naming what could not be read, a partial object is never catalogued, a server killed
mid-restore or a runner killed mid-backup leaves the catalog whole, and a SIGKILL during heavy history
appends leaves only whole JSON lines. Each case prints one row of the fault table (run with -s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fixtures.hrana
from fixtures.config import Scale
from fixtures.s3 import MOTO_CREDENTIALS, Region, S3Endpoint
from fixtures.seed import SeedInfo, build_seed
from fixtures.sqld import SqldServer
from layers.backup import (
    BACKUPS,
    CATALOG,
    BackupCatalog,
    BackupScheduler,
    NoUsableBackup,
    download_verified,
    take_backup,
)
from layers.notify import JsonlNotifier
from layers.policy import Policy
from layers.recovery import Gate, RestoreIncomplete, restore_first
from layers.store import S3Store
from reports.history import FileHistory
from tests.drillrun import ROOT
from tests.faultproxy import Fault, FaultProxy
from tests.servers import SqldFactory, restore_catalog, seeded_process
from tests.test_backup import table_digests


@pytest.fixture(scope="module")
def seed() -> SeedInfo:
    """The default drill scale (2MB): its backup is large enough to be cut in the middle."""
    return build_seed(ROOT / ".drills" / "cache", Scale(target_bytes=2_000_000))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, seed: SeedInfo) -> Iterator[SqldServer]:
    with seeded_process(tmp_path_factory.mktemp("source"), seed) as server:
        yield server


@pytest.fixture
def proxy(moto_region: Region) -> Iterator[FaultProxy]:
    with FaultProxy.for_url(moto_region.endpoint.url, lifetime=600) as p:
        yield p


@pytest.fixture
def bucket(moto_region: Region, request: pytest.FixtureRequest) -> Iterator[str]:
    name = moto_region.new_bucket("faults", request.node.name[-20:])
    try:
        yield name
    finally:
        moto_region.delete_bucket(name)


def _catalog(url: str, bucket: str, **client: float) -> BackupCatalog:
    return BackupCatalog(S3Store(S3Endpoint("us-east", url, *MOTO_CREDENTIALS).client(**client), bucket))


def _whole(direct: BackupCatalog) -> tuple[int, int, list[str]]:
    """(catalog entries, backup objects, problems) read directly (no proxy): every entry must have its
    complete object (checksum holds) — a partial object is never catalogued."""
    import tempfile

    problems = []
    entries = direct.entries()
    for entry in entries:
        with tempfile.TemporaryFile() as spool:
            problem = download_verified(direct, entry, spool)
            if problem:
                problems.append(f"{entry.id}: {problem}")
    return len(entries), len(direct.store.list(BACKUPS)), problems


def _row(fault: str, step: str, did: str, lost: str) -> None:
    print(f"\nFAULT-TABLE | {fault} | {step} | {did} | {lost} |")


# -- layer 1 backup ----------------------------------------------------------------------------------
TRANSIENT_UPLOAD = [
    Fault("cut", "up", after_bytes=100_000, times=1),
    Fault("reset", "up", after_bytes=100_000, times=1),
    Fault("reset", "up", after_bytes=0, times=2),
    Fault("stall", "down", seconds=2.5, times=1),  # the PUT's answer is late: read timeout, retry
    Fault("limit", "up", rate=2_000_000),
]


@pytest.mark.parametrize("fault", TRANSIENT_UPLOAD, ids=lambda f: f.label.replace(" ", "-"))
def test_backup_survives_a_transient_fault(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, fault: Fault
) -> None:
    proxy.set(fault)
    started = time.monotonic()
    timeouts = {"read_timeout": 1} if fault.kind == "stall" else {}  # a short timeout turns a stall into a retry
    entry = take_backup(source.http_url, _catalog(proxy.url, bucket, **timeouts), sqld_version="v")
    seconds = time.monotonic() - started
    assert proxy.stats.hits >= 1, f"the fault {fault.label} never acted (test premise)"
    entries, objects, problems = _whole(_catalog(moto_region.endpoint.url, bucket))
    assert (entries, objects, problems) == (1, 1, [])
    did = "completed at the limit" if fault.kind == "limit" else f"retried ({proxy.stats.hits} hit)"
    _row(fault.label, "layer-1 backup", f"{did}, backup {entry.bytes} B catalogued in {seconds:.2f}s", "nothing")


PERSISTENT_UPLOAD = [
    Fault("cut", "up", after_bytes=200_000),
    Fault("reset", "up", after_bytes=200_000),
    Fault("reset", "up", after_bytes=0),
]


@pytest.mark.parametrize("fault", PERSISTENT_UPLOAD, ids=lambda f: f.label.replace(" ", "-"))
def test_backup_under_a_persistent_fault_fails_and_catalogues_nothing(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, fault: Fault
) -> None:
    proxy.set(fault)
    with pytest.raises(Exception) as failed:
        take_backup(source.http_url, _catalog(proxy.url, bucket), sqld_version="v")
    assert proxy.stats.hits >= 2, "botocore should have retried"
    direct = _catalog(moto_region.endpoint.url, bucket)
    assert _whole(direct) == (0, 0, []), "a partial upload must leave neither entry nor object"
    assert direct.store.list(CATALOG) == []
    _row(fault.label, "layer-1 backup", f"{proxy.stats.hits} attempts, then {failed.type.__name__}; no entry",
         "no backup this cycle (previous ones intact)")  # fmt: skip


def test_scheduler_notifies_failures_and_recovers_when_the_network_does(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, tmp_path: Path
) -> None:
    notifier = JsonlNotifier(tmp_path / "notifications.jsonl")
    proxy.set(Fault("reset", "up", after_bytes=0))
    scheduler = BackupScheduler(
        source.http_url, _catalog(proxy.url, bucket), Policy(interval_seconds=0.3), notifier, sqld_version="v"
    ).start()
    try:
        deadline = time.monotonic() + 60
        while scheduler.failed < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler.failed >= 2 and scheduler.succeeded == 0
        assert _whole(_catalog(moto_region.endpoint.url, bucket)) == (0, 0, [])
        proxy.clear()
        assert scheduler.wait_for(1, timeout=60)
    finally:
        scheduler.stop()
    failures = [e for e in notifier.events() if e.kind == "failure"]
    assert len(failures) >= 2 and all(e.error for e in failures)
    entries, objects, problems = _whole(_catalog(moto_region.endpoint.url, bucket))
    assert entries >= 1 and objects == entries and problems == []
    _row("reset up at 0 B (outage), then pass", "layer-1 scheduler",
         f"{len(failures)} failure notifications, then {scheduler.succeeded} backup(s)", "nothing catalogued partially")  # fmt: skip


# -- layer 1 restore ---------------------------------------------------------------------------------
TRANSIENT_DOWNLOAD = [
    Fault("cut", "down", after_bytes=200_000, times=1),
    Fault("reset", "down", after_bytes=200_000, times=1),
    Fault("stall", "down", after_bytes=100_000, seconds=2.5, times=1),
    Fault("limit", "down", rate=2_000_000),
]


@pytest.mark.parametrize("fault", TRANSIENT_DOWNLOAD, ids=lambda f: f.label.replace(" ", "-"))
def test_restore_survives_a_transient_fault(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, seed: SeedInfo,
    process_sqld: SqldFactory, fault: Fault, tmp_path: Path,
) -> None:  # fmt: skip
    entry = take_backup(source.http_url, _catalog(moto_region.endpoint.url, bucket), sqld_version="v")
    proxy.set(fault)
    started = time.monotonic()
    timeouts = {"read_timeout": 1} if fault.kind == "stall" else {}
    outcome = restore_catalog(_catalog(proxy.url, bucket, **timeouts), process_sqld, tmp_path)
    seconds = time.monotonic() - started
    assert proxy.stats.hits >= 1, f"the fault {fault.label} never acted (test premise)"
    assert outcome.entry == entry and outcome.refused == ()
    assert table_digests(outcome.server.http_url) == seed.tables
    did = "completed at the limit" if fault.kind == "limit" else f"retried ({proxy.stats.hits} hit)"
    _row(fault.label, "layer-1 restore", f"{did}, restored {entry.bytes} B in {seconds:.2f}s", "nothing")


def test_restore_that_cannot_read_names_what_it_could_not_read(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, process_sqld: SqldFactory, tmp_path: Path
) -> None:
    direct = _catalog(moto_region.endpoint.url, bucket)
    older = take_backup(source.http_url, direct, sqld_version="v")
    newer = take_backup(source.http_url, direct, sqld_version="v")
    proxy.set(Fault("reset", "down", after_bytes=150_000))  # every object cut; the small catalog reads pass
    with pytest.raises(NoUsableBackup) as failed:
        restore_catalog(_catalog(proxy.url, bucket), process_sqld, tmp_path)
    message = str(failed.value)
    for entry in (newer, older):
        assert f"{entry.id}: could not read s3://{bucket}/{entry.key}" in message, message
    assert _whole(direct) == (2, 2, []), "a failed restore must not damage the catalog"
    _row("reset down after 150000 B (every connection)", "layer-1 restore",
         "NoUsableBackup naming both backups' keys as unreadable", "nothing (catalog intact)")  # fmt: skip


def test_restore_against_a_dead_endpoint_says_it_could_not_list(
    proxy: FaultProxy, bucket: str, process_sqld: SqldFactory, tmp_path: Path
) -> None:
    proxy.set(Fault("reset", "down", after_bytes=0))
    with pytest.raises(NoUsableBackup, match=rf"could not list the layer-1 catalog s3://{bucket}/layer1/catalog/"):
        restore_catalog(_catalog(proxy.url, bucket, connect_timeout=1, read_timeout=1), process_sqld, tmp_path)
    _row(
        "reset down at 0 B (endpoint gone)", "layer-1 restore", "NoUsableBackup: could not list the catalog", "nothing"
    )


# -- crashes -----------------------------------------------------------------------------------------
def test_server_killed_mid_restore_gives_a_clear_error_and_keeps_the_catalog(
    source: SqldServer, bucket: str, moto_region: Region, sqld_factory: SqldFactory, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    """Both backends: the target (process or container) is SIGKILLed after three replay chunks."""
    import layers.backup

    monkeypatch.setattr(layers.backup, "REPLAY_CHUNK", 64 * 1024)
    direct = _catalog(moto_region.endpoint.url, bucket)
    entry = take_backup(source.http_url, direct, sqld_version="v")
    target = sqld_factory("target")
    original = fixtures.hrana.HranaSession.sequence
    sent = []

    def sequence_then_crash(self: fixtures.hrana.HranaSession, sql: str) -> None:
        original(self, sql)
        sent.append(len(sql))
        if len(sent) == 3:
            target.kill()  # SIGKILL mid-replay

    monkeypatch.setattr(fixtures.hrana.HranaSession, "sequence", sequence_then_crash)
    with pytest.raises(RestoreIncomplete) as failed:
        restore_catalog(direct, lambda name: target, tmp_path)
    assert entry.id in str(failed.value) and target.http_url in str(failed.value)
    assert _whole(direct) == (1, 1, [])
    _row(f"sqld ({target.backend}) SIGKILLed after 3 replay chunks", "layer-1 restore",
         "RestoreIncomplete naming backup and target", "nothing (catalog intact; restore again)")  # fmt: skip


BACKUP_CHILD = textwrap.dedent("""
    import sys
    from fixtures.s3 import MOTO_CREDENTIALS, S3Endpoint
    from layers.backup import BackupCatalog, take_backup
    from layers.store import S3Store
    source, proxy, bucket = sys.argv[1:4]
    catalog = BackupCatalog(S3Store(S3Endpoint("us-east", proxy, *MOTO_CREDENTIALS).client(), bucket))
    print("entry", take_backup(source, catalog, sqld_version="v").id, flush=True)
""")


def test_runner_killed_mid_backup_catalogues_nothing(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region
) -> None:
    proxy.set(Fault("limit", "up", rate=100_000))  # slow upload: the kill lands in the middle of it
    child = subprocess.Popen([sys.executable, "-c", BACKUP_CHILD, source.http_url, proxy.url, bucket],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while proxy.stats.bytes_up < 150_000 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert child.poll() is None, child.communicate()[0]
        uploaded = proxy.stats.bytes_up
        child.send_signal(signal.SIGKILL)
        output = child.communicate(timeout=30)[0]
    finally:
        if child.poll() is None:
            child.kill()
    assert "entry" not in output
    time.sleep(0.5)  # let the server notice the dropped upload
    assert _whole(_catalog(moto_region.endpoint.url, bucket)) == (0, 0, [])
    _row("runner SIGKILLed mid-upload", "layer-1 backup", f"killed after {uploaded} B sent; no entry, no object",
         "no backup this cycle (previous ones intact)")  # fmt: skip


HISTORY_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from reports.history import FileHistory
    history = FileHistory(Path(sys.argv[1]))
    n = 0
    while True:
        n += 1
        history.append({"n": n, "pad": "x" * (1_000 if n % 3 else 600_000)})
""")


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_during_heavy_history_appends_leaves_only_whole_lines(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "history.jsonl"
    writers = [subprocess.Popen([sys.executable, "-c", HISTORY_CHILD, str(path)], cwd=ROOT) for _ in range(3)]
    try:
        deadline = time.monotonic() + 60
        while (not path.exists() or path.stat().st_size < 5_000_000) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05 * attempt)
        for w in writers:
            os.kill(w.pid, signal.SIGKILL)
    finally:
        for w in writers:
            w.wait()
    history = FileHistory(path)
    records = history.load()  # a torn last line (a write cut short by SIGKILL) is never read as a record
    assert len(records) > 5 and all(set(r) == {"n", "pad"} for r in records)
    history.append({"n": -1, "pad": ""})  # the next append repairs the tail
    lines = path.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line) for line in lines] == [*records, {"n": -1, "pad": ""}]
    _row("3 history writers SIGKILLed mid-append", "history", f"{len(records)} whole JSON lines", "nothing torn")


# -- layer 4 offsite copy --------------------------------------------------------------------------------
def test_offsite_copy_under_faults_never_catalogues_a_partial_copy(
    source: SqldServer, proxy: FaultProxy, bucket: str, moto_region: Region, seed: SeedInfo,
    process_sqld: SqldFactory, tmp_path: Path,
) -> None:  # fmt: skip
    from layers.offsite import OffsiteKey, OffsiteSource, keyring, offsite_ids, replicate_once

    layer1 = _catalog(moto_region.endpoint.url, bucket)
    entry = take_backup(source.http_url, layer1, sqld_version="v")
    offsite_bucket = moto_region.new_bucket("faults", "offsite")
    try:
        direct = S3Store(moto_region.endpoint.client(), offsite_bucket)
        through = S3Store(S3Endpoint("eu-west", proxy.url, *MOTO_CREDENTIALS).client(), offsite_bucket)
        key = OffsiteKey.generate()
        proxy.set(Fault("reset", "up", after_bytes=300_000))  # every upload cut: the sealed object never lands
        with pytest.raises(Exception) as failed:
            replicate_once(layer1, through, key)
        assert offsite_ids(direct) == [], "a copy whose object did not land must not be catalogued offsite"
        proxy.set(Fault("cut", "up", after_bytes=300_000, times=1))  # transient: retried
        copy, problems = replicate_once(layer1, through, key)
        assert copy is not None and copy.entry == entry and problems == []
        assert offsite_ids(direct) == [entry.id]
        proxy.set(Fault("reset", "down", after_bytes=400_000, times=1))
        sources = [OffsiteSource(through, keyring(key))]
        restored = restore_first(sources, Gate(), lambda: process_sqld("target"), tmp_path / "restore")
        assert restored.entry == entry and restored.refused == ()
        assert table_digests(restored.server.http_url) == seed.tables
    finally:
        proxy.clear()
        moto_region.delete_bucket(offsite_bucket)
    _row("reset up after 300000 B (persistent), then cut x1, then reset down x1", "layer-4 copy + restore",
         f"{failed.type.__name__}, no offsite entry; then copied and restored", "nothing")  # fmt: skip


# -- layer 2 streaming -----------------------------------------------------------------------------------
def test_layer2_streaming_rides_out_an_s3_outage_and_drains_its_backlog(
    proxy: FaultProxy, moto_region: Region, tmp_path: Path
) -> None:
    from fixtures.binary import sqld_binary
    from fixtures.sqld import SqldSpec
    from fixtures.sqld_process import ProcessSqld
    from layers.pitr import PITR_ARGS, Layer2, WalNotInS3, bottomless_env

    bucket = moto_region.new_bucket("faults", "layer2")
    through = S3Endpoint("us-east", proxy.url, *MOTO_CREDENTIALS)
    spec = SqldSpec("pitr", tmp_path / "pitr", tmp_path / "pitr.log",
                    env=bottomless_env(through, bucket, "faults", 1), args=PITR_ARGS)  # fmt: skip
    server = ProcessSqld(spec, binary=str(sqld_binary())).start()
    try:
        layer2 = Layer2(server.http_url, server.admin_url, "shop", "faults", bucket, moto_region.client(), 1)
        layer2.create()
        with layer2.session() as s:
            s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            layer2.confirm_uploaded(time.time())
            proxy.set(Fault("reset", "up", after_bytes=0))  # S3 unreachable for sqld
            for i in range(40):  # writes go on during the outage
                s.execute("INSERT INTO t VALUES (?)", [i])
                time.sleep(0.05)
            instant = time.time()
            with pytest.raises(WalNotInS3, match="has not reached"):
                layer2.confirm_uploaded(instant, timeout=3)  # the runner says so instead of forking stale data
            assert proxy.stats.hits >= 1, "bottomless never tried to upload during the outage (test premise)"
            proxy.clear()
            proof = layer2.confirm_uploaded(instant, timeout=60)
            # a fork is exact to the flush second: a point after the outage holds every write made in it
            fork = layer2.fork("after-outage", time.time(), upload_timeout=60)
        with layer2.session("after-outage") as s:
            rows = [r[0] for r in s.execute("SELECT id FROM t ORDER BY id").rows]
        assert rows == list(range(40)), "every write made during the outage reached S3 once it returned"
    finally:
        server.kill()
        moto_region.delete_bucket(bucket)
    _row("reset up at 0 B for ~5 s (S3 outage for sqld)", "layer-2 streaming",
         f"writes went on; fork refused while the WAL was not in S3; backlog drained in {proof.waited:.1f}s "
         f"({fork.proof.uploaded_frame} frames)", "nothing (40/40 rows in the fork)")  # fmt: skip
