"""A row-deletion incident planned from any schema and its seed data: rows of the largest table that other
tables reference (the largest table when none is), every seed row that references them, followed along the
foreign keys as the schema declares them (ON DELETE SET NULL rows are cleared by the database; every other
referencing row must go first), and some loose rows of the largest referencing table. The plan names seed
rows only (the historical data). When the incident runs, a planned row that a workload row has come to
reference is left in place ("pinned"), as the database would refuse to delete it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fixtures.hrana import HranaSession, Value
from fixtures.schema import ForeignKey, Schema, SchemaError, Table, quote
from layers.pitr import RowScope, in_clause, quote_column

Key = tuple[Value, ...]
Rows = dict[Key, dict[str, Value]]  # key -> column values


def row_key(table: Table) -> tuple[str, ...]:
    """The columns that pick one stored row: rowid for rowid tables, the primary key otherwise."""
    return table.primary_key if table.without_rowid else ("rowid",)


@dataclass(frozen=True)
class Picks:
    """Which rows, as fractions of a table's seed rows in key order (so a plan fits any scale)."""

    rows: tuple[float, ...] = (0.1, 0.5, 0.9)
    loose: tuple[float, ...] = (0.3, 0.7)

    def __post_init__(self) -> None:
        if not self.rows or any(not 0 <= p < 1 for p in (*self.rows, *self.loose)):
            raise ValueError(f"incident picks {self}: give at least one row; every pick in [0, 1)")


@dataclass
class Incident:
    """The rows the incident removes and clears, by table, and the historical-rows check it breaks."""

    target: str
    loose_table: str
    order: tuple[str, ...]  # the incident's tables, parents first
    keys: dict[str, tuple[str, ...]]  # table -> row key columns
    deleted: dict[str, Rows]
    nulled: dict[str, Rows]
    watched: dict[str, tuple[int, int]]  # rowid table -> (highest seed rowid, seed rows): historical rows
    pinned: dict[str, int] = field(default_factory=dict)

    def statements(self) -> list[tuple[str, str, list[Value]]]:
        """The operator's SQL, (table, statement, arguments): one DELETE per table, children first."""
        out = []
        for table in reversed(self.order):
            if self.deleted.get(table):
                where, args = in_clause(self.keys[table], list(self.deleted[table]))
                out.append((table, f"DELETE FROM {quote(table)} WHERE {where}", args))
        return out

    def scopes(self) -> tuple[RowScope, ...]:
        """What a surgical repair compares between the fork and the live database, parents first."""
        out = []
        for table in self.order:
            keys = [*self.deleted.get(table, {}), *self.nulled.get(table, {})]
            if keys:
                out.append(RowScope(table, self.keys[table], tuple(dict.fromkeys(keys))))
        return tuple(out)

    def describe(self) -> dict[str, object]:
        return {
            "target": self.target, "loose_table": self.loose_table,
            "deleted": {t: len(r) for t, r in self.deleted.items() if r},
            "nulled": {t: len(r) for t, r in self.nulled.items() if r}, "pinned": dict(self.pinned),
        }  # fmt: skip


class SeedRows:
    """The seed file, read-only, for planning."""

    def __init__(self, path: Path, schema: Schema) -> None:
        self.path, self.schema = path, schema

    def _query(self, sql: str, args: Sequence[Value] = ()) -> list[tuple[Value, ...]]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return db.execute(sql, list(args)).fetchall()
        finally:
            db.close()

    def rows(self, table: Table, where: str = "", args: Sequence[Value] = ()) -> Rows:
        key, names = row_key(table), [c.name for c in table.columns]
        cols = ", ".join(quote_column(c) for c in key)
        found = self._query(f"SELECT {cols}, * FROM {quote(table.name)}{' WHERE ' + where if where else ''} "
                            f"ORDER BY {cols}", args)  # fmt: skip
        return {tuple(r[: len(key)]): dict(zip(names, r[len(key) :], strict=True)) for r in found}

    def max_rowid(self, table: str) -> int:
        return int(self._query(f"SELECT coalesce(max(rowid), 0) FROM {quote(table)}")[0][0] or 0)


def children(schema: Schema, parent: str) -> list[tuple[Table, ForeignKey]]:
    return [(t, fk) for t in schema.tables.values() for fk in t.foreign_keys if fk.parent == parent]


def _pick(rows: Rows, fractions: Sequence[float]) -> Rows:
    keys = list(rows)
    chosen = dict.fromkeys(keys[int(f * len(keys))] for f in fractions) if keys else {}
    return {k: rows[k] for k in chosen}


