"""Layer 3, verification: what must hold before a restored database is trusted and put back in service.
Serving (reads and a rolled-back write), `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, per-table
row counts and content checksums against the ledger's expectation, and a clean point in time (no holes).
Every check's outcome is kept, not only the verdict.

A restore that is a database file is checked before any server starts on it (`verify_file`: opened
read-only and immutable with sqlite3, every check above at C speed but the serving ones); once served,
`verify(..., checked_file=...)` adds only what needs the server: it answers, its row counts match the
file's, it takes a rolled-back write, the application checks and the benchmark."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fixtures.digest import MASK, Row, TableDigest, row_hash
from fixtures.hrana import HranaError, HranaSession, Result, Value
from fixtures.ledger import Key, LossAssessment, Write, assess
from fixtures.progress import progress
from fixtures.schema import ROWID_ALIASES, Identity, quote
from layers.appchecks import AppChecks, benchmark, compare_benchmark, run_check

PAGE = 2000  # rows per query over Hrana
FILE_PAGE = 100_000  # rows per query on a local file
SCAN_WORKERS = 2  # processes digesting a file's tables (the machine's cores, as measured here)


class Session(Protocol):
    """What the checks need: HranaSession, or FileSession on a local file."""

    def execute(self, sql: str, args: Sequence[Value] = ()) -> Result: ...


class FileSession:
    """A database file opened read-only and immutable (`mode=ro&immutable=1`: nothing is written, no lock
    taken), answering as a HranaSession does; SQLite errors come back as HranaError."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)

    def execute(self, sql: str, args: Sequence[Value] = ()) -> Result:
        try:
            cursor = self.conn.execute(sql, tuple(args))
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise HranaError(str(exc), getattr(exc, "sqlite_errorname", None)) from None
        return Result(tuple(d[0] for d in cursor.description or ()), rows, 0)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> FileSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def timed(name: str, probe: Callable[[], tuple[bool, str]]) -> Check:
    start = time.monotonic()
    try:
        ok, detail = probe()
    except (HranaError, OSError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:500]
    return Check(name, ok, detail, time.monotonic() - start)


def single_value_check(s: Session, pragma: str) -> tuple[bool, str]:
    rows = s.execute(pragma).rows
    ok = rows == [("ok",)]
    return ok, "ok" if ok else "; ".join(str(r[0]) for r in rows[:5])


def fk_check(s: Session) -> tuple[bool, str]:
    rows = s.execute("PRAGMA foreign_key_check").rows
    return not rows, f"{len(rows)} violation(s), e.g. {rows[:3]}" if rows else "no violations"


def write_probe(s: HranaSession) -> tuple[bool, str]:
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


def scan(s: Session, table: str | Identity, keys: set[object], page: int = PAGE) -> tuple[TableDigest, dict[Key, Row]]:
    """Digest of a whole table and the rows of the given keys (picked by the table's identity, as the
    workload keys them). Paged by the identity's columns (a composite key by row value:
    `WHERE (a,b) > (?,?) ORDER BY a,b`; rowid tables by their rowid). A bare name means an `id` first column."""
    ident = Identity(table, (0,), ("id",)) if isinstance(table, str) else table
    cols = [_page_column(c) for c in ident.page_by]
    width, order = len(cols), ", ".join(cols)
    head = f"SELECT {order}, * FROM {quote(ident.table)}"
    count, total, after = 0, 0, None
    picked: dict[Key, Row] = {}
    while True:
        if after is None:
            rows = s.execute(f"{head} ORDER BY {order} LIMIT {page}").rows
        else:
            marks = ", ".join("?" * width)
            rows = s.execute(f"{head} WHERE ({order}) > ({marks}) ORDER BY {order} LIMIT {page}", after).rows
        for full in rows:
            row: Row = full[width:]
            total += row_hash(row)  # TableDigest.add, without a new object per row
            if keys:
                key = ident.key_of(row)
                if key in keys:
                    picked[(ident.table, key)] = row
        count += len(rows)
        if len(rows) < page:
            return TableDigest(count, total & MASK), picked
        after = list(rows[-1][:width])


@dataclass(frozen=True)
class AppExpectations:
    """The application's view of a healthy database: its checks, and its benchmark before the damage."""

    checks: AppChecks = field(default_factory=AppChecks)
    baseline: Mapping[str, float] = field(default_factory=dict)
    repeat: int = 5
    max_slowdown: float = 5.0


