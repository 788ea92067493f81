"""Table corruption (layers 1 + 3): the primary's database file is damaged on disk while the workload
writes — a table's b-tree pages overwritten, an index's pages overwritten, the file truncated, or its
header zeroed. The server is stopped and its file checkpointed (so the pages live in the main file, not in
data-wal), damaged and started again, as after a host restart on a bad disk.

Detection is what an operator has: the server refusing to start, or the periodic `PRAGMA quick_check`
(and query errors) on a server that starts. Recovery is layer 1, integrity-gated: the newest backup whose
checksum holds AND that passes layers.recovery's gate (`PRAGMA integrity_check`, `foreign_key_check`,
every application table; a page snapshot checked as a file before any server starts on it, a dump once
replayed); a candidate that fails the gate is thrown away (a dump with its server) and the next older
backup is tried.

Defense in depth (the `-bottomless` variant): layer 2 (bottomless) is armed too. sqld restarted on the
damaged file uploads it as its newest generation, so the naive layer-2 recovery (a fresh server restoring
the newest generation) brings the corruption back: the same gate refuses it, and layer 1 recovers. Layer 2
still holds the WAL from before the damage: after the layer-1 restore, a fork to the last whole second
before sqld restarted on the damaged file rolls forward past the backup. If the fork passes the same gate
and is no older than the backup it is served instead (a smaller loss); both RPOs are reported. A fork that fails the gate or whose WAL cannot be proven
in S3 leaves the layer-1 result in place."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from fixtures.damage import DamageError, PageDamage, damage_object, largest_object, truncate, zero_header
from fixtures.hrana import HranaError, HranaSession
from fixtures.schema import SchemaError
from fixtures.wait import NotReady
from layers.pitr import Layer2, PitrError, bottomless_env, fork_timestamp, namespace_dir, point_before
from layers.recovery import Layer1Source
from layers.snapshot import copy_database
from layers.verify import verify
from reports.result import Objectives
from scenarios.base import Recovery, Scenario

if TYPE_CHECKING:
    from pathlib import Path

    from fixtures.drill import Drill
    from fixtures.seed import SeedInfo
    from fixtures.sqld import SqldServer
    from reports.stopwatch import Stopwatch


@dataclass
class CorruptionState:
    """What the damage step leaves for detection and recovery (Drill.state)."""

    layer2: bool = False  # the bottomless variant: the primary streams its WAL
    layer2_bucket: str = ""
    damage_at: float = 0.0  # wall clock, just before the freeze
    restarted_at: float = 0.0  # wall clock: the damage can reach layer 2 from here on
    damage: dict[str, object] = field(default_factory=dict)  # what the damage did (PageDamage.describe)
    refused_at: float | None = None  # monotonic: the server refused to start on the damaged file
    refusal: str = ""


@dataclass(frozen=True)
class DamageForm:
    """One way the file gets damaged: a name for the drill and the operation on the stopped file."""

    name: str
    title: str
    apply: Callable[[Path], PageDamage]


def damage_largest(kind: str) -> Callable[[Path], PageDamage]:
    """Overwrite every b-tree page of the file's largest table or index (of any schema)."""

    def apply(path: Path) -> PageDamage:
        name = largest_object(path, kind)
        if name is None:
            raise DamageError(f"{path} holds no {kind} to damage")
        return damage_object(path, name)

    return apply


