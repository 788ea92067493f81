"""Layer 3 against the backups a team already has (the monthly "restore test of production backups"):
restore a recovery point of a bottomless bucket, a set of dumps, a dump or SQLite file, or a layer-1
catalog into a fresh staging sqld, then check it (layers/restore_test.py). The source is only ever read.

    python -m layers.staging --source bottomless:s3://BUCKET/DATABASE_ID --point 2026-11-30T06:25:22Z --s3-endpoint URL
    python -m layers.staging --source dumps:/backups --point random --history file:.drills/history.jsonl
    python -m layers.staging --source dump:backup.sql.gz --json

Exit status: 0 verified, 1 not verified, 2 bad input or a source that cannot be read (one message)."""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fixtures.config import ConfigError
from layers.appchecks import AppChecks
from layers.recovery_points import RecoveryPoint, iso, parse_point
from layers.restore_sources import USAGE, BackupSource, RestoreOptions, parse_source, restore_source
from layers.restore_test import (
    Expected,
    Limits,
    RestoreTestResult,
    check_restored,
    expectations,
    load_checks_option,
    load_counts,
    parse_fraction,
    restore_check,
)
from layers.source_access import Restored, RestoreFailed
from reports.history import History, open_history


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m layers.staging", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--source", required=True, help=USAGE)
    parser.add_argument("--point", default="latest", help="latest | random | an ISO-8601 UTC time (default latest)")
    parser.add_argument("--namespace", default="default", help="the sqld namespace of a bottomless source")
    parser.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL of s3:// sources")
    parser.add_argument("--checks", default="auto",
                        help="application checks (TOML); 'auto' = the built-in ones on the built-in schema only; '' none")  # fmt: skip
    parser.add_argument("--expect-counts", type=Path, default=None, help="a JSON file {table: rows} to judge against")
    parser.add_argument("--max-row-drop", default="5%", help="rows a table may lose against the expectation")
    parser.add_argument("--max-slowdown", type=float, default=5.0, help="benchmark limit against the previous test")
    parser.add_argument("--history", default="", help="append a restore-test record here (file:PATH | s3://...)")
    parser.add_argument("--backend", choices=("process", "container"), default="process")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    parser.add_argument("--out", type=Path, default=None, help="also write that JSON object to this file")
    parser.add_argument("--seed", type=int, default=None, help="seed of --point random (reproducible picks)")
    return parser


def _print(result: RestoreTestResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    achieved = result.restored.achieved
    print(f"point: requested {result.point_requested}, achieved {iso(achieved) if achieved else 'unknown'}")
    for note in result.notes:
        print(f"note: {note}")
    for c in result.checks:
        print(f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}")
    print(f"{'VERIFIED' if result.ok else 'NOT VERIFIED'}: {result.source}")


@dataclass(frozen=True)
class Settings:
    """The validated arguments of one restore test."""

    source: BackupSource
    point: RecoveryPoint
    given: AppChecks | None
    limits: Limits
    counts_file: Expected | None
    history: History | None


def _settings(args: argparse.Namespace) -> Settings:
    """Every argument checked before anything is restored (ValueError names the bad one)."""
    return Settings(parse_source(args.source), parse_point(args.point), load_checks_option(args.checks),
                    Limits(parse_fraction(args.max_row_drop), args.max_slowdown),
                    load_counts(args.expect_counts) if args.expect_counts else None,
                    open_history(args.history, base=Path.cwd()) if args.history else None)  # fmt: skip


def run_restore_test(args: argparse.Namespace, settings: Settings) -> RestoreTestResult:
    """Restore, then check; a restore that fails is a result with the failed restore check alone."""
    started_at = datetime.now(UTC).isoformat()
    records = settings.history.load() if settings.history else []
    source, point = settings.source, settings.point
    with tempfile.TemporaryDirectory(prefix="drill-restore-test-") as tmp, ExitStack() as stack:
        opts = RestoreOptions(args.backend, args.s3_endpoint, args.namespace, Path(tmp))
        try:
            server, restored = restore_source(source, point, opts, stack, random.Random(args.seed))
        except RestoreFailed as exc:
            failed = Restored(str(source), 0, 0.0, None, {}, (str(exc),))
            return RestoreTestResult(
                started_at, str(source), point.describe(), failed, {}, (restore_check(failed),), {}
            )
        achieved = iso(restored.achieved) if restored.achieved else None
        want_counts, want_timings = expectations(records, str(source), achieved, settings.counts_file)
        checks, counts, timings, notes = check_restored(server.http_url, settings.given, want_counts, want_timings,
                                                        settings.limits)  # fmt: skip
    return RestoreTestResult(started_at, str(source), point.describe(), restored, counts,
                             (restore_check(restored), *checks), timings, tuple(notes))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        result = run_restore_test(args, settings)
    except (ValueError, ConfigError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.history:
        settings.history.append(result.to_dict())
    if args.out:
        args.out.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    _print(result, args.json)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
