"""Table corruption (layers 1 + 3): the primary's database file is damaged on disk while the workload
writes — a table's b-tree pages overwritten, an index's pages overwritten, the file truncated, or its
header zeroed. The server is checkpointed (so the pages live in the main file, not in data-wal),
stopped, damaged and started again, as after a host restart on a bad disk.

Detection is what an operator has: the server refusing to start, or the periodic `PRAGMA quick_check`
(and query errors) on a server that starts. Recovery is layer 1, integrity-gated: the newest backup whose
checksum holds AND whose restore passes `PRAGMA integrity_check`, `foreign_key_check` and holds every
application table; a restore that fails the gate is thrown away with its server and the next older
backup is tried.

Defense in depth (the `-bottomless` variant): layer 2 (bottomless) is armed too. sqld restarted on the
damaged file uploads it as its newest generation, so the naive layer-2 recovery (a fresh server restoring
the newest generation) brings the corruption back: the same gate refuses it, and layer 1 recovers."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from fixtures.damage import PageDamage, damage_object, truncate, zero_header
from fixtures.hrana import HranaError, HranaSession
from fixtures.seed import TABLES
from fixtures.wait import NotReady
from layers.backup import BackupCatalog, CatalogEntry, NoUsableBackup, download_verified, replay_dump
from layers.pitr import bottomless_env
from layers.verify import _fk_check, _single_value_check
from reports.result import Objectives
from scenarios.base import Scenario

if TYPE_CHECKING:
    from pathlib import Path

    from fixtures.drill import Drill
    from fixtures.sqld import SqldServer
    from reports.stopwatch import Stopwatch

CHECKPOINT = "/v1/namespaces/default/checkpoint"  # admin API: TRUNCATE checkpoint (works without namespaces)
CONFIG = "/v1/namespaces/default/config"  # admin API: block_writes (not kept across a restart)


@dataclass(frozen=True)
class DamageForm:
    """One way the file gets damaged: a name for the drill and the operation on the stopped file."""

    name: str
    title: str
    apply: Callable[[Path], PageDamage]


FORMS: dict[str, DamageForm] = {
    f.name: f
    for f in (
        DamageForm("table", "every b-tree page of order_items overwritten", lambda p: damage_object(p, "order_items")),
        DamageForm("index", "the index order_items_order overwritten", lambda p: damage_object(p, "order_items_order")),
        DamageForm("truncate", "the database file cut to half its pages", lambda p: truncate(p, 0.5)),
        DamageForm("header", "the 100-byte database header zeroed", zero_header),
    )
}


# -- arming and damage ---------------------------------------------------------------------------------------
def arm(drill: Drill) -> None:
    drill.start_primary()
    drill.start_workload()
    drill.arm_backups()


LAYER2_ARGS = ("--enable-bottomless-replication",)
LAYER2_DATABASE_ID = "drill"


def arm_with_layer2(drill: Drill) -> None:
    """As `arm`, with the primary streaming its WAL to the primary region (layer 2, bottomless)."""
    region, interval = drill.primary_region, drill.config.pitr_batch_interval
    bucket = drill.new_bucket(region, "layer2")
    drill.details["layer2"] = {"bucket": bucket, "region": region.name, "batch_interval_secs": interval}
    drill.start_primary(env=bottomless_env(region.endpoint, bucket, LAYER2_DATABASE_ID, interval), args=LAYER2_ARGS)
    drill.start_workload()
    drill.arm_backups()


def _admin_post(server: SqldServer, path: str, body: dict[str, Any] | None = None) -> str:
    try:
        response = requests.post(f"{server.admin_url}{path}", json=body, timeout=30)
    except requests.RequestException as exc:
        return f"failed: {type(exc).__name__}"
    return "ok" if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:200]}"


def settle_into_file(server: SqldServer) -> dict[str, str]:
    """Freeze writes, then TRUNCATE-checkpoint, so the main file holds every page and data-wal is empty when
    the server stops. Without it, a page the WAL still holds masks its damage after the restart (measured:
    a zeroed header, page 1 in the WAL, and sqld started clean). The freeze ends with the restart."""
    block = {"block_reads": False, "block_writes": True, "block_reason": "drill: settling pages before damage"}
    return {"block_writes": _admin_post(server, CONFIG, block), "checkpoint": _admin_post(server, CHECKPOINT)}


def damage(form: DamageForm) -> Callable[[Drill], None]:
    def run(drill: Drill) -> None:
        primary = drill.primary
        assert primary is not None
        settled = drill.details["settle"] = settle_into_file(primary)
        if any(v != "ok" for v in settled.values()):
            raise RuntimeError(f"sqld admin API refused to settle the pages before the damage: {settled}")
        primary.stop()  # graceful; it does not checkpoint by itself (data-wal keeps what it holds)
        wal = primary.db_dir / "data-wal"
        drill.details["wal_bytes_at_damage"] = wal.stat().st_size if wal.exists() else 0
        drill.details["damage"] = form.apply(primary.db_file).describe()
        try:
            primary.start()  # the host comes back on the damaged disk
            drill.details["start_refused"] = False
        except NotReady as exc:
            drill.details["start_refused"] = True
            drill.details["refused_at"] = time.monotonic()
            drill.details["refusal"] = _refusal_line(str(exc))

    return run


def _refusal_line(message: str) -> str:
    """The line of sqld's log that names the reason (e.g. 'Error: file is not a database')."""
    lines = message.splitlines()
    return next((line.strip() for line in lines if line.lstrip().startswith("Error")), lines[0] if lines else "")[:300]


