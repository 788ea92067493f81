"""Reports from the drill history, on the command line:

  python -m reports.cli render  --history file:.drills/history.jsonl --out .drills/report [--compare-fail rto_seconds:20%]
  python -m reports.cli certify --history file:.drills/history.jsonl --out .drills/report [--strict]
  python -m reports.cli audit   --history file:.drills/history.jsonl [--out .drills/report]

--run picks the runs reported: 'latest' (default), 'all' (each scenario's newest result), or run ids.
Exit status: 0 fine; 1 a regression (render), a missed objective or failed scenario (certify; --strict
also when a layer is not certified), a failed audit item (audit); 2 bad input, with a message naming it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fixtures.config import ConfigError, parse_thresholds
from reports.audit import audit
from reports.certify import certify
from reports.frame import HistoryFormatError
from reports.regression import DEFAULT_WINDOW
from reports.render import load_history, render_report, resolve_runs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reports.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("render", "charts, report.html and summary.md"),
                            ("certify", "certificate.json and certificate.md"),
                            ("audit", "the readiness audit (audit.md with --out)")):  # fmt: skip
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--history", default="file:.drills/history.jsonl", help="file:PATH or s3://BUCKET/PREFIX")
        sub.add_argument("--out", type=Path, default=None if name == "audit" else Path(".drills/report"),
                         help="output folder")  # fmt: skip
        sub.add_argument(
            "--run", action="append", default=[], help="'latest' (default), 'all', or a run id (repeatable)"
        )
        if name == "render":
            sub.add_argument("--compare-fail", action="append", default=[], metavar="METRIC:LIMIT[%]",
                             help="fail on a regression against earlier runs, e.g. rto_seconds:20%% (repeatable)")  # fmt: skip
            sub.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="earlier results in the baseline")
        if name == "certify":
            sub.add_argument("--strict", action="store_true", help="also exit 1 when any layer is not certified")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        loaded = load_history(args.history, base=Path.cwd(), manifests_suffice=args.command == "certify")
        frame, uri = loaded.frame, loaded.uri
        run_ids = resolve_runs(frame, args.run, loaded.manifests)
        if args.command == "render":
            rendered = render_report(frame, run_ids, args.out, thresholds=parse_thresholds(args.compare_fail),
                                     history=uri, window=args.window)  # fmt: skip
            for path in [*rendered.charts.values(), rendered.html, rendered.markdown]:
                print(f"wrote {path}")
            for regression in rendered.regressions:
                print(f"REGRESSION {regression.describe()}", file=sys.stderr)
            return 1 if rendered.regressions else 0
        if args.command == "certify":
            certificate = certify(frame, run_ids, history=uri, manifests=loaded.manifests)
            for path in certificate.write(args.out):
                print(f"wrote {path}")
            print(f"{certificate.verdict.upper()}" + "".join(f"\n  {r}" for r in certificate.reasons))
            return certificate.exit_code(strict=args.strict)
        result = audit(frame)
        print(result.to_markdown(), end="")
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "audit.md").write_text("# Readiness audit\n\n" + result.to_markdown())
            print(f"wrote {args.out / 'audit.md'}")
        return 1 if result.failed else 0
    except (ConfigError, HistoryFormatError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
