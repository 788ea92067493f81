"""DrillResult: the one record every report reads. Objectives and the verdict against them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from reports.manifest import RESULT_KIND

PHASES = ("detect", "key", "provision", "restore", "verify", "repoint")  # key: getting the layer-4 key


@dataclass(frozen=True)
class DrillError:
    """What crashed a drill: the step it was in, and the exception (secrets redacted)."""

    phase: str  # arm, warm-up, prepare, baseline, damage, detect, recover, verify
    type: str
    message: str

    def describe(self) -> str:
        return f"crashed in {self.phase}: {self.type}: {self.message}"


@dataclass(frozen=True)
class Objectives:
    """What a recovery must achieve: data loss (seconds and, optionally, writes) and time to service."""

    rpo_seconds: float
    rto_seconds: float
    rpo_writes: int | None = None

    def override(self, values: dict[str, float] | None) -> Objectives:
        if not values:
            return self
        merged = {**asdict(self), **values}
        if merged.get("rpo_writes") is not None:
            merged["rpo_writes"] = int(merged["rpo_writes"])
        return Objectives(**merged)


@dataclass(frozen=True)
class DrillResult:
    run_id: str
    drill: str  # the pytest node id
    scenario: str
    layers: str  # e.g. "1+3"
    started_at: str  # UTC ISO-8601
    backend: str
    image: str
    sqld_version: str
    scale: str
    db_bytes: int
    phases: dict[str, float]
    rto_seconds: float
    rpo_writes: int
    rpo_rows: int
    rpo_seconds: float
    acked_writes: int
    in_doubt_writes: int
    objectives: Objectives
    checks: list[dict[str, Any]]
    failures: list[str]
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)
    case: str = ""  # the pytest case id (a property drill records several results under one case)
    error: DrillError | None = None  # set when the drill crashed before it could be judged
    backend_fallback: str = ""  # why drill_backend=auto ran this drill on another backend than container
    # the outage the application saw through the service address (first failed request -> first write
    # acknowledged after the recovery); None when it saw no failed request
    app_outage_seconds: float | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "fail" if self.failures else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": RESULT_KIND, "verdict": self.verdict}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DrillResult:
        data = {k: v for k, v in raw.items() if k not in ("verdict", "kind")}
        data["objectives"] = Objectives(**data["objectives"])
        if data.get("error") is not None:
            data["error"] = DrillError(**data["error"])
        return cls(**data)

    def explain(self) -> str:
        lines = [f"{self.scenario} on {self.backend}: {self.verdict.upper()}"]
        if self.backend_fallback:
            lines.append(f"  backend: {self.backend_fallback}")
        lines += [f"  - {f}" for f in self.failures]
        lines.append(
            f"  RPO {self.rpo_writes} writes / {self.rpo_seconds:.2f}s (objective {self.objectives.rpo_seconds:g}s)"
        )
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items())
        lines.append(f"  RTO {self.rto_seconds:.2f}s = {phases} (objective {self.objectives.rto_seconds:g}s)")
        return "\n".join(lines)


def judge(
    objectives: Objectives, *, rto: float, rpo_seconds: float, rpo_writes: int, check_failures: list[str]
) -> list[str]:
    """Every reason the drill fails: failed verification checks first, then missed objectives."""
    failures = list(check_failures)
    if rto > objectives.rto_seconds:
        failures.append(f"RTO {rto:.2f}s exceeds the objective {objectives.rto_seconds:g}s")
    if rpo_seconds > objectives.rpo_seconds:
        failures.append(f"RPO {rpo_seconds:.2f}s exceeds the objective {objectives.rpo_seconds:g}s")
    if objectives.rpo_writes is not None and rpo_writes > objectives.rpo_writes:
        failures.append(f"RPO {rpo_writes} lost writes exceeds the objective {objectives.rpo_writes}")
    return failures
