"""Restore tests of a team's own backups (history records of kind "restore-test", appended by
`python -m layers.staging --history`) as layer-3 evidence beside the drills: the newest test of each
source within the last month is listed on the certificate, and a failed one keeps layer 3 from being
certified."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.certify import LayerVerdict

RESTORE_TEST_KIND = "restore-test"
MAX_AGE = timedelta(days=31)  # the monthly restore test: an older one is no evidence


@dataclass(frozen=True)
class RestoreTestEvidence:
    source: str
    started_at: str
    point_requested: str
    point_achieved: str
    ok: bool
    restore_seconds: float
    failures: tuple[str, ...]  # "check: detail" of each failed check

    @property
    def label(self) -> str:
        return f"restore test {self.source} at {self.point_achieved or self.point_requested} ({self.started_at[:19]})"


def _evidence(record: dict[str, Any]) -> RestoreTestEvidence:
    failed = tuple(f"{c.get('name')}: {c.get('detail')}" for c in record.get("checks") or [] if not c.get("ok"))
    return RestoreTestEvidence(str(record.get("source")), str(record.get("started_at", "")),
                               str(record.get("point_requested", "")), str(record.get("point_achieved") or ""),
                               bool(record.get("ok")), float(record.get("restore_seconds") or 0.0), failed)  # fmt: skip


def restore_tests(records: Iterable[dict[str, Any]], now: datetime) -> list[RestoreTestEvidence]:
    """The newest restore test of each source started within MAX_AGE before `now`, by source."""
    newest: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("kind") != RESTORE_TEST_KIND:
            continue
        try:
            started = datetime.fromisoformat(str(record.get("started_at")))
        except ValueError:
            continue
        if started.tzinfo is None or not now - MAX_AGE <= started <= now:
            continue
        source = str(record.get("source"))
        if source not in newest or str(record["started_at"]) > str(newest[source]["started_at"]):
            newest[source] = record
    return [_evidence(newest[s]) for s in sorted(newest)]


def with_restore_tests(layer3: LayerVerdict, tests: Sequence[RestoreTestEvidence]) -> LayerVerdict:
    """Layer 3's verdict with the restore tests as evidence: certified when every drill of it (if any)
    and every restore test passed; a failed restore test is named."""
    if not tests:
        return layer3
    failed = [t for t in tests if not t.ok]
    drills_ok = layer3.verdict == "certified" or not layer3.scenarios  # no drill: the restore tests decide
    names = [*layer3.scenarios, *(t.label for t in tests)]
    if failed:
        why = "; ".join(f"{t.label} failed ({t.failures[0] if t.failures else 'not verified'})" for t in failed)
        reason = why if drills_ok else f"{layer3.reason}; {why}"
        return replace(layer3, verdict="not certified", reason=reason, scenarios=names)
    passed = f"{len(tests)} restore test(s) of existing backups passed"
    if not drills_ok:
        return replace(layer3, reason=f"{layer3.reason}; {passed}", scenarios=names)
    reason = f"{layer3.reason}; {passed}" if layer3.scenarios else passed
    return replace(layer3, verdict="certified", reason=reason, scenarios=names)


def markdown(tests: Sequence[RestoreTestEvidence]) -> list[str]:
    """The certificate's section listing the restore tests."""
    if not tests:
        return []
    lines = ["", "## Layer 3 evidence: restore tests of existing backups", "",
             "| source | point requested | point achieved | restore s | verdict |", "|---|---|---|---|---|"]  # fmt: skip
    for t in tests:
        cells = (t.source, t.point_requested, t.point_achieved or "-", f"{t.restore_seconds:.2f}",
                 "PASS" if t.ok else f"FAIL: {t.failures[0] if t.failures else ''}")  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return lines
