"""Certification of a run: each scenario's measured RPO/RTO against its objectives, and one verdict over
the four layers. A layer is certified when the run holds at least one drill of it and every such drill
passed; a layer with no drill is "not certified" and says so. Written as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reports.frame import latest_per_key
from reports.manifest import RunManifest, expected_cases
from reports.restore_tests import RestoreTestEvidence, with_restore_tests
from reports.restore_tests import markdown as restore_tests_markdown
from reports.result import Objectives, judge

LAYERS = {1: "automated backups", 2: "point-in-time recovery (PITR)", 3: "verification", 4: "offsite copies"}
CERTIFIED, NOT_CERTIFIED = "certified", "not certified"


@dataclass(frozen=True)
class ScenarioOutcome:
    scenario: str
    backend: str
    scale: str
    layers: str
    verdict: str  # the drill's own verdict (checks and objectives)
    measured: dict[str, float]
    objectives: dict[str, float | None]
    missed: list[str]  # objectives missed
    failures: list[str]  # every reason the drill failed

    @property
    def label(self) -> str:
        return f"{self.scenario} [{self.backend}, {self.scale}]"


@dataclass(frozen=True)
class LayerVerdict:
    layer: int
    name: str
    verdict: str
    reason: str
    scenarios: list[str]


@dataclass(frozen=True)
class Certificate:
    verdict: str
    reasons: list[str]
    run_ids: list[str]
    started: str
    finished: str
    issued_at: str
    sqld_versions: list[str]
    backends: list[str]
    images: list[str]
    commits: list[str]
    history: str
    layers: list[LayerVerdict]
    scenarios: list[ScenarioOutcome]
    # every collected case (run manifest) that failed, crashed or never recorded a result, with why
    cases_not_passed: list[str] = field(default_factory=list)
    restore_tests: list[RestoreTestEvidence] = field(default_factory=list)  # layer-3 evidence beside the drills

    @property
    def objectives_missed(self) -> bool:
        return any(s.missed for s in self.scenarios)

    @property
    def scenario_failed(self) -> bool:
        return any(s.verdict != "pass" for s in self.scenarios) or bool(self.cases_not_passed)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when an objective was missed or a scenario failed (or, strict, when anything is not certified)."""
        bad = self.objectives_missed or self.scenario_failed or (strict and self.verdict != CERTIFIED)
        return 1 if bad else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_markdown(self) -> str:
        lines = [
            "# Disaster-recovery drill certificate",
            "",
            f"**Verdict: {self.verdict.upper()}**",
            "",
            f"- run(s): {', '.join(self.run_ids)}",
            f"- drills ran: {self.started} .. {self.finished}",
            f"- issued: {self.issued_at}",
            f"- sqld: {', '.join(self.sqld_versions) or 'unknown'}",
            f"- backend(s): {', '.join(self.backends)}; image(s): {', '.join(self.images) or '-'}",
            f"- commit(s): {', '.join(self.commits) or 'unknown'}",
            f"- history: {self.history}",
            "",
        ]
        if self.reasons:
            lines += ["## Why not certified", "", *[f"- {_cell(r)}" for r in self.reasons], ""]
        lines += ["## Layers", "", "| layer | verdict | reason |", "|---|---|---|"]
        lines += [f"| {v.layer} {v.name} | {v.verdict} | {_cell(v.reason)} |" for v in self.layers]
        lines += ["", "## Scenarios", "",
                  "| scenario | layers | RTO s (objective) | RPO s (objective) | RPO writes (objective) | verdict |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for s in self.scenarios:
            obj_writes = s.objectives.get("rpo_writes")
            lines.append(
                f"| {s.label} | {s.layers} | {s.measured['rto_seconds']:.2f} ({s.objectives['rto_seconds']:g}) "
                f"| {s.measured['rpo_seconds']:.2f} ({s.objectives['rpo_seconds']:g}) "
                f"| {s.measured['rpo_writes']:g} ({'-' if obj_writes is None else f'{obj_writes:g}'}) "
                f"| {s.verdict.upper()} |"
            )
        lines += restore_tests_markdown(self.restore_tests)
        failing = [(s, f) for s in self.scenarios for f in s.failures]
        if failing:
            lines += ["", "## Failures", "", *[f"- {s.label}: {_cell(f)}" for s, f in failing]]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        as_json, as_md = folder / "certificate.json", folder / "certificate.md"
        as_json.write_text(self.to_json() + "\n")
        as_md.write_text(self.to_markdown())
        return as_json, as_md


def _when(value: Any) -> str:
    return "" if pd.isna(value) else value.isoformat()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _outcome(row: pd.Series) -> ScenarioOutcome:
    obj_writes = row["objective_rpo_writes"]
    obj_writes = None if obj_writes is None or pd.isna(obj_writes) else int(obj_writes)
    objectives = Objectives(float(row["objective_rpo_seconds"]), float(row["objective_rto_seconds"]), obj_writes)
    measured = {k: float(row[k]) for k in ("rto_seconds", "rpo_seconds", "rpo_writes")}
    missed = judge(objectives, rto=measured["rto_seconds"], rpo_seconds=measured["rpo_seconds"],
                   rpo_writes=int(measured["rpo_writes"]), check_failures=[])  # fmt: skip
    return ScenarioOutcome(
        scenario=str(row["scenario"]), backend=str(row["backend"]), scale=str(row["scale"]), layers=str(row["layers"]),
        verdict=str(row["verdict"]), measured=measured, objectives=asdict(objectives), missed=missed,
        failures=list(row["failures"]),
    )  # fmt: skip


def _layer_verdict(layer: int, run: pd.DataFrame, outcomes: list[ScenarioOutcome], run_label: str) -> LayerVerdict:
    covering = [o for o, layers in zip(outcomes, run["layer_set"], strict=True) if layer in layers]
    names = [o.label for o in covering]
    if not covering:
        return LayerVerdict(layer, LAYERS[layer], NOT_CERTIFIED, f"no drill of layer {layer} in run {run_label}", names)
    failed = [o for o in covering if o.verdict != "pass"]
    if failed:
        why = "; ".join(f"{o.label} failed ({o.failures[0] if o.failures else o.verdict})" for o in failed)
        return LayerVerdict(layer, LAYERS[layer], NOT_CERTIFIED, why, names)
    return LayerVerdict(layer, LAYERS[layer], CERTIFIED, f"{len(covering)} drill(s) passed", names)


def cases_not_passed(frame: pd.DataFrame, manifests: Iterable[RunManifest], run_ids: list[str]) -> list[str]:
    """Each case the runs collected whose results (in the newest run that collected it) are missing, or
    not all passing: named with its scenario, backend and why."""
    out = []
    for case_id, (run_id, case) in expected_cases(manifests, run_ids).items():
        rows = frame[(frame["run_id"] == run_id) & (frame["case"] == case_id)]
        label = f"{case_id} ({case.scenario or 'scenario chosen at run time'}, {case.backend or 'no backend'})"
        if rows.empty:
            out.append(f"{label}: collected in run {run_id} but never recorded a result (it crashed before "
                       "the drill ran, or the run was cut short)")  # fmt: skip
            continue
        for _, row in rows[rows["verdict"] != "pass"].iterrows():
            why = row["failures"][0] if len(row["failures"]) else row["verdict"]
            out.append(f"{label}: {str(row['verdict']).upper()} in run {run_id}: {why}")
    return out


def certify(
    frame: pd.DataFrame, run_ids: list[str], *, history: str = "", now: datetime | None = None,
    manifests: Iterable[RunManifest] = (), restore_tests: Sequence[RestoreTestEvidence] = (),
) -> Certificate:  # fmt: skip
    """Certify the newest result of each scenario+backend+scale among the given runs, and (where the runs
    left a manifest) that every case they collected recorded passing results."""
    selected = frame[frame["run_id"].isin(run_ids)]
    not_passed = cases_not_passed(frame, manifests, run_ids)
    if selected.empty and not not_passed:
        raise ValueError(f"no drill results for run(s) {', '.join(run_ids) or '(none)'}: run `pytest drills` first")
    run = latest_per_key(selected)
    outcomes = [_outcome(row) for _, row in run.iterrows()]
    label = ", ".join(run_ids)
    layers = [_layer_verdict(n, run, outcomes, label) for n in LAYERS]
    layers[2] = with_restore_tests(layers[2], restore_tests)
    reasons = [f"layer {v.layer} ({v.name}): {v.reason}" for v in layers if v.verdict != CERTIFIED]
    reasons += [f"{o.label}: {m}" for o in outcomes for m in o.missed]
    reasons += [f"case {c}" for c in not_passed]
    verdict = CERTIFIED if not reasons and all(o.verdict == "pass" for o in outcomes) else NOT_CERTIFIED

    def distinct(column: str) -> list[str]:
        return sorted({str(v) for v in selected[column] if str(v)})

    return Certificate(
        verdict=verdict, reasons=reasons, run_ids=list(run_ids),
        started=_when(selected["started_at"].min()), finished=_when(selected["started_at"].max()),
        issued_at=(now or datetime.now(UTC)).isoformat(), sqld_versions=distinct("sqld_version"),
        backends=distinct("backend"), images=distinct("image"), commits=distinct("commit"), history=history,
        layers=layers, scenarios=outcomes, cases_not_passed=not_passed, restore_tests=list(restore_tests),
    )  # fmt: skip