# -- detection -----------------------------------------------------------------------------------------------
def quick_check(url: str) -> str | None:
    """The operator's periodic probe: None while the database looks sound, else what is wrong."""
    try:
        with HranaSession(url, timeout=10) as s:
            rows = s.execute("PRAGMA quick_check").rows
    except HranaError as exc:
        return f"quick_check error: {exc}"[:300]
    except requests.RequestException as exc:
        return f"quick_check unreachable: {type(exc).__name__}"
    if rows == [("ok",)]:
        return None
    return "quick_check: " + "; ".join(str(r[0]) for r in rows[:3]).replace("\n", " ")[:300]


def detect(drill: Drill) -> float:
    if drill.details.get("start_refused"):
        drill.details["detected_by"] = f"server refuses to start: {drill.details.get('refusal', '')}"
        return float(drill.details.pop("refused_at"))  # type: ignore[arg-type]
    assert drill.primary is not None
    deadline = time.monotonic() + drill.config.startup_timeout
    while time.monotonic() < deadline:
        problem = quick_check(drill.primary.http_url)
        if problem:
            drill.details["detected_by"] = problem
            return time.monotonic()
        time.sleep(drill.config.probe_interval)
    raise TimeoutError(
        f"PRAGMA quick_check saw no damage for {drill.config.startup_timeout:g}s after {drill.details['damage']}"
    )


# -- recovery: the newest layer-1 backup that restores sound ------------------------------------------------
@dataclass(frozen=True)
class SoundRestore:
    entry: CatalogEntry
    server: SqldServer
    refused: tuple[tuple[str, str], ...]  # (backup id, why): checksum or integrity gate
    attempts: int


