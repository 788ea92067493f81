"""Regressions against thresholds, as pytest-benchmark's --benchmark-compare-fail: `rto_seconds:20%` fails when
the latest result is more than 20% above its baseline, `rpo_seconds:5` when more than 5 (units of the
metric) above. The baseline is the median of the earlier results of the same scenario+backend+scale
(the newest `window` of them). Every regression is collected and reported once. Thresholds are parsed
with the settings (fixtures.config.parse_thresholds)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from fixtures.config import Threshold
from reports.frame import KEY, earlier_results, latest_per_key

DEFAULT_WINDOW = 5


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
