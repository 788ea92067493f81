"""Every drill must go red when its recovery is broken: run it with a sabotaged recovery and check the
drill fails for the right reason and records a failing verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.drillrun import run_pytest

CASES = [
    # (drill, sabotage, words the failure must contain)
    ("drills/test_total_loss.py", "total-loss-restore-noop", "row_counts"),  # page: the file never placed
    ("drills/test_total_loss_dump.py", "total-loss-restore-noop", "row_counts"),  # dump: never replayed
    ("drills/test_total_loss.py", "total-loss-page-checksum-mismatch", "checksum mismatch"),
    ("drills/test_total_loss.py", "total-loss-page-corrupt-file", "refused before serving: integrity_check"),
    ("drills/test_own_schema.py::test_own_schema[process-total-loss]", "total-loss-restore-noop", "row_counts"),
    # the surgical repair refuses a fork that may hold the incident (it would have to guess from there)
    (
        "drills/test_row_deletion.py::test_row_deletion_surgical",
        "pitr-surgical-fork-after-incident",
        "may hold the incident",
    ),
    ("drills/test_row_deletion.py::test_row_deletion_rewind", "pitr-rewind-fork-after-incident", "row_counts"),
    ("drills/test_row_deletion.py::test_row_deletion_surgical", "pitr-surgical-skipped", "row_counts"),
    (  # the schema-derived incident on a foreign schema: a repair that leaves one table out is caught
        "drills/test_own_schema.py::test_own_schema[process-row-deletion-surgical]",
        "pitr-repair-skips-a-table",
        "row_counts",
    ),
    # the service address follows the recovery 2 s late: the application's own outage no longer agrees
    ("drills/test_total_loss.py", "service-repointed-late", "app_outage_agrees"),
    # the random sequences: the invariant (database = seed + ledger) catches it after the first repair
    ("drills/test_pitr_stateful.py", "pitr-repair-skips-a-table", "sequence_invariant: after"),
    ("drills/test_region_outage.py::test_region_outage", "region-outage-offsite-disabled", "no offsite copies"),
    (
        "drills/test_region_outage.py::test_region_outage_with_offsite_wal",
        "region-outage-wal-objects-skipped",
        "layer2_offsite_restored",
    ),
    # Object Lock removed: the writer keys the attacker found overwrite and delete the only copies
    ("drills/test_ransomware.py", "ransomware-no-object-lock", "no offsite copy survived the attack"),
    # Object Lock and separate credentials removed: the primary's keys delete every version
    ("drills/test_ransomware.py", "ransomware-no-lock-shared-credentials", "no offsite copy survived the attack"),
    # the key service is down and the escrow blob was never stored: nothing holds the key
    ("drills/test_key_unavailable.py", "key-escrow-lost", "the escrow failed: no escrow of"),
    (
        "drills/test_table_corruption.py::test_table_corruption[process-index]",
        "table-corruption-restore-skipped",
        "row_counts",
    ),
    (
        "drills/test_table_corruption.py::test_table_corruption[process-table]",
        "table-corruption-restore-damaged-copy",
        "integrity_check",
    ),
    # protection resumes after the recovery: a layer not armed again on the recovered server, or whose first
    # new copy does not restore, fails the drill although the recovery itself passed
    ("drills/test_total_loss.py", "protect-layer1-not-restarted", "protected_again_layer1"),
    ("drills/test_total_loss_dump.py", "protect-layer1-unrestorable", "checksum mismatch"),
    (
        "drills/test_table_corruption.py::test_table_corruption[process-table-bottomless]",
        "protect-layer2-not-rearmed",
        "the recovered database is not streaming its WAL",
    ),
    ("drills/test_region_outage.py::test_region_outage", "protect-layer4-not-restarted", "layer 4 did not resume"),
]

# a broken recovery fails its checks (verdict fail); these the recovery itself refuses (an error record)
REFUSED = {"pitr-surgical-fork-after-incident"}


@pytest.mark.parametrize(("drill", "sabotage", "reason"), CASES, ids=[f"{c[1]}-{c[0].split('/')[-1]}" for c in CASES])
def test_drill_fails_when_recovery_is_broken(tmp_path: Path, drill: str, sabotage: str, reason: str) -> None:
    run = run_pytest(
        [drill, "-p", "tests.sabotage", "--drill-backend=process", "--drill-backup-interval=1",
         "--drill-backup-retention-count=4"],
        tmp_path, env={"DRILL_SABOTAGE": sabotage},
    )  # fmt: skip
    assert run.returncode == 1, run.output[-3000:]
    assert "1 failed" in run.output
    assert reason in run.output, run.output[-3000:]
    verdicts = [r["verdict"] for r in run.history]
    expected = "error" if sabotage in REFUSED else "fail"
    if drill == "drills/test_pitr_stateful.py":  # hypothesis runs its failing sequence once more to report it
        assert verdicts and set(verdicts) == {expected}, verdicts
    else:
        assert verdicts == [expected], verdicts


def test_ransomware_object_lock_alone_holds(tmp_path: Path) -> None:
    """One defence removed, the other holds: the offsite copies written with the primary's own (s3:*) keys,
    Object Lock kept. IAM no longer stops the attacker; the lock refuses every version delete, and the
    recovery falls back past the attacker's versions."""
    run = run_pytest(["drills/test_ransomware.py", "-p", "tests.sabotage", "--drill-backend=process"], tmp_path,
                     env={"DRILL_SABOTAGE": "ransomware-shared-credentials"})  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    (record,) = run.history
    attack = record["details"]["attack"]
    assert record["verdict"] == "pass" and attack["offsite_destroyed"] == 0, attack
    assert attack["offsite"]["delete version"]["refused"] > 0, attack["offsite"]
    assert record["details"]["defences"]["offsite_written_with"].startswith("the primary's credentials")


def test_key_unavailable_without_escrow_fails_clearly(tmp_path: Path) -> None:
    """No recovery key configured (drill_recovery_key = none) and the key service down: nothing else holds
    the key, and the drill fails with one message naming the problem and the fix."""
    run = run_pytest(
        ["drills/test_key_unavailable.py", "--drill-backend=process", "--drill-recovery-key=none"], tmp_path
    )
    assert run.returncode == 1, run.output[-3000:]
    (record,) = run.history
    assert record["verdict"] == "fail"
    error = record["details"]["key_obtained"]["error"]
    assert "did not answer" in error and "no escrow is configured" in error and "drill_recovery_key" in error, error
    assert any(error in f for f in record["failures"]), record["failures"]


def test_unsabotaged_drill_passes(tmp_path: Path) -> None:
    """The control: the same command without sabotage passes and records a passing verdict."""
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=process"], tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert [r["verdict"] for r in run.history] == ["pass"]