def soundness(url: str, tables: tuple[str, ...]) -> str | None:
    """The gate a restore must pass before it is trusted: None, or why it failed."""
    try:
        with HranaSession(url, timeout=120) as s:
            ok, detail = _single_value_check(s, "PRAGMA integrity_check")
            if not ok:
                return f"integrity_check: {detail}"[:300]
            ok, detail = _fk_check(s)
            if not ok:
                return f"foreign_key_check: {detail}"[:300]
            present = {r[0] for r in s.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").rows}
    except HranaError as exc:
        return f"check failed: {exc}"[:300]
    missing = [t for t in tables if t not in present]
    return f"tables missing: {', '.join(missing)}" if missing else None


def restore_sound(
    catalog: BackupCatalog, first: SqldServer, provision: Callable[[], SqldServer], tables: tuple[str, ...]
) -> SoundRestore:
    """Replay backups newest first, each into a fresh empty server (`first`, then `provision()`), until one
    passes its checksum and `soundness`; the servers of refused restores are killed."""
    refused: list[tuple[str, str]] = []
    server: SqldServer | None = first
    attempts = 0
    for entry in catalog.entries():
        with tempfile.TemporaryFile() as spool:
            problem = download_verified(catalog, entry, spool)
            if problem:
                refused.append((entry.id, problem))
                continue
            server = server or provision()
            attempts += 1
            try:
                replay_dump(spool, server.http_url)
                problem = soundness(server.http_url, tables)
            except (HranaError, OSError, EOFError, ValueError) as exc:  # a truncated/garbled backup
                problem = f"replay failed: {type(exc).__name__}: {exc}"[:300]
        if problem is None:
            return SoundRestore(entry, server, tuple(refused), attempts)
        refused.append((entry.id, problem))
        server.kill()
        server = None
    raise NoUsableBackup(
        f"no layer-1 backup in {catalog.store.url} restores sound: "
        + ("; ".join(f"{i}: {why}" for i, why in refused) or "the catalog is empty")
    )


def naive_layer2(drill: Drill, damaged: SqldServer) -> str | None:
    """Layer 2 alone, as an operator in a hurry would use it: a fresh server with the primary's bottomless
    settings restores the newest generation. None if that restore passes the gate, else why not."""
    server = drill.new_server("layer2-restore", env=dict(damaged.spec.env), args=damaged.spec.args)
    try:
        server.start()
    except NotReady as exc:
        return f"refuses to start: {_refusal_line(str(exc))}"
    try:
        return soundness(server.http_url, TABLES)
    finally:
        server.kill()


def recover(drill: Drill, watch: Stopwatch) -> dict[str, Any]:
    assert drill.catalog is not None and drill.scheduler is not None and drill.primary is not None
    drill.scheduler.stop()  # no backups of the damaged database from here on
    damaged = drill.primary
    layer2: dict[str, Any] = {"layer2_naive_restore": "layer 2 not armed"}
    if "layer2" in drill.details:
        damaged.stop()  # graceful: bottomless flushes what it holds, the damaged generation included
        started = time.monotonic()
        refused = naive_layer2(drill, damaged)
        watch.mark("restore")  # a restore attempt, if a failed one
        layer2 = {"layer2_naive_restore": f"refused by the gate: {refused}" if refused else "passed the gate",
                  "layer2_naive_seconds": round(time.monotonic() - started, 3)}  # fmt: skip
    with contextlib.suppress(Exception):
        damaged.kill()  # its files stay in the drill's artifacts for the post-mortem
    fresh = drill.new_server("restored").start()
    watch.mark("provision")
    outcome = restore_sound(drill.catalog, fresh, lambda: drill.new_server("restored").start(), TABLES)
    watch.mark("restore")
    drill.primary = outcome.server
    failures = [e for e in drill.notifications.events() if e.layer == 1 and e.kind == "failure"]
    return {
        "recovered_by": f"layer 1: full backup {outcome.entry.id} (checksum + integrity gate)",
        **layer2,
        "backup_id": outcome.entry.id,
        "backup_taken_at": outcome.entry.created_at,
        "backup_bytes": outcome.entry.bytes,
        "backups_refused": [list(r) for r in outcome.refused],
        "restore_attempts": outcome.attempts,
        "backups_taken": drill.scheduler.succeeded,
        "layer1_backup_failures": len(failures),
    }


def table_corruption(form: DamageForm, *, with_layer2: bool = False) -> Scenario:
    return Scenario(
        name=f"table-corruption-{form.name}" + ("-bottomless" if with_layer2 else ""),
        title=f"database file damaged on disk: {form.title}" + (" (layer 2 armed too)" if with_layer2 else ""),
        layers=(1,),
        objectives=Objectives(rpo_seconds=15.0, rto_seconds=60.0),
        arm=arm_with_layer2 if with_layer2 else arm,
        damage=damage(form),
        detect=detect,
        recover=recover,
        builtin_schema_only=True,
    )


SCENARIOS: dict[str, Scenario] = {
    **{name: table_corruption(form) for name, form in FORMS.items()},
    "table-bottomless": table_corruption(FORMS["table"], with_layer2=True),
}
