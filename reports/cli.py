"""Reports from the drill history, on the command line:

  python -m reports.cli render  --history file:.drills/history.jsonl --out .drills/report [--compare-fail rto_seconds:20%]
  python -m reports.cli certify --history file:.drills/history.jsonl --out .drills/report [--strict]
  python -m reports.cli audit   --history file:.drills/history.jsonl [--out .drills/report]
  python -m reports.cli metrics --history file:.drills/history.jsonl --out drills.prom
  python -m reports.cli evidence --history file:.drills/history.jsonl --out evidence/2026-12 --key evidence.key
  python -m reports.cli verify-evidence evidence/2026-12 --public-key evidence.pub
  python -m reports.cli evidence-keygen --private-key evidence.key --public-key evidence.pub

--run picks the runs reported: 'latest' (default), 'all' (each scenario's newest result), or run ids.
Exit status: 0 fine; 1 a regression (render), a missed objective or failed scenario (certify; --strict
also when a layer is not certified), a failed audit item (audit), evidence that does not verify
(verify-evidence); 2 bad input, with a message naming it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from fixtures.config import ConfigError, parse_thresholds
from reports.audit import audit
from reports.certify import Certificate, certify
from reports.evidence import EvidenceError, bundle_evidence, generate_keys, verify_bundle
from reports.frame import HistoryFormatError
from reports.metrics import write_metrics
from reports.regression import DEFAULT_WINDOW
from reports.render import LoadedHistory, load_history, render_report, resolve_runs
from reports.restore_tests import restore_tests

HISTORY_COMMANDS = {
    "render": "charts, report.html and summary.md",
    "certify": "certificate.json and certificate.md",
    "audit": "the readiness audit (audit.md with --out)",
    "metrics": "Prometheus textfile-collector metrics (.prom)",
    "evidence": "a signed evidence bundle: certificate, records, report, SHA256SUMS, Ed25519 signature",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in HISTORY_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--history", default="file:.drills/history.jsonl", help="file:PATH or s3://BUCKET/PREFIX")
        default_out = {"audit": None, "metrics": Path(".drills/drills.prom"), "evidence": None}
        sub.add_argument("--out", type=Path, default=default_out.get(name, Path(".drills/report")),
                         required=name == "evidence", help="output folder (metrics: the .prom file)")  # fmt: skip
        sub.add_argument(
            "--run", action="append", default=[], help="'latest' (default), 'all', or a run id (repeatable)"
        )
        if name == "render":
            sub.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:LIMIT[%]",
                             help="fail on a regression against earlier runs, e.g. rto_seconds:20%% (repeatable)")  # fmt: skip
            sub.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="earlier results in the baseline")
        if name == "certify":
            sub.add_argument("--strict", action="store_true", help="also exit 1 when any layer is not certified")
        if name == "evidence":
            sub.add_argument("--key", type=Path, required=True, help="Ed25519 private key, PKCS#8 PEM")
    verify = commands.add_parser("verify-evidence", help="check an evidence bundle's signature and every file")
    verify.add_argument("folder", type=Path)
    verify.add_argument("--public-key", type=Path, required=True, help="Ed25519 public key, SubjectPublicKeyInfo PEM")
    keygen = commands.add_parser("evidence-keygen", help="a new Ed25519 key pair for evidence, as PEM files")
    keygen.add_argument("--private-key", type=Path, required=True)
    keygen.add_argument("--public-key", type=Path, required=True)
    return parser


def _render(args: argparse.Namespace, loaded: LoadedHistory, run_ids: list[str]) -> int:
    rendered = render_report(loaded.frame, run_ids, args.out, thresholds=parse_thresholds(args.compare_fail),
                             history=loaded.uri, window=args.window, records=loaded.records)  # fmt: skip
    for path in [*rendered.charts.values(), rendered.html, rendered.markdown]:
        print(f"wrote {path}")
    for regression in rendered.regressions:
        print(f"REGRESSION {regression.describe()}", file=sys.stderr)
    return 1 if rendered.regressions else 0


def _certificate(loaded: LoadedHistory, run_ids: list[str]) -> Certificate:
    """The run's certificate, with the restore tests of existing backups as layer-3 evidence."""
    return certify(loaded.frame, run_ids, history=loaded.uri, manifests=loaded.manifests,
                   restore_tests=restore_tests(loaded.records, datetime.now(UTC)))  # fmt: skip


def _certify(args: argparse.Namespace, loaded: LoadedHistory, run_ids: list[str]) -> int:
    certificate = _certificate(loaded, run_ids)
    for path in certificate.write(args.out):
        print(f"wrote {path}")
    print(f"{certificate.verdict.upper()}" + "".join(f"\n  {r}" for r in certificate.reasons))
    return certificate.exit_code(strict=args.strict)


def _audit(args: argparse.Namespace, loaded: LoadedHistory, run_ids: list[str]) -> int:
    result = audit(loaded.frame)
    print(result.to_markdown(), end="")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "audit.md").write_text("# Readiness audit\n\n" + result.to_markdown())
        print(f"wrote {args.out / 'audit.md'}")
    return 1 if result.failed else 0


def _metrics(args: argparse.Namespace, loaded: LoadedHistory, run_ids: list[str]) -> int:
    print(f"wrote {write_metrics(loaded.frame, args.out)}")
    return 0


def _evidence(args: argparse.Namespace, loaded: LoadedHistory, run_ids: list[str]) -> int:
    certificate = _certificate(loaded, run_ids)
    wanted = set(run_ids)
    records = [r for r in loaded.records if r.get("run_id") in wanted]
    bundle = bundle_evidence(certificate, records, loaded.frame, args.out, args.key)
    print(f"wrote {bundle.folder}: {len(bundle.files)} files signed (key sha256 {bundle.fingerprint[:16]}...)")
    print(f"certificate: {certificate.verdict.upper()} for run(s) {', '.join(run_ids)}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, LoadedHistory, list[str]], int]] = {
    "render": _render, "certify": _certify, "audit": _audit, "metrics": _metrics, "evidence": _evidence,
}  # fmt: skip


def _standalone(args: argparse.Namespace) -> int:
    if args.command == "evidence-keygen":
        print(f"wrote {args.private_key} and {args.public_key}: key sha256 "
              f"{generate_keys(args.private_key, args.public_key)}")  # fmt: skip
        return 0
    problems = verify_bundle(args.folder, args.public_key)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("evidence NOT verified" if problems else f"evidence verified: {args.folder}")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command not in COMMANDS:
            return _standalone(args)
        certifying = args.command in ("certify", "evidence")
        loaded = load_history(args.history, base=Path.cwd(), manifests_suffice=certifying)
        run_ids = resolve_runs(loaded.frame, args.run, loaded.manifests)
        return COMMANDS[args.command](args, loaded, run_ids)
    except (ConfigError, HistoryFormatError, EvidenceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
