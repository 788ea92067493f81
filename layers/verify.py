"""Layer 3, verification: what must hold before a restored database is trusted and put back in service.
Serving (reads and a rolled-back write), `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, per-table
row counts and content checksums against the ledger's expectation, and a clean point in time (no holes).
Every check's outcome is kept, not only the verdict."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fixtures.digest import Row, TableDigest
from fixtures.hrana import HranaError, HranaSession
from fixtures.ledger import Key, LossAssessment, Write, assess
from fixtures.schema import ROWID_ALIASES, Identity, quote
from layers.appchecks import AppChecks, benchmark, compare_benchmark, run_check

PAGE = 2000


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Verification:
    checks: tuple[Check, ...]
    loss: LossAssessment
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


def _timed(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    start = time.monotonic()
    try:
        ok, detail = probe()
    except (HranaError, OSError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:500]
    return Check(name, ok, detail, time.monotonic() - start)


def _single_value_check(s: HranaSession, pragma: str) -> tuple[bool, str]:
    rows = s.execute(pragma).rows
    ok = rows == [("ok",)]
    return ok, "ok" if ok else "; ".join(str(r[0]) for r in rows[:5])


def _fk_check(s: HranaSession) -> tuple[bool, str]:
    rows = s.execute("PRAGMA foreign_key_check").rows
    return not rows, f"{len(rows)} violation(s), e.g. {rows[:3]}" if rows else "no violations"


def _write_probe(s: HranaSession) -> tuple[bool, str]:
    """Prove the database takes writes without leaving anything behind."""
    s.execute("BEGIN IMMEDIATE")
    try:
        s.execute("CREATE TABLE _drill_write_probe (x)")
        s.execute("INSERT INTO _drill_write_probe VALUES (1)")
    finally:
        s.execute("ROLLBACK")
    return True, "write accepted and rolled back"


def _page_column(name: str) -> str:
    return name if name.lower() in ROWID_ALIASES else quote(name)  # a quoted "rowid" could read as a string


def scan(s: HranaSession, table: str | Identity, keys: set[object]) -> tuple[TableDigest, dict[Key, Row]]:
    """Digest of a whole table and the rows of the given keys (picked by the table's identity, as the
    workload keys them). Paged by the identity's columns (a composite key by row value:
    `WHERE (a,b) > (?,?) ORDER BY a,b`; rowid tables by their rowid). A bare name means an `id` first column."""
    ident = Identity(table, (0,), ("id",)) if isinstance(table, str) else table
    cols = [_page_column(c) for c in ident.page_by]
    width, order = len(cols), ", ".join(cols)
    head = f"SELECT {order}, * FROM {quote(ident.table)}"
    digest, after = TableDigest(), None
    picked: dict[Key, Row] = {}
    while True:
        if after is None:
            rows = s.execute(f"{head} ORDER BY {order} LIMIT {PAGE}").rows
        else:
            marks = ", ".join("?" * width)
            rows = s.execute(f"{head} WHERE ({order}) > ({marks}) ORDER BY {order} LIMIT {PAGE}", after).rows
        for full in rows:
            row: Row = full[width:]
            digest = digest.add(row)
            key = ident.key_of(row)
            if key in keys:
                picked[(ident.table, key)] = row
        if len(rows) < PAGE:
            return digest, picked
        after = list(rows[-1][:width])


@dataclass(frozen=True)
class AppExpectations:
    """The application's view of a healthy database: its checks, and its benchmark before the damage."""

    checks: AppChecks = field(default_factory=AppChecks)
    baseline: Mapping[str, float] = field(default_factory=dict)
    repeat: int = 5
    max_slowdown: float = 5.0


def verify(
    url: str,
    *,
    tables: tuple[str | Identity, ...],
    base: Mapping[str, TableDigest],
    writes: list[Write],
    app: AppExpectations | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> Verification:
    """Verify the database at `url` against `base` (the seed's digests) plus the ledger's `writes` for
    `tables` (names of builtin-style tables with an `id` first column, or identities from the seed), then
    the application's checks and benchmark; `headers` go with every request (e.g. the sqld namespace header)."""
    checks: list[Check] = []
    keys: dict[str, set[object]] = {}
    for write in writes:
        for change in write.changes:
            keys.setdefault(change.table, set()).add(change.key)
    with HranaSession(url, timeout=timeout, headers=headers) as s:
        checks.append(_timed("serving", lambda: (s.execute("SELECT 1").rows == [(1,)], "answers queries")))
        checks.append(_timed("integrity_check", lambda: _single_value_check(s, "PRAGMA integrity_check")))
        checks.append(_timed("foreign_key_check", lambda: _fk_check(s)))
        observed: dict[Key, Row | None] = {}
        digests: dict[str, TableDigest] = {}
        unreadable: dict[str, str] = {}
        started = time.monotonic()
        idents = {(t if isinstance(t, str) else t.table): t for t in tables}
        for table, ident in idents.items():
            try:
                digests[table], rows = scan(s, ident, keys.get(table, set()))
                observed.update(rows)
            except HranaError as exc:
                unreadable[table] = f"{table}: unreadable ({exc})"[:300]
        spent = time.monotonic() - started
        loss = assess(writes, observed)
        expected = loss.expected_digests(base)
        wrong_count = [unreadable.get(t) or f"{t}: {digests[t].count} rows, expected {expected[t].count}"
                       for t in idents if t in unreadable or digests[t].count != expected[t].count]  # fmt: skip
        wrong_sum = [unreadable.get(t) or f"{t}: {digests[t].hex} != {expected[t].hex}"
                     for t in idents if t in unreadable or digests[t].checksum != expected[t].checksum]  # fmt: skip
        checks.append(Check("row_counts", not wrong_count, "; ".join(wrong_count) or "all tables match", spent))
        checks.append(Check("content_checksums", not wrong_sum, "; ".join(wrong_sum) or "all tables match"))
        checks.append(
            Check(
                "point_in_time",
                not loss.holes and not loss.diverged,
                f"{len(loss.holes)} older write(s) missing while newer survive, {len(loss.diverged)} diverged row(s)"
                if loss.holes or loss.diverged
                else f"consistent with the ledger up to write {loss.cut}",
            )
        )
        checks.append(_timed("write_probe", lambda: _write_probe(s)))
        for app_check in app.checks.checks if app else ():
            checks.append(_timed(f"app: {app_check.name}", lambda c=app_check: run_check(s, c)))  # type: ignore[misc]
    if app and app.checks.benchmark:
        checks.append(
            _timed(
                "benchmark",
                lambda: compare_benchmark(
                    dict(app.baseline),
                    benchmark(url, app.checks.benchmark, app.repeat, headers=headers),
                    app.max_slowdown,
                ),
            )
        )
    return Verification(tuple(checks), loss, {t: d.count for t, d in digests.items()})
