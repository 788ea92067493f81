"""The run manifest: what a run set out to drill. Written to the history when collection ends (one record
of kind "manifest" per pytest process; xdist workers of one run share its run id and list the same cases),
so a certificate can tell a drill that passed from one that crashed, or never left a result at all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

MANIFEST_KIND = "manifest"
RESULT_KIND = "drill"  # the kind DrillResult.to_dict writes


@dataclass(frozen=True)
class ExpectedCase:
    case: str  # the pytest node id, as drill results record it in `case`
    scenario: str  # "" when the case chooses its scenario at run time
    backend: str


@dataclass(frozen=True)
class RunManifest:
    run_id: str
    created_at: str  # UTC ISO-8601
    cases: tuple[ExpectedCase, ...]
    machine: dict[str, Any]
    commit: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": MANIFEST_KIND}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunManifest:
        cases = tuple(ExpectedCase(**c) for c in raw.get("cases") or [])
        return cls(str(raw["run_id"]), str(raw.get("created_at", "")), cases, dict(raw.get("machine") or {}),
                   dict(raw.get("commit") or {}))  # fmt: skip


def split_records(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[RunManifest]]:
    """History records -> (drill results, run manifests). Records without a kind are drill results (as
    older histories hold them); other kinds belong to other readers and are left out of both."""
    results, manifests = [], []
    for record in records:
        kind = record.get("kind", RESULT_KIND)
        if kind == MANIFEST_KIND:
            manifests.append(RunManifest.from_dict(record))
        elif kind == RESULT_KIND:
            results.append(record)
    return results, manifests


def expected_cases(manifests: Iterable[RunManifest], run_ids: Iterable[str]) -> dict[str, tuple[str, ExpectedCase]]:
    """case id -> (the newest of the given runs that collected it, the case)."""
    wanted = set(run_ids)
    out: dict[str, tuple[str, ExpectedCase]] = {}
    for manifest in sorted(manifests, key=lambda m: m.created_at):
        if manifest.run_id in wanted:
            for case in manifest.cases:
                out[case.case] = (manifest.run_id, case)
    return out
