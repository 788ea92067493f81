"""Regression thresholds, as pytest-benchmark's --benchmark-compare-fail: `rto_seconds:20%` fails when
the latest result is more than 20% above its baseline, `rpo_seconds:5` when more than 5 (units of the
metric) above. The baseline is the median of the earlier results of the same scenario+backend+scale
(the newest `window` of them). Every regression is collected; they are raised or reported once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from fixtures.config import ConfigError
from reports.frame import KEY, METRICS, earlier_results, latest_per_key

DEFAULT_WINDOW = 5


@dataclass(frozen=True)
class Threshold:
    """How much worse than its baseline a metric may get: a fraction (`relative`) or an amount."""

    metric: str
    limit: float
    relative: bool

    @property
    def spec(self) -> str:
        return f"{self.metric}:{self.limit * 100:g}%" if self.relative else f"{self.metric}:{self.limit:g}"

    def exceeded(self, value: float, baseline: float) -> bool:
        if self.relative:
            return value > baseline * (1 + self.limit) if baseline > 0 else value > baseline
        return value - baseline > self.limit


_SPEC = re.compile(r"\s*([a-z_]+)\s*:\s*(\d+(?:\.\d+)?)\s*(%?)\s*")


def parse_threshold(spec: str) -> Threshold:
    m = _SPEC.fullmatch(spec)
    if not m or m.group(1) not in METRICS:
        raise ConfigError(
            f"regression threshold {spec!r} is not METRIC:LIMIT or METRIC:LIMIT%: METRIC is one of "
            f"{', '.join(METRICS)}, e.g. 'rto_seconds:20%' (20% above the baseline) or 'rpo_seconds:5' (5 more)"
        )
    limit = float(m.group(2))
    return Threshold(m.group(1), limit / 100 if m.group(3) else limit, bool(m.group(3)))


def parse_thresholds(specs: Iterable[str]) -> tuple[Threshold, ...]:
    """Each spec may itself hold several, separated by commas or whitespace."""
    return tuple(parse_threshold(s) for spec in specs for s in re.split(r"[,\s]+", spec.strip()) if s)


@dataclass(frozen=True)
class Regression:
    scenario: str
    backend: str
    scale: str
    threshold: Threshold
    value: float
    baseline: float
    baseline_runs: int

    def describe(self) -> str:
        change = f"{(self.value / self.baseline - 1) * 100:+.1f}%" if self.baseline > 0 else "from 0"
        return (
            f"{self.scenario} [{self.backend}, {self.scale}]: {self.threshold.metric} {self.value:.3f} vs baseline "
            f"{self.baseline:.3f} (median of {self.baseline_runs} earlier run(s), {change}) exceeds {self.threshold.spec}"
        )


class DrillRegression(AssertionError):
    """Raised once with every regression found (pytest-benchmark's PerformanceRegression)."""

    def __init__(self, regressions: list[Regression]) -> None:
        self.regressions = regressions
        super().__init__("drill results regressed:\n" + "\n".join(f"  {r.describe()}" for r in regressions))


def find_regressions(
    frame: pd.DataFrame, run_ids: Iterable[str], thresholds: Iterable[Threshold], *, window: int = DEFAULT_WINDOW
) -> list[Regression]:
    """Every threshold exceeded by a result of `run_ids` against earlier results (a first result has no
    baseline and cannot regress)."""
    ids, checks = list(run_ids), list(thresholds)
    found = []
    for _, row in latest_per_key(frame[frame["run_id"].isin(ids)]).iterrows():
        before = earlier_results(frame, row, ids).tail(window)
        if before.empty:
            continue
        for threshold in checks:
            baseline = float(before[threshold.metric].median())
            value = float(row[threshold.metric])
            if threshold.exceeded(value, baseline):
                scenario, backend, scale = (str(row[k]) for k in KEY)
                found.append(Regression(scenario, backend, scale, threshold, value, baseline, len(before)))
    return found


def check_regressions(
    frame: pd.DataFrame, run_ids: Iterable[str], thresholds: Iterable[Threshold], *, window: int = DEFAULT_WINDOW
) -> None:
    found = find_regressions(frame, run_ids, thresholds, window=window)
    if found:
        raise DrillRegression(found)
