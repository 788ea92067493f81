"""Proof that one new copy restores: the copy is restored the way a recovery would restore it and checked
against the database it was taken from (its tables' digests, read from the serving server while nothing
writes). A layer-1 or layer-4 offer goes through the recovery's own fetch (download, checksum, decryption,
decompression): a page snapshot is then checked as a file by the recovery's gate (no server needed), a dump
is replayed into a new SQLite file and gated the same way. A bottomless generation is copied into a scratch
bucket and restored by a scratch sqld of its own, as layers/bottomless_source.py restores a team's bucket."""

from __future__ import annotations

import gzip
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fixtures.digest import TableDigest
from fixtures.hrana import HranaSession
from fixtures.s3 import S3Endpoint
from fixtures.schema import Identity
from fixtures.sqld import SqldServer
from layers.bottomless_layout import Generation, plan_restore
from layers.bottomless_source import STAGING_DB_ID, copy_plan, read_layout
from layers.pitr import bottomless_env
from layers.recovery import Gate, Offer, Refused
from layers.recovery_points import RecoveryPoint
from layers.source_access import SourceError
from layers.store import ObjectStore
from layers.verify import PAGE, Verification, scan_tables, verify

Provision = Callable[[dict[str, str], tuple[str, ...]], SqldServer]  # (env, args) -> a fresh, stopped server


class ProofFailed(RuntimeError):
    """The new copy does not restore to the database it was taken from; the message says why."""


def served_digests(url: str, tables: Sequence[str | Identity], headers: Mapping[str, str]) -> dict[str, TableDigest]:
    """Every table's digest as the server serves it now (the reference a new copy must restore to)."""
    with HranaSession(url, timeout=120, headers=dict(headers)) as s:
        scanned = scan_tables(s, tables, {}, PAGE)
    unreadable = [v for v in scanned.values() if isinstance(v, str)]
    if unreadable:
        raise ProofFailed("the served database cannot be read: " + "; ".join(unreadable)[:400])
    return {t: v[0] for t, v in scanned.items() if not isinstance(v, str)}


@dataclass(frozen=True)
class Proven:
    how: str  # e.g. "restored by file, gate passed"
    rows: int
    seconds: float

    def describe(self) -> str:
        return f"{self.how}: {self.rows} rows equal to the served database, in {self.seconds:.2f} s"


def _judged(verification: Verification, what: str) -> int:
    if not verification.ok:
        raise ProofFailed(f"{what} refused by the gate: " + "; ".join(verification.failures)[:400])
    return sum(verification.counts.values())


def replay_into_file(dump: Path, target: Path) -> None:
    """Replay a gzip'd sqld dump into a new SQLite file, statement by statement in the dump's own
    transaction (SQLite's own parser decides where a statement ends)."""
    with gzip.open(dump, "rt", encoding="utf-8", newline="") as text:
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            pending = ""
            for line in text:
                pending += line
                if sqlite3.complete_statement(pending):
                    conn.execute(pending)
                    pending = ""
            if pending.strip():
                raise ProofFailed(f"the dump ends inside a statement: {pending[:80]!r}")
        except sqlite3.Error as exc:
            raise ProofFailed(f"the dump does not replay into SQLite: {exc}") from None
        finally:
            conn.close()


def prove_offer(offer: Offer, gate: Gate, workdir: Path) -> Proven:
    """Restore `offer` as the recovery would (fetch: download, checksum, decryption, decompression) and check
    the database it gives with the recovery's file gate, whose base is the served database's digests (no
    writes). A page snapshot is the file; a dump is replayed into a new SQLite file first (the statements a
    recovery replays into sqld)."""
    started = time.monotonic()
    entry = offer.entry
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        path = offer.fetch(workdir).path
    except Refused as exc:
        raise ProofFailed(f"backup {entry.id} refused: {exc}") from None
    database = path if entry.format == "page" else workdir / f"{entry.id}.replayed.db"
    try:
        if database != path:
            replay_into_file(path, database)
        rows = _judged(gate.check_file(database), f"{entry.format} backup {entry.id}")
    finally:
        path.unlink(missing_ok=True)
        database.unlink(missing_ok=True)
    how = "restored by file" if entry.format == "page" else "dump replayed into a file"
    return Proven(f"{how}, gate passed", rows, time.monotonic() - started)


def prove_generation(
    source: ObjectStore, db_name: str, generation: Generation, scratch: tuple[S3Endpoint, str, ObjectStore],
    gate: Gate, provision: Provision,
) -> Proven:  # fmt: skip
    """Restore the newest generation of `db_name` in `source` (it must be `generation`) the way sqld
    restores: its objects copied into the scratch bucket under the staging name, then a fresh bottomless
    sqld with an empty data dir restores it by itself; verified against the gate's base."""
    started = time.monotonic()
    try:
        gens, deps = read_layout(source, db_name)
    except SourceError as exc:
        raise ProofFailed(str(exc)) from None
    plan = plan_restore(gens, RecoveryPoint("latest"), deps, random.Random(0))
    if plan.generation.id != generation.id:
        raise ProofFailed(f"the newest generation of {db_name} is {plan.generation.id}, not {generation.id}")
    if plan.problems:
        raise ProofFailed("; ".join(plan.problems)[:400])
    endpoint, bucket, store = scratch
    _, unreadable = copy_plan(plan, source, store, db_name)
    if unreadable:
        raise ProofFailed("; ".join(unreadable)[:400])
    server = provision(bottomless_env(endpoint, bucket, STAGING_DB_ID, 1), ("--enable-bottomless-replication",))
    try:
        assert gate.base is not None, "a restore proof compares against the served database"
        verification = verify(server.start().http_url, tables=gate.tables, base=gate.base, writes=[])
        rows = _judged(verification, f"generation {generation.id} restored by sqld")
    finally:
        server.kill()
    return Proven(f"generation restored by a scratch sqld ({len(plan.objects())} objects)", rows,
                  time.monotonic() - started)  # fmt: skip