def tables_present(s: Session, tables: Sequence[str]) -> tuple[bool, str]:
    present = {r[0] for r in s.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").rows}
    missing = [t for t in tables if t not in present]
    return (
        not missing,
        f"tables missing: {', '.join(missing)}" if missing else f"{len(tables)} expected table(s) present",
    )


def _names(tables: Sequence[str | Identity]) -> list[str]:
    return [t if isinstance(t, str) else t.table for t in tables]


Scanned = dict[str, "tuple[TableDigest, dict[Key, Row]] | str"]  # table -> (digest, rows picked) | unreadable


def touched_keys(writes: Sequence[Write]) -> dict[str, set[object]]:
    """The keys the ledger's writes touched, per table (the rows a scan must pick)."""
    keys: dict[str, set[object]] = {}
    for write in writes:
        for change in write.changes:
            keys.setdefault(change.table, set()).add(change.key)
    return keys


def scan_tables(
    s: Session, tables: Sequence[str | Identity], keys: Mapping[str, set[object]], page: int,
    on_table: Callable[[int], None] | None = None,
) -> Scanned:  # fmt: skip
    """Each table scanned (digest and the ledger's keys); `on_table` gets each one's row count."""
    out: Scanned = {}
    for table, ident in zip(_names(tables), tables, strict=True):
        try:
            out[table] = scan(s, ident, keys.get(table, set()), page)
        except HranaError as exc:
            out[table] = f"{table}: unreadable ({exc})"[:300]
        scanned = out[table]
        if on_table is not None and not isinstance(scanned, str):
            on_table(scanned[0].count)
    return out


def _scan_file_tables(path: Path, tables: Sequence[str | Identity], keys: Mapping[str, set[object]]) -> Scanned:
    with FileSession(path) as s:
        return scan_tables(s, tables, keys, FILE_PAGE)


def _largest_first(s: Session, tables: Sequence[str | Identity]) -> list[str | Identity]:
    """Tables by their bytes on disk, largest first (dbstat; as given where SQLite has no dbstat)."""
    try:
        size = {str(r[0]): int(r[1] or 0) for r in s.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").rows}  # type: ignore[arg-type]
    except HranaError:
        return list(tables)
    return sorted(tables, key=lambda t: -size.get(t if isinstance(t, str) else t.table, 0))


def scan_file(path: Path, tables: Sequence[str | Identity], keys: Mapping[str, set[object]],
              meanwhile: Callable[[], list[Check]]) -> tuple[Scanned, list[Check]]:  # fmt: skip
    """scan_tables over a file in SCAN_WORKERS processes, tables largest first (the digests are Python: a
    row's repr hashed, so one process is bound by one core), while this process runs `meanwhile` (SQLite's
    own checks, in C). The workers are forked before `meanwhile` starts, so nothing is imported again and
    no SQLite call of this process is in flight at the fork."""
    with FileSession(path) as s:
        ordered = _largest_first(s, tables)
    with ProcessPoolExecutor(SCAN_WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_scan_file_tables, path, [t], keys) for t in ordered]
        checks = meanwhile()
        out: Scanned = {}
        for future in futures:
            out.update(future.result())
    return {t: out[t] for t in _names(tables)}, checks


def judge_content(
    scanned: Scanned, base: Mapping[str, TableDigest], writes: Sequence[Write], spent: float
) -> tuple[list[Check], LossAssessment, dict[str, int]]:
    """Row counts, content checksums and the point in time of the scanned tables against seed + ledger:
    (checks, the loss, row counts per table)."""
    observed: dict[Key, Row | None] = {}
    digests: dict[str, TableDigest] = {}
    unreadable: dict[str, str] = {}
    for table, result in scanned.items():
        if isinstance(result, str):
            unreadable[table] = result
        else:
            digests[table], rows = result
            observed.update(rows)
    loss = assess(list(writes), observed)
    expected = loss.expected_digests(base)
    idents = list(scanned)
    wrong_count = [unreadable.get(t) or f"{t}: {digests[t].count} rows, expected {expected[t].count}"
                   for t in idents if t in unreadable or digests[t].count != expected[t].count]  # fmt: skip
    wrong_sum = [unreadable.get(t) or f"{t}: {digests[t].hex} != {expected[t].hex}"
                 for t in idents if t in unreadable or digests[t].checksum != expected[t].checksum]  # fmt: skip
    holes = loss.holes or loss.diverged
    checks = [
        Check("row_counts", not wrong_count, "; ".join(wrong_count) or "all tables match", spent),
        Check("content_checksums", not wrong_sum, "; ".join(wrong_sum) or "all tables match"),
        Check("point_in_time", not holes,
              f"{len(loss.holes)} older write(s) missing while newer survive, {len(loss.diverged)} diverged row(s)"
              if holes else f"consistent with the ledger up to write {loss.cut}"),
    ]  # fmt: skip
    return checks, loss, {t: d.count for t, d in digests.items()}


def verify_file(
    path: Path, *, tables: Sequence[str | Identity], base: Mapping[str, TableDigest] | None, writes: Sequence[Write]
) -> Verification:
    """Layer 3 on a database file before any server starts on it (read-only, immutable): integrity,
    foreign keys, every table present; with `base` (the seed's digests) also row counts, checksums and the
    point in time against seed + ledger."""

    def sqlite_checks() -> list[Check]:
        with FileSession(path) as s:
            return [
                timed("integrity_check", lambda: single_value_check(s, "PRAGMA integrity_check")),
                timed("foreign_key_check", lambda: fk_check(s)),
                timed("tables_present", lambda: tables_present(s, _names(tables))),
            ]

    if base is None:
        return Verification(tuple(sqlite_checks()), assess(list(writes), {}), {})
    started = time.monotonic()
    scanned, checks = scan_file(path, tables, touched_keys(writes), sqlite_checks)
    more, loss, counts = judge_content(scanned, base, writes, time.monotonic() - started)
    return Verification((*checks, *more), loss, counts)


def served_counts(s: Session, counts: Mapping[str, int]) -> tuple[bool, str]:
    """The served database holds the row counts its file was verified with."""
    wrong = []
    for table, expected in counts.items():
        (served,) = s.execute(f"SELECT count(*) FROM {quote(table)}").rows[0]
        if served != expected:
            wrong.append(f"{table}: {served!r} served, {expected} in the verified file")
    return not wrong, "; ".join(wrong) or f"{len(counts)} table(s) match the verified file"


def verify(
    url: str,
    *,
    tables: tuple[str | Identity, ...],
    base: Mapping[str, TableDigest],
    writes: list[Write],
    app: AppExpectations | None = None,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
    checked_file: Verification | None = None,
    db_bytes: int = 0,
) -> Verification:
    """Verify the database at `url` against `base` (the seed's digests) plus the ledger's `writes` for
    `tables` (names of builtin-style tables with an `id` first column, or identities from the seed), then
    the application's checks and benchmark; `headers` go with every request (e.g. the sqld namespace header).
    `checked_file`: the server serves a file that `verify_file` checked before it started; its checks and
    loss stand, and over Hrana only its row counts are compared (no second scan of every row). `db_bytes`
    (the database's size) decides whether the scan prints a progress line."""
    checks: list[Check] = []
    with HranaSession(url, timeout=timeout, headers=headers) as s:
        checks.append(timed("serving", lambda: (s.execute("SELECT 1").rows == [(1,)], "answers queries")))
        if checked_file is None:
            checks.append(timed("integrity_check", lambda: single_value_check(s, "PRAGMA integrity_check")))
            checks.append(timed("foreign_key_check", lambda: fk_check(s)))
            started = time.monotonic()
            rows = sum(d.count for d in base.values()) + len(writes)
            with progress("verify: scanning tables", rows, unit="rows", scale_bytes=db_bytes) as step:
                scanned = scan_tables(s, tables, touched_keys(writes), PAGE, on_table=step.advance)
            more, loss, counts = judge_content(scanned, base, writes, time.monotonic() - started)
            checks += more
        else:
            checks += checked_file.checks
            loss, counts = checked_file.loss, dict(checked_file.counts)
            checks.append(timed("served_row_counts", lambda: served_counts(s, counts)))
        checks.append(timed("write_probe", lambda: write_probe(s)))
        for app_check in app.checks.checks if app else ():
            checks.append(timed(f"app: {app_check.name}", lambda c=app_check: run_check(s, c)))  # type: ignore[misc]
    if app and app.checks.benchmark:
        checks.append(
            timed(
                "benchmark",
                lambda: compare_benchmark(
                    dict(app.baseline),
                    benchmark(url, app.checks.benchmark, app.repeat, headers=headers),
                    app.max_slowdown,
                ),
            )
        )
    return Verification(tuple(checks), loss, counts)
