"""Recovery: restore the newest usable backup from the sources a scenario names (the layer-1 catalog, page
or dump; layer 4's sealed copies), behind one gate, keeping every refused candidate's reason.

    sources -> offers, newest first -> fetch (download, checksum, decrypt, decompress) -> gate -> serve

A page snapshot is a file: the gate checks it before any server starts on it (layers.verify.verify_file,
read-only and immutable: integrity, foreign keys, every table, and against seed + ledger when known); only
then is it placed as a fresh server's database and the server started (no SQL replay). A dump is replayed
into a fresh server, which the gate then checks over Hrana (integrity, foreign keys, every table); a server
that fails it is killed. A candidate that fails never serves."""

from __future__ import annotations

import functools
import shutil
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import zstandard

from fixtures.digest import TableDigest
from fixtures.hrana import HranaError, HranaSession
from fixtures.ledger import Write
from fixtures.progress import counted, progress
from fixtures.schema import Identity
from fixtures.sqld import SqldServer
from fixtures.wait import NotReady
from layers.backup import (
    CATALOG,
    BackupCatalog,
    CatalogEntry,
    NoUsableBackup,
    download_verified,
    dump_problem,
    replay_dump,
)
from layers.snapshot import decompress
from layers.store import STORE_ERRORS
from layers.verify import Verification, fk_check, single_value_check, tables_present, verify_file


class Refused(Exception):
    """An offer that cannot be used; the message says why. `fetched`: bytes downloaded before that."""

    def __init__(self, reason: str, fetched: int = 0) -> None:
        super().__init__(reason)
        self.fetched = fetched


@dataclass(frozen=True)
class Refusal:
    layer: int
    source: str  # the store it was read from
    backup_id: str  # or the catalog key of an entry that is not one
    reason: str
    fetched: int = 0  # bytes downloaded before it was refused


@dataclass(frozen=True)
class Fetched:
    """A candidate on local disk, its checksum verified: a database file (page) or a gzip'd dump."""

    path: Path
    bytes_downloaded: int
    key_id: str = ""  # layer 4: the key that opened it
    replicated_at: str = ""  # layer 4: when it was copied offsite


@dataclass(frozen=True)
class Offer:
    layer: int
    source: str
    entry: CatalogEntry
    fetch: Callable[[Path], Fetched]  # into a work folder; raises Refused
    listed_bytes: int = 0  # bytes downloaded to list it (layer 4 reads its sealed entry)


class Source(Protocol):
    @property
    def layer(self) -> int: ...

    @property
    def url(self) -> str: ...

    @property
    def empty(self) -> str:
        """What it says when it holds nothing."""
        ...

    def offers(self) -> tuple[list[Offer], list[Refusal]]:
        """Candidates newest first, and the catalog entries refused while listing them."""


@dataclass(frozen=True)
class Candidate:
    """The restore that won: serving on `server`, not yet verified by layer 3 as a whole."""

    offer: Offer
    fetched: Fetched
    server: SqldServer
    verification: Verification | None  # a file: what the gate found before it served; a dump: None
    refused: tuple[Refusal, ...]  # newest first
    bytes_downloaded: int  # by the whole restore, refused candidates included

    @property
    def entry(self) -> CatalogEntry:
        return self.offer.entry

    @property
    def refused_pairs(self) -> list[list[str]]:
        """[(backup id, why)], as results record them."""
        return [[r.backup_id, r.reason] for r in self.refused]


@dataclass(frozen=True)
class Gate:
    """What a candidate must pass before it serves: integrity_check, foreign_key_check and every expected
    table present; for files also row counts, checksums and a clean point in time against `base` (the
    seed's digests) + `writes` (the ledger), when given."""

    tables: tuple[str | Identity, ...] = ()
    base: Mapping[str, TableDigest] | None = None
    writes: tuple[Write, ...] = ()

    def check_file(self, path: Path) -> Verification:
        return verify_file(path, tables=self.tables, base=self.base, writes=self.writes)

    def check_server(self, url: str) -> str | None:
        """None, or why the server's database fails the gate."""
        names = [t if isinstance(t, str) else t.table for t in self.tables]
        try:
            with HranaSession(url, timeout=120) as s:
                for name, (ok, detail) in (("integrity_check", single_value_check(s, "PRAGMA integrity_check")),
                                           ("foreign_key_check", fk_check(s)), ("tables", tables_present(s, names))):  # fmt: skip
                    if not ok:
                        return f"{name}: {detail}"[:300]
        except HranaError as exc:
            return f"check failed: {exc}"[:300]
        return None


PAGE_RATIO = 2  # measured: zstd level 1 halves a page snapshot of these databases (sqld-facts)


def estimated_bytes(entry: CatalogEntry) -> int:
    """The database size a backup object stands for, for progress lines only (a page snapshot's stored
    bytes are compressed)."""
    return entry.bytes * (PAGE_RATIO if entry.format == "page" else 1)


