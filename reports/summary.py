"""The table printed at the end of `pytest drills/`: per drill, RPO and RTO beside the objectives."""

from __future__ import annotations

from reports.result import PHASES, DrillResult
from reports.text import text_table


def summary_lines(results: list[DrillResult]) -> list[str]:
    header = (
        "drill",
        "backend",
        "seed",
        "layers",
        "RPO writes",
        "RPO s (obj)",
        "RTO s (obj)",
        "phases d/k/p/r/v/s",
        "verdict",
    )
    rows = []
    for r in results:
        rows.append(
            (
                r.scenario,
                r.backend,
                r.scale,
                r.layers,
                f"{r.rpo_writes}/{r.acked_writes}",
                f"{r.rpo_seconds:.2f} ({r.objectives.rpo_seconds:g})",
                f"{r.rto_seconds:.2f} ({r.objectives.rto_seconds:g})",
                "/".join(f"{r.phases.get(p, 0.0):.2f}" for p in PHASES),
                r.verdict.upper(),
            )
        )
    lines = text_table(header, rows)
    for r in results:
        lines += [f"{r.scenario} [{r.backend}]: {f}" for f in r.failures]
    lines += [f"backend: {note}" for note in dict.fromkeys(r.backend_fallback for r in results if r.backend_fallback)]
    return lines
