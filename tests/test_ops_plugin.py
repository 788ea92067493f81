"""A real drill run with drill_notify_url (a real HTTP server on 127.0.0.1) and drill_metrics: backups,
the drill's verdict and the run's verdict are posted in order, the metrics file parses, and the webhook
URL (its token) shows nowhere in the output."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.drillrun import run_pytest
from tests.webhook_server import webhook_server


def test_a_drill_run_posts_its_verdicts_and_writes_metrics(tmp_path: Path) -> None:
    metrics = tmp_path / "textfile" / "drills.prom"
    with webhook_server([503]) as hook:  # the first post is refused once and retried
        run = run_pytest(["drills/test_total_loss.py", "--drill-backend=process", f"--drill-notify-url={hook.url}",
                          f"--drill-metrics={metrics}", "--drill-run-id=ops-e2e-1"], tmp_path, timeout=300)  # fmt: skip
    assert "1 passed" in run.output, run.output[-3000:]
    events = [p.get("event") for p in hook.delivered]
    assert "backup.success" in events and events[-2:] == ["drill.verdict", "run.verdict"], events
    backup = next(p for p in hook.delivered if p.get("event") == "backup.success")
    assert backup["layer"] == 1 and backup["text"].startswith("layer-1 backup succeeded")
    verdict, whole = hook.delivered[-2:]
    assert verdict["verdict"] == "pass" and verdict["run_id"] == "ops-e2e-1" and verdict["scenario"] == "total-loss"
    assert whole["text"].startswith("drill run ops-e2e-1 passed: 1 drill(s), 1 passed") and whole["run_ids"] == [
        "ops-e2e-1"
    ]
    assert "T0KEN" not in run.output
    assert f"metrics: {metrics}" in run.output
    samples = {(s.name, s.labels.get("scenario"), s.labels.get("layer")): s.value
               for family in text_string_to_metric_families(metrics.read_text()) for s in family.samples}  # fmt: skip
    assert samples[("drill_passed", "total-loss", None)] == 1
    assert samples[("drill_rto_seconds", "total-loss", None)] == run.history[0]["rto_seconds"]
    assert ("backup_last_success_timestamp_seconds", None, "1") in samples
    assert all(r["run_id"] == "ops-e2e-1" for r in run.history)
