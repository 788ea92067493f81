"""Prometheus metrics of the history (reports/metrics.py, `reports.cli metrics`), read back with
prometheus-client's own text parser."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from reports.frame import to_frame
from reports.history import FileHistory
from reports.metrics import write_metrics
from reports.result import DrillError
from tests import synthetic_history as synth
from tests.drillrun import ROOT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def key(scenario: str, backend: str, scale: str = "2MB") -> tuple[tuple[str, str], ...]:
    return (("backend", backend), ("scale", scale), ("scenario", scenario))


def test_metrics_of_the_newest_results_per_scenario_backend_and_scale(tmp_path: Path) -> None:
    results = synth.history(2)
    failed = synth.with_failure(synth.result("total-loss", "process", 2), "RTO exceeds the objective")
    crashed = replace(synth.result("region-outage", "container", 2), error=DrillError("detect", "TimeoutError", "x"))
    samples = parse(
        write_metrics(to_frame(synth.records([*results, failed, crashed])), tmp_path / "d.prom").read_text()
    )
    assert samples[("drill_passed", key("total-loss", "process"))] == 0
    assert samples[("drill_rto_seconds", key("total-loss", "process"))] == failed.rto_seconds
    assert samples[("drill_rpo_writes", key("total-loss", "process"))] == failed.rpo_writes
    passed_before = next(r for r in results if (r.run_id, r.scenario, r.backend, r.scale)
                         == ("run01", "total-loss", "process", "2MB"))  # fmt: skip
    assert (
        samples[("drill_last_success_timestamp_seconds", key("total-loss", "process"))]
        == datetime.fromisoformat(passed_before.started_at).timestamp()
    )
    assert samples[("drill_passed", key("region-outage", "container"))] == 0
    assert math.isnan(samples[("drill_rto_seconds", key("region-outage", "container"))])  # crashed: nothing measured
    assert samples[("drill_passed", key("total-loss", "process", "100MB"))] == 1
    everything = [*results, failed, crashed]  # a backup taken before a failed drill was still taken
    layer1 = max(datetime.fromisoformat(r.details["backup_taken_at"]).timestamp() for r in everything
                 if "backup_taken_at" in r.details)  # fmt: skip
    assert samples[("backup_last_success_timestamp_seconds", (("layer", "1"),))] == layer1
    assert ("backup_last_success_timestamp_seconds", (("layer", "4"),)) in samples
    assert len([k for k in samples if k[0] == "drill_passed"]) == 9


def test_cli_writes_the_textfile(tmp_path: Path) -> None:
    history = FileHistory(tmp_path / "h.jsonl")
    for record in synth.records(synth.history(1)):
        history.append(record)
    out = tmp_path / "textfile" / "drills.prom"
    done = subprocess.run([sys.executable, "-m", "reports.cli", "metrics", "--history", f"file:{history.path}",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    samples = parse(out.read_text())
    assert samples[("drill_passed", key("row-deletion-rewind", "container"))] == 1
