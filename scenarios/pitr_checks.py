"""What the row-deletion drills measure around a layer-2 fork, on any schema: the application's check that
historical (seed) rows never vanish, and where a fork landed in the workload's write sequence."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fixtures.schema import SchemaError, quote

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.seed import SeedInfo
    from layers.pitr import Fork, Layer2


def seed_rowids(seed: SeedInfo) -> dict[str, int]:
    """The highest rowid of each rowid table holding seed rows (workload rows are stored after it)."""
    derived = set(seed.schema.trigger_written)
    tables = [
        t for t, d in seed.tables.items() if d.count and not seed.schema.table(t).without_rowid and t not in derived
    ]
    db = sqlite3.connect(f"file:{seed.path}?mode=ro", uri=True)
    try:
        return {t: int(db.execute(f"SELECT max(rowid) FROM {quote(t)}").fetchone()[0]) for t in tables}
    finally:
        db.close()


def historical_rows(seed: SeedInfo) -> tuple[str, dict[str, int]]:
    """The app check 'historical rows never vanish', derived from the schema: one query counting, per
    rowid table holding seed rows, the rows up to the seed's highest rowid, and the count each must keep."""
    tops = seed_rowids(seed)
    if not tops:
        raise SchemaError(
            f"no table of seed {seed.source} stores seed rows by rowid ({', '.join(seed.tables) or 'no tables'}): "
            "the historical-rows check has nothing to watch; give a seed whose tables hold rows"
        )
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM {quote(t)} WHERE rowid <= {top})" for t, top in tops.items())
    return query, {t: seed.tables[t].count for t in tops}


def granularity(drill: Drill, layer2: Layer2, fork: Fork, incident: float) -> dict[str, Any]:
    """Where the fork landed against the ledger: the newest workload insert it holds and the first it lacks
    (their acknowledgement instants), against the requested point and the incident."""
    placed: dict[tuple[str, object], float] = {}
    for write in drill.ledger.acked():
        for change in write.changes:
            if change.row is not None:
                placed.setdefault((change.table, change.key), write.acked_at)
    schema, tops = drill.seed.schema, seed_rowids(drill.seed)
    keyed = {t for t, _ in placed if t in schema.tables and schema.table(t).rowid_alias}
    included = None
    with layer2.session(fork.namespace) as s:
        for table in sorted(keyed):
            top = s.execute(f"SELECT max(rowid) FROM {quote(table)} WHERE rowid > ?", [tops.get(table, 0)]).rows[0][0]
            at = placed.get((table, top))
            if at is not None and (included is None or at > included):
                included = at
    excluded = min((at for at in placed.values() if included is None or at > included), default=None)

    def iso(at: float | None) -> str | None:
        return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()

    return {
        "pitr_requested_point": fork.timestamp + "Z",
        "pitr_newest_write_in_fork": iso(included),
        "pitr_first_write_not_in_fork": iso(excluded),
        "pitr_gap_before_incident_seconds": None if included is None else round(incident - included, 3),
        "pitr_point_to_fork_state_seconds": None if included is None else round(included - fork.requested, 3),
        "pitr_fork_seconds": round(fork.seconds, 3),
        "pitr_fork_attempts": fork.attempts,
        "pitr_upload_proof": fork.proof.describe(),
    }