FORMS: dict[str, DamageForm] = {
    f.name: f
    for f in (
        DamageForm("table", "every b-tree page of the largest table overwritten", damage_largest("table")),
        DamageForm("index", "every b-tree page of the largest index overwritten", damage_largest("index")),
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
LAYER2_NAMESPACE = "default"  # without --enable-namespaces the database is the namespace "default"
ROLL_FORWARD = "rollforward"  # the fork's namespace (the fork API works without --enable-namespaces)


def arm_with_layer2(drill: Drill) -> None:
    """As `arm`, with the primary streaming its WAL to the primary region (layer 2, bottomless)."""
    region, interval = drill.primary_region, drill.config.pitr_batch_interval
    bucket = drill.new_layer2_bucket(region)
    state = drill.state(CorruptionState)
    state.layer2, state.layer2_bucket = True, bucket
    drill.start_primary(env=bottomless_env(region.endpoint, bucket, LAYER2_DATABASE_ID, interval), args=LAYER2_ARGS)
    drill.start_workload()
    drill.arm_backups()


def settle_into_file(server: SqldServer) -> dict[str, Any]:
    """Stop the server (graceful), then checkpoint its file offline (TRUNCATE, Python's sqlite3), so the main
    file holds every page and data-wal is empty: a page the WAL still holds masks its damage after the restart
    (measured: a zeroed header, page 1 in the WAL, and sqld started clean). Offline, because sqld 0.24.32's
    own checkpoint (admin API) can wait forever after a busy write load (its write lock handed to a
    connection no longer waiting; every other connection spins on it: sqld-facts)."""
    server.stop()
    wal = server.db_dir / "data-wal"
    held = wal.stat().st_size if wal.exists() else 0
    with contextlib.closing(sqlite3.connect(server.db_file, timeout=5)) as conn:
        busy, frames, moved = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    left = wal.stat().st_size if wal.exists() else 0
    if busy or left or frames != moved:
        raise RuntimeError(
            f"could not settle {server.db_file}'s pages before the damage: the offline checkpoint moved {moved} of "
            f"{frames} WAL frames (busy {busy}) and data-wal still holds {left} bytes"
        )
    return {"wal_bytes_before": held, "frames_checkpointed": moved}


def damage(form: DamageForm) -> Callable[[Drill], None]:
    def run(drill: Drill) -> None:
        primary, state = drill.primary, drill.state(CorruptionState)
        assert primary is not None
        state.damage_at = time.time()  # just before the server stops
        with contextlib.ExitStack() as runner_steps:  # until the host is back: the runner's steps, not the app's
            if drill.traffic:
                runner_steps.enter_context(drill.traffic.quiet())  # no request of the application in between
            if drill.scheduler:
                runner_steps.enter_context(drill.scheduler.held())
            drill.details["settle"] = settle_into_file(primary)
            wal = primary.db_dir / "data-wal"
            drill.details["wal_bytes_at_damage"] = wal.stat().st_size if wal.exists() else 0
            state.damage = drill.details["damage"] = form.apply(primary.db_file).describe()
        if state.layer2:  # the host stays down into the next whole second, as a reboot would:
            time.sleep(max(0.0, math.floor(time.time()) + 1 - time.time()))  # layer 2's granularity is 1 s
        state.restarted_at = time.time()  # the damage can reach layer 2 from here on
        try:
            primary.start()  # the host comes back on the damaged disk
        except NotReady as exc:
            state.refused_at, state.refusal = time.monotonic(), _refusal_line(str(exc))
        drill.details["start_refused"] = state.refused_at is not None

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
    state = drill.state(CorruptionState)
    if state.refused_at is not None:
        drill.details["detected_by"] = f"server refuses to start: {state.refusal}"
        return state.refused_at
    assert drill.primary is not None
    deadline = time.monotonic() + drill.config.startup_timeout
    while time.monotonic() < deadline:
        problem = quick_check(drill.primary.http_url)
        if problem:
            drill.details["detected_by"] = problem
            return time.monotonic()
        time.sleep(drill.config.probe_interval)
    raise TimeoutError(f"PRAGMA quick_check saw no damage for {drill.config.startup_timeout:g}s after {state.damage}")


# -- recovery: the newest layer-1 backup that restores sound ------------------------------------------------
def naive_layer2(drill: Drill, damaged: SqldServer) -> tuple[str | None, SqldServer | None]:
    """Layer 2 alone, as an operator in a hurry would use it: a fresh server with the primary's bottomless
    settings restores the newest generation. (None if that restore passes the gate, else why not; the
    server, left running for the roll-forward fork, or None if it would not start)."""
    server = drill.new_server("layer2-restore", env=dict(damaged.spec.env), args=damaged.spec.args)
    try:
        server.start()
    except NotReady as exc:
        return f"refuses to start: {_refusal_line(str(exc))}", None
    return drill.gate().check_server(server.http_url), server


def measured_loss(drill: Drill, server: SqldServer) -> dict[str, Any]:
    """The loss of the database `server` serves against the ledger (layer 3's scan, no app checks)."""
    loss = verify(server.http_url, tables=drill.seed.verified, base=drill.seed.tables, writes=drill.ledger.writes).loss
    return {"writes": len(loss.lost), "seconds": round(loss.rpo_seconds(drill.state(CorruptionState).damage_at), 3)}


def roll_forward(
    drill: Drill, layer2_server: SqldServer, backup_lost: int, watch: Stopwatch
) -> tuple[SqldServer | None, dict[str, Any]]:
    """Fork layer 2 (on `layer2_server`, which streams from the primary's bucket) to just before the damage,
    copy the fork into a fresh server and gate it: sound, and no older than the restored backup (it loses
    no more acknowledged writes than the backup's `backup_lost`). (That server, or None when the fork is
    refused; details)."""
    state = drill.state(CorruptionState)
    # The damage reaches S3 as the generation sqld uploads when it restarts on the damaged file; a fork
    # picks generations and batches by whole second (measured: a fork to the freeze instant, in the
    # restart's second, came back corrupt), so the point is the last second closed before the restart.
    at = point_before(state.restarted_at)
    out: dict[str, Any] = {"rolled_forward_to": f"{fork_timestamp(at)}Z"}
    layer2 = Layer2(layer2_server.http_url, layer2_server.admin_url, LAYER2_NAMESPACE, LAYER2_DATABASE_ID,
                    state.layer2_bucket, drill.primary_region.client(), drill.config.pitr_batch_interval,
                    timeout=drill.config.startup_timeout)  # fmt: skip
    try:
        fork = layer2.fork(ROLL_FORWARD, at)
    except PitrError as exc:  # WalNotInS3 included: the point cannot be trusted
        out["roll_forward"] = f"refused: {exc}"[:400]
        return None, out
    out["roll_forward_upload_proof"] = fork.proof.describe()
    layer2_server.stop()  # the fork's pages settle in its folder
    server = drill.new_server("rolled-forward")
    copy_database(namespace_dir(layer2_server, ROLL_FORWARD) / "data", server.db_file)
    try:
        server.start()
    except NotReady as exc:
        problem: str | None = f"refuses to start: {_refusal_line(str(exc))}"
    else:
        watch.mark("provision")
        problem = drill.gate().check_server(server.http_url)
        fork_lost = measured_loss(drill, server)["writes"] if problem is None else 0
        if problem is None and fork_lost > backup_lost:
            problem = f"the fork loses {fork_lost} acknowledged writes, the backup {backup_lost}: the backup is newer"
    watch.mark("restore")
    if problem:
        server.kill()
        out["roll_forward"] = f"refused: {problem}"
        return None, out
    out["roll_forward"] = "passed the gate"
    return server, out


def recover(drill: Drill, watch: Stopwatch) -> Recovery:
    assert drill.catalog is not None and drill.scheduler is not None and drill.primary is not None
    drill.scheduler.stop()  # no backups of the damaged database from here on
    damaged = drill.primary
    layer2: dict[str, Any] = {"layer2_naive_restore": "layer 2 not armed"}
    layer2_server: SqldServer | None = None
    armed = drill.state(CorruptionState).layer2
    if armed:
        damaged.stop()  # graceful: bottomless flushes what it holds, the damaged generation included
        started = time.monotonic()
        refused, layer2_server = naive_layer2(drill, damaged)
        watch.mark("restore")  # a restore attempt, if a failed one
        layer2 = {"layer2_naive_restore": f"refused by the gate: {refused}" if refused else "passed the gate",
                  "layer2_naive_seconds": round(time.monotonic() - started, 3)}  # fmt: skip
    with contextlib.suppress(Exception):
        damaged.kill()  # its files stay in the drill's artifacts for the post-mortem
    outcome = drill.restore([Layer1Source(drill.catalog)], watch.mark)  # the newest that passes the gate
    drill.primary = outcome.server
    recovered_by = f"layer 1: full backup {outcome.entry.id} ({outcome.entry.format}, checksum + integrity gate)"
    if armed:
        backup_only = measured_loss(drill, outcome.server)
        watch.mark("verify")  # measuring the backup-only loss, as layer 3 would
        layer2.update(rpo_backup_only_writes=backup_only["writes"], rpo_backup_only_seconds=backup_only["seconds"])
        rolled: SqldServer | None = None
        if layer2_server is None:
            layer2["roll_forward"] = "not tried: no layer-2 server would start"
        else:
            try:
                rolled, more = roll_forward(drill, layer2_server, backup_only["writes"], watch)
            finally:
                layer2_server.kill()
            layer2.update(more)
        if rolled is not None:
            outcome.server.kill()
            drill.primary = rolled
            recovered_by = "layer 1 + layer 2 roll-forward"
    failures = [e for e in drill.notifications.events() if e.layer == 1 and e.kind == "failure"]
    return Recovery(
        {
            "recovered_by": recovered_by,
            **layer2,
            "backup_id": outcome.entry.id,
            "backup_taken_at": outcome.entry.created_at,
            "backup_bytes": outcome.entry.bytes,
            "backup_format": outcome.entry.format,
            "backups_refused": outcome.refused_pairs,
            "restore_attempts": len(outcome.refused) + 1,
            "layer1_backup_failures": len(failures),
        }
    )


def table_corruption(form: DamageForm, *, with_layer2: bool = False) -> Scenario:
    return Scenario(
        name=f"table-corruption-{form.name}" + ("-bottomless" if with_layer2 else ""),
        title=f"database file damaged on disk: {form.title}" + (" (layer 2 armed too)" if with_layer2 else ""),
        layers=(1, 2) if with_layer2 else (1,),  # layer 2 rolls the layer-1 restore forward
        objectives=Objectives(rpo_seconds=15.0, rto_seconds=60.0),
        arm=arm_with_layer2 if with_layer2 else arm,
        damage=damage(form),
        detect=detect,
        recover=recover,
        fits=fits(form),
    )


def fits(form: DamageForm) -> Callable[[SeedInfo], None]:
    """The table and index forms need a table with rows / an index in the seed (truncation and the zeroed
    header apply to any file)."""

    def check(seed: SeedInfo) -> None:
        kind = {"table": "table", "index": "index"}.get(form.name)
        if kind is not None and largest_object(seed.path, kind) is None:
            raise SchemaError(
                f"seed {seed.source} has no {kind} ({', '.join(seed.tables) or 'no tables'}): the "
                f"'{form.name}' damage has nothing to overwrite; give a seed whose schema has one"
            )

    return check


SCENARIOS: dict[str, Scenario] = {
    **{name: table_corruption(form) for name, form in FORMS.items()},
    "table-bottomless": table_corruption(FORMS["table"], with_layer2=True),
}