def _choose_tables(schema: Schema, counts: dict[str, int], excluded: set[str]) -> tuple[str, str]:
    """(target, loose table): the largest referenced table with seed rows (the largest table when none is
    referenced), and its largest referencing table (the next largest table when it has none)."""
    candidates = sorted((t for t, n in counts.items() if n and t not in excluded), key=lambda t: -counts[t])
    if not candidates:
        raise SchemaError(
            f"no row-deletion incident can be planned: no table of the seed holds rows "
            f"(tables: {', '.join(counts) or 'none'}{'; trigger-written: ' + ', '.join(sorted(excluded)) if excluded else ''}). "
            "Give drill_seed a dump or database with data"
        )
    referenced = [t for t in candidates if any(c.name in candidates for c, _ in children(schema, t))]
    target = (referenced or candidates)[0]
    kids = [c.name for c, _ in children(schema, target) if c.name in candidates and c.name != target]
    others = [t for t in candidates if t != target]
    return target, (sorted(kids, key=lambda t: -counts[t]) or others or [target])[0]


def plan_incident(schema: Schema, seed_path: Path, counts: dict[str, int], picks: Picks) -> Incident:
    """Plan the incident on the seed; SchemaError when the seed has nothing to delete."""
    excluded = set(schema.trigger_written)
    target, loose = _choose_tables(schema, counts, excluded)
    seed = SeedRows(seed_path, schema)
    deleted: dict[str, Rows] = {}
    nulled: dict[str, Rows] = {}
    queue = [(target, _pick(seed.rows(schema.table(target)), picks.rows)),
             (loose, _pick(seed.rows(schema.table(loose)), picks.loose))]  # fmt: skip
    while queue:
        table, rows = queue.pop()
        done = deleted.setdefault(table, {})
        fresh = {k: v for k, v in rows.items() if k not in done}
        done.update(fresh)
        for child, fk in children(schema, table):
            values = [v for v in {tuple(r[c] for c in fk.parent_columns) for r in fresh.values()} if None not in v]
            if not values:
                continue
            where, args = in_clause(fk.columns, values)
            referencing = seed.rows(child, where, args)
            if fk.on_delete.upper() == "SET NULL":
                nulled.setdefault(child.name, {}).update(referencing)
            else:
                queue.append((child.name, referencing))
    for table, rows in nulled.items():
        for key in list(rows):
            if key in deleted.get(table, {}):
                del rows[key]
    tables = [t for t in schema.insertion_order() if deleted.get(t) or nulled.get(t)]
    watched = {t: (seed.max_rowid(t), counts[t]) for t in tables
               if row_key(schema.table(t)) == ("rowid",) and t not in excluded and deleted.get(t)}  # fmt: skip
    keys = {t: row_key(schema.table(t)) for t in tables}
    return Incident(target, loose, tuple(tables), keys, deleted, nulled, watched)


def pin_referenced(incident: Incident, schema: Schema, live: HranaSession) -> None:
    """Under the incident's write lock: leave in place every planned row that a row outside the plan
    references (a workload row, which the database would not let the delete orphan), then every planned
    row those pinned rows reference, until nothing changes; the SET NULL rows of pinned parents stay too."""
    changed = True
    while changed:
        changed = False
        for table in incident.order:
            for child, fk in children(schema, table):
                changed |= _pin_edge(incident, child, fk, table, live)
    for table, rows in incident.nulled.items():
        for key in [k for k, row in rows.items() if not _cleared(incident, schema.table(table), row)]:
            del rows[key]


def _cleared(incident: Incident, table: Table, row: dict[str, Value]) -> bool:
    """Whether one of the row's ON DELETE SET NULL foreign keys points at a row the incident deletes."""
    for fk in table.foreign_keys:
        if fk.on_delete.upper() == "SET NULL":
            parents = {tuple(r[c] for c in fk.parent_columns) for r in incident.deleted.get(fk.parent, {}).values()}
            if tuple(row[c] for c in fk.columns) in parents:
                return True
    return False


def _pin_edge(incident: Incident, child: Table, fk: ForeignKey, parent: str, live: HranaSession) -> bool:
    planned = incident.deleted.get(parent, {})
    values = [v for v in {tuple(r[c] for c in fk.parent_columns) for r in planned.values()} if None not in v]
    if not values:
        return False
    where, args = in_clause(fk.columns, values)
    key = row_key(child)
    cols = ", ".join(quote_column(c) for c in (*key, *fk.columns))
    expected = {**incident.deleted.get(child.name, {}), **incident.nulled.get(child.name, {})}
    found = live.execute(f"SELECT {cols} FROM {quote(child.name)} WHERE {where}", args).rows
    held = {tuple(r[len(key) :]) for r in found if tuple(r[: len(key)]) not in expected}
    doomed = [k for k, r in planned.items() if tuple(r[c] for c in fk.parent_columns) in held]
    for k in doomed:
        del planned[k]
    if doomed:
        incident.pinned[parent] = incident.pinned.get(parent, 0) + len(doomed)
    return bool(doomed)