def materialize(entry: CatalogEntry, spool: Path, workdir: Path) -> Path:
    """A verified download made usable: a page snapshot decompressed into a database file (the download is
    dropped), a dump checked to be one whole sqld dump. Raises Refused."""
    if entry.format == "dump":
        with spool.open("rb") as fh:
            problem = dump_problem(fh)
        if problem:
            raise Refused(problem)
        return spool
    target = workdir / f"{entry.id}.db"
    try:
        with spool.open("rb") as fh:
            decompress(fh, target, size_hint=estimated_bytes(entry))
    except zstandard.ZstdError as exc:
        target.unlink(missing_ok=True)
        raise Refused(f"not a zstd page snapshot ({str(exc)[:120]})") from None
    finally:
        spool.unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class Layer1Source:
    """The layer-1 catalog in the primary region (both formats)."""

    catalog: BackupCatalog
    layer: int = 1
    empty: str = "the catalog is empty"

    @property
    def url(self) -> str:
        return self.catalog.store.url

    def offers(self) -> tuple[list[Offer], list[Refusal]]:
        url = self.url
        try:
            entries, skipped = self.catalog.scan()
        except STORE_ERRORS as exc:
            raise NoUsableBackup(
                f"restore did not start: could not list the layer-1 catalog {url}{CATALOG} "
                f"({type(exc).__name__}: {str(exc)[:200]}); check the region's endpoint and credentials"
            ) from None
        refused = [Refusal(1, url, key, why) for key, why in skipped]
        return [Offer(1, url, e, functools.partial(self._fetch, e)) for e in entries], refused

    def _fetch(self, entry: CatalogEntry, workdir: Path) -> Fetched:
        spool = workdir / f"{entry.id}.download"
        with spool.open("w+b") as fh, progress(f"restore: download {entry.id}", entry.bytes,
                                                scale_bytes=estimated_bytes(entry)) as step:  # fmt: skip
            problem = download_verified(self.catalog, entry, counted(fh, step))
            size = fh.seek(0, 2)
        if problem:
            spool.unlink(missing_ok=True)
            raise Refused(problem, size)
        return Fetched(materialize(entry, spool, workdir), size)


def place(database: Path, server: SqldServer) -> None:
    """Make a verified file the database of a fresh, stopped server (its db path: the process's folder or
    the container's volume). Nothing may be there already: no wallog, so sqld rebuilds it from the file."""
    if server.db_dir.exists() and any(server.db_dir.iterdir()):
        raise RuntimeError(f"refusing to place a restore over {server.db_dir}: it is not empty")
    server.db_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(database, server.db_file)


def _serve_file(offer: Offer, fetched: Fetched, gate: Gate, provision: Callable[[], SqldServer],
                mark: Callable[[str], object]) -> tuple[SqldServer | None, Verification, str]:  # fmt: skip
    """Gate the file, then start a fresh server on it: (server or None, the gate's verification, refusal)."""
    verification = gate.check_file(fetched.path)
    mark("verify")
    if not verification.ok:
        fetched.path.unlink(missing_ok=True)
        return None, verification, "refused before serving: " + "; ".join(verification.failures)[:400]
    server = provision()
    place(fetched.path, server)
    try:
        server.start()
    except NotReady as exc:
        server.kill()
        return None, verification, f"sqld would not start on the verified file: {str(exc)[:200]}"
    finally:
        mark("provision")
    return server, verification, ""


def _serve_dump(offer: Offer, fetched: Fetched, gate: Gate, provision: Callable[[], SqldServer],
                mark: Callable[[str], object]) -> tuple[SqldServer | None, str]:  # fmt: skip
    """Replay the dump into a fresh server, then gate it: (the server, or None and the refusal)."""
    server = provision().start()
    mark("provision")
    try:
        with fetched.path.open("rb") as fh:
            replay_dump(fh, server.http_url)
        problem = gate.check_server(server.http_url)
    except requests.RequestException as exc:
        server.kill()
        raise RestoreIncomplete(
            f"restore of backup {offer.entry.id} into {server.http_url} did not complete: the target stopped "
            f"answering ({type(exc).__name__}); the catalog is untouched: restore into a fresh server again"
        ) from None
    except (HranaError, OSError, EOFError, ValueError, zlib.error) as exc:  # rolled back with its stream
        problem = f"replay refused by the target: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        mark("restore")
        fetched.path.unlink(missing_ok=True)
    if problem:
        server.kill()
        return None, problem
    return server, ""


class RestoreIncomplete(RuntimeError):
    """The target stopped answering mid-replay: the restore did not complete (the catalog is untouched)."""


def restore_first(
    sources: Sequence[Source],
    gate: Gate,
    provision: Callable[[], SqldServer],
    workdir: Path,
    mark: Callable[[str], object] = lambda phase: None,
) -> Candidate:
    """Try every source's offers newest first until one passes the gate, and serve it on `provision()` (a
    fresh, stopped server). `mark(phase)` closes RTO phases as they happen ("restore": fetching,
    decompressing, replaying; "verify": the gate; "provision": starting a server). Raises NoUsableBackup
    with every refusal when none passes."""
    workdir.mkdir(parents=True, exist_ok=True)
    offers: list[Offer] = []
    refused: list[Refusal] = []
    for source in sources:
        more, skipped = source.offers()
        offers += more
        refused += skipped
    offers.sort(key=lambda o: (o.entry.created, o.entry.id), reverse=True)
    downloaded = sum(o.listed_bytes for o in offers) + sum(r.fetched for r in refused)
    for offer in offers:
        try:
            fetched = offer.fetch(workdir)
        except Refused as exc:
            refused.append(Refusal(offer.layer, offer.source, offer.entry.id, str(exc), exc.fetched))
            downloaded += exc.fetched
            continue
        finally:
            mark("restore")
        downloaded += fetched.bytes_downloaded
        verification: Verification | None = None
        if offer.entry.format == "page":
            server, verification, problem = _serve_file(offer, fetched, gate, provision, mark)
        else:
            server, problem = _serve_dump(offer, fetched, gate, provision, mark)
        if server is not None:
            return Candidate(offer, fetched, server, verification, tuple(refused), downloaded)
        refused.append(Refusal(offer.layer, offer.source, offer.entry.id, problem))
    layers = "/".join(str(n) for n in sorted({s.layer for s in sources}))
    raise NoUsableBackup(
        f"no usable layer-{layers} backup in {', '.join(s.url for s in sources)}: "
        + ("; ".join(f"{r.backup_id}: {r.reason}" for r in refused) or "; ".join(s.empty for s in sources)),
        tuple(refused),
    )
