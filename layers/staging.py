"""Layer 3 against backups you already have (the monthly "restore test of production backups"): restore
a SQL dump file or a layer-1 catalog into a fresh staging sqld, then run integrity, foreign-key, row-count,
application and benchmark checks. The source is only ever read: its store is wrapped read-only.

    python -m layers.staging --source dump:backup.sql.gz
    python -m layers.staging --source catalog:s3://bucket/prefix --s3-endpoint https://... [--backend container]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import boto3

from fixtures.binary import sqld_binary
from fixtures.engine import ensure_engine
from fixtures.hrana import HranaSession
from fixtures.image import ensure_image, resolve_image
from fixtures.sqld import SqldServer, SqldSpec
from fixtures.sqld_container import ContainerSqld
from fixtures.sqld_process import ProcessSqld
from layers.appchecks import AppChecks, benchmark, load_app_checks, run_check
from layers.backup import BackupCatalog, replay_dump, replay_sql
from layers.recovery import Gate, Layer1Source, restore_first
from layers.store import LocalStore, ObjectInfo, ObjectStore, S3Store
from layers.verify import Check, fk_check, single_value_check, timed, write_probe

USER_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'libsql_%' "
    "ORDER BY name"
)


class SourceError(ValueError):
    pass


class ReadOnlyStore(ObjectStore):
    """Lets the staging restore read the source and nothing else."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    @property
    def url(self) -> str:
        return self.inner.url

    def put(self, key: str, source: IO[bytes], metadata: dict[str, str] | None = None) -> None:
        raise PermissionError(f"refusing to write {key} to the source {self.url}: staging verification is read-only")

    def delete(self, key: str) -> None:
        raise PermissionError(f"refusing to delete {key} from the source {self.url}: staging verification is read-only")

    def get(self, key: str, sink: IO[bytes]) -> dict[str, str]:
        return self.inner.get(key, sink)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self.inner.list(prefix)


@dataclass(frozen=True)
class BackupSource:
    kind: str  # "dump" | "catalog"
    location: str


def parse_source(text: str) -> BackupSource:
    kind, sep, location = text.partition(":")
    if sep and kind in ("dump", "catalog") and location:
        return BackupSource(kind, location)
    raise SourceError(
        f"--source {text!r}: use dump:PATH (a .sql or .sql.gz dump), catalog:s3://BUCKET[/PREFIX] or catalog:DIR "
        "(a layer-1 catalog)"
    )


def open_catalog_store(location: str, endpoint: str | None) -> ObjectStore:
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        env = os.environ.get
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=env("DRILL_SOURCE_ACCESS_KEY_ID") or env("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env("DRILL_SOURCE_SECRET_ACCESS_KEY") or env("AWS_SECRET_ACCESS_KEY"),
            region_name=env("AWS_DEFAULT_REGION") or "us-east-1",
        )
        return ReadOnlyStore(S3Store(client, bucket, prefix))
    path = Path(location)
    if not path.is_dir():
        raise SourceError(f"catalog folder {path} does not exist")
    return ReadOnlyStore(LocalStore(path))


def restore_source(
    source: BackupSource, provision: Callable[[], SqldServer], workdir: Path, *, endpoint: str | None = None
) -> tuple[SqldServer, dict[str, Any]]:
    """Restore the source into a fresh staging server from `provision()`: (that server, what was restored).
    A catalog's newest backup that passes the gate (integrity, foreign keys) is served, page or dump."""
    if source.kind == "catalog":
        store = open_catalog_store(source.location, endpoint)
        won = restore_first([Layer1Source(BackupCatalog(store))], Gate(), provision, workdir)
        return won.server, {"source": f"catalog:{source.location}", "backup_id": won.entry.id,
                            "format": won.entry.format, "bytes": won.entry.bytes, "refused": won.refused_pairs}  # fmt: skip
    path = Path(source.location)
    if not path.is_file():
        raise SourceError(f"dump file {path} does not exist")
    server = provision().start()
    with path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        if gzipped:
            replay_dump(fh, server.http_url)
        else:
            with path.open(encoding="utf-8", newline="") as text:
                replay_sql(text, server.http_url)
    return server, {"source": f"dump:{path}", "bytes": path.stat().st_size}


def verify_staging(url: str, app: AppChecks, repeat: int = 5) -> tuple[list[Check], dict[str, int]]:
    """Checks that need no ledger: the database is sound and the application's expectations hold."""
    with HranaSession(url) as s:
        checks = [
            timed("integrity_check", lambda: single_value_check(s, "PRAGMA integrity_check")),
            timed("foreign_key_check", lambda: fk_check(s)),
        ]
        tables = [str(r[0]) for r in s.execute(USER_TABLES).rows]
        counts = {t: int(str(s.execute(f'SELECT count(*) FROM "{t}"').rows[0][0])) for t in tables}
        checks.append(
            Check("row_counts", bool(counts), ", ".join(f"{t} {n}" for t, n in counts.items()) or "no tables")
        )
        checks += [timed(f"app: {c.name}", lambda c=c: run_check(s, c)) for c in app.checks]  # type: ignore[misc]
        checks.append(timed("write_probe", lambda: write_probe(s)))
    if app.benchmark:
        times = benchmark(url, app.benchmark, repeat)
        checks.append(Check("benchmark", True, ", ".join(f"{n} {t * 1000:.2f}ms" for n, t in times.items())))
    return checks, counts


@contextmanager
def staging_servers(backend: str, workdir: Path) -> Iterator[Callable[[], SqldServer]]:
    """A factory of fresh (stopped) staging servers of `backend`; every one it made is killed at the end."""
    if backend == "container":
        engine = ensure_engine()
        if engine is None:
            raise SourceError("--backend container: no container engine answers (run scripts/setup.sh)")
        os.environ.update(engine.testcontainers_env())
        client = engine.client()
        ensure_image(client, resolve_image("local"))
        client.close()
    numbers = itertools.count(1)
    with ExitStack() as stack:

        def make() -> SqldServer:
            n = next(numbers)
            spec = SqldSpec(f"staging-{n}", workdir / f"staging-{n}", workdir / f"staging-{n}.log")
            server: SqldServer
            if backend == "container":
                server = ContainerSqld(spec, image=resolve_image("local"))
            else:
                server = ProcessSqld(spec, binary=str(sqld_binary()))
            stack.callback(server.kill)
            return server

        yield make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="dump:PATH | catalog:s3://BUCKET[/PREFIX] | catalog:DIR")
    parser.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL for catalog:s3:// sources")
    parser.add_argument("--checks", default="layers/app_checks.toml", help="application checks (TOML); '' for none")
    parser.add_argument("--backend", choices=("process", "container"), default="process")
    parser.add_argument("--out", default="", help="write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        source = parse_source(args.source)
        app = load_app_checks(Path(args.checks)) if args.checks else AppChecks()
        with (
            tempfile.TemporaryDirectory(prefix="drill-staging-") as tmp,
            staging_servers(args.backend, Path(tmp)) as provision,
        ):
            server, restored = restore_source(source, provision, Path(tmp) / "work", endpoint=args.s3_endpoint)
            checks, counts = verify_staging(server.http_url, app)
    except (SourceError, ValueError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ok = all(c.ok for c in checks)
    for c in checks:
        print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    print(f"{'VERIFIED' if ok else 'NOT VERIFIED'}: {restored['source']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"ok": ok, "restored": restored, "counts": counts,
                                              "checks": [asdict(c) for c in checks]}, indent=2))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
