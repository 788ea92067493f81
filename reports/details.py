"""The details a drill result records, each declared once: its name, type and meaning. A judged result
with an undeclared or mistyped detail is refused when it is recorded (UndeclaredDetail), so a renamed key
cannot silently leave an audit item unchecked; reports/ (audit, metrics, frame) read details by these
names (`DETAILS[...]`, or the constants below), and a test checks every name they read is declared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class UndeclaredDetail(ValueError):
    """A drill recorded a detail that is not declared here, or with the wrong type."""


@dataclass(frozen=True)
class Detail:
    name: str
    kind: type | tuple[type, ...]
    meaning: str
    optional: bool = False  # None allowed (e.g. no backup restored)

    def problem(self, value: object) -> str | None:
        if value is None and self.optional:
            return None
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return None  # JSON has one number type
        return None if isinstance(value, kinds) else f"{self.name}: {type(value).__name__}, declared {kinds}"


N = (int, float)
_DECLARED: tuple[Detail, ...] = (
    # every drill
    Detail("artifacts", str, "folder of the drill's servers, logs, ledger and notifications"),
    Detail("sqld_args", list, "extra sqld flags every drill server ran with (drill_sqld_args)"),
    Detail("failure_at", str, "ISO instant of the damage"),
    Detail("recovery_cut_write", int, "id of the newest ledger write the recovered database holds (0: none)"),
    Detail("row_counts", dict, "rows per table in the recovered database"),
    Detail("load", dict, "requested and achieved write rate, latency p50/p99 before and after, reads"),
    Detail("workload", dict, "the schema workload's plan on a team's own seed (tables written, skipped)"),
    Detail("detected_by", str, "what noticed the damage (monitor, quick_check, app check, refusal)"),
    Detail("recovered_by", str, "the layer and candidate that serves after the recovery"),
    # layer 1
    Detail("backup_format", str, "layer-1 format: page (snapshot by file) or dump (SQL text)"),
    Detail("layer1_policy", str, "layer-1 schedule and retention the drill ran with (Policy.describe)"),
    Detail("backups_taken", int, "layer-1 backups taken before the damage"),
    Detail("layer1_backup_failures", int, "layer-1 backups that failed before the damage"),
    Detail("backup_cycle_seconds", list, "seconds each layer-1 backup cycle took"),
    Detail("backup_id", str, "the layer-1 backup restored", optional=True),
    Detail("backup_taken_at", str, "ISO instant the restored layer-1 backup was taken"),
    Detail("backup_bytes", int, "stored bytes of the restored layer-1 backup"),
    Detail("backup_replication_index", int, "replication frame number of the restored page snapshot"),
    Detail("backups_refused", list, "[backup id, why] of every layer-1 candidate the gate refused"),
    Detail("restore_attempts", int, "candidates tried until one passed the gate"),
    Detail("restored_by", str, "by file (verified before serving) or by dump replay"),
    # layer 2
    Detail("layer2", dict, "bottomless configuration: bucket, region, batch interval (namespace, database id)"),
    Detail("layer2_policy", str, "layer-2 continuity and retention: the bucket's lifecycle rule, read back"),
    Detail("incident", dict, "the row deletion: tables, rows, keys, instant, pinned rows"),
    Detail("recovery", str, "surgical repair or rewind"),
    Detail("pitr_requested_point", str, "the point in time the fork was asked for"),
    Detail("pitr_fork_seconds", float, "seconds the fork took"),
    Detail("pitr_gap_before_incident_seconds", float, "seconds between the fork point and the incident"),
    Detail("pitr_newest_write_in_fork", str, "the newest ledger write the fork holds"),
    Detail("pitr_first_write_not_in_fork", str, "the oldest ledger write the fork lacks", optional=True),
    Detail("pitr_point_to_fork_state_seconds", float, "the fork's state against the requested point (granularity)"),
    Detail("pitr_upload_proof", dict, "the WAL batches proven in S3 before the point"),
    Detail("rows_restored", dict, "rows put back per table by the surgical repair"),
    Detail("rows_restored_total", int, "rows put back in all"),
    Detail("rows_removed", dict, "rows the rewind removed per table"),
    Detail("rows_rewritten", dict, "rows the rewind set back per table"),
    Detail("writes_acked_after_incident", int, "writes acknowledged between the incident and the rewind"),
    Detail("sequence", dict, "the random incident/recovery sequence of a stateful drill"),
    Detail(
        "pitr_earlier_points", list, "earlier restore points a surgical repair read rows the fork could not tell from"
    ),
    Detail("pitr_fork_attempts", int, "forks asked until one answered (a 500 is asked again)"),
    Detail("damage", dict, "what the table-corruption damage did to the file"),
    Detail("settle", dict, "the offline checkpoint before the damage: data-wal bytes before, frames moved"),
    Detail("wal_bytes_at_damage", int, "bytes left in data-wal when the file was damaged"),
    Detail("start_refused", bool, "the server refused to start on the damaged file"),
    Detail("layer2_naive_restore", str, "what the gate said of layer 2's newest generation alone"),
    Detail("layer2_naive_seconds", float, "seconds that naive layer-2 restore took"),
    Detail("roll_forward", str, "what became of the layer-2 roll-forward past the backup"),
    Detail("rolled_forward_to", str, "the point in time of the roll-forward fork"),
    Detail("roll_forward_upload_proof", dict, "the WAL batches proven in S3 before that point"),
    Detail("rpo_backup_only_seconds", N, "RPO had only the layer-1 backup served", optional=True),
    Detail("rpo_backup_only_writes", int, "writes lost had only the layer-1 backup served", optional=True),
    Detail("rpo_with_wal_seconds", N, "RPO of the layer-2 (WAL) candidate", optional=True),
    Detail("rpo_with_wal_writes", int, "writes lost by the layer-2 (WAL) candidate", optional=True),
    # layer 4
    Detail("layer4_policy", str, "layer-4 schedule and retention in the drill (Policy.describe)"),
    Detail("layer4_production_policy", str, "layer-4 schedule and retention in production"),
    Detail("layer4_key", str, "offsite key id and where it came from (never the key)"),
    Detail("offsite_tls", str, "the offsite endpoint's TLS handshake (version, cipher, verified)"),
    Detail("offsite_fault", str, "the damage done to the newest offsite copy"),
    Detail("offsite_copies", int, "offsite copies made"),
    Detail("offsite_copies_before_outage", int, "offsite copies held when the region went away"),
    Detail("offsite_copies_held", int, "offsite copies the offsite bucket holds at recovery"),
    Detail("offsite_bytes_moved", int, "bytes the replicator copied offsite"),
    Detail("offsite_copy_seconds_max", float, "the longest offsite copy"),
    Detail("offsite_cycle_seconds_max", float, "the longest offsite cycle"),
    Detail("offsite_interval_seconds", float, "seconds between offsite cycles in the drill"),
    Detail("backup_interval_seconds", float, "seconds between layer-1 backups in the drill"),
    Detail("offsite_backup_id", str, "the offsite copy restored", optional=True),
    Detail("offsite_backup_taken_at", str, "ISO instant the restored offsite copy's backup was taken"),
    Detail("offsite_backup_replicated_at", str, "ISO instant it was copied offsite"),
    Detail("offsite_backup_format", str, "format of the restored offsite copy"),
    Detail("offsite_key_id", str, "the key id that opened it"),
    Detail("offsite_refused", list, "[copy id, why] of every offsite candidate refused"),
    Detail("offsite_restore_error", str, "why no offsite copy could be restored"),
    Detail("recovery_bytes_downloaded", int, "bytes the recovery downloaded, refused candidates included"),
    Detail("requests_during_recovery", dict, "S3 requests per region during the recovery"),
    Detail("layer2_objects_before_outage", int, "layer-2 objects copied offsite before the outage"),
    Detail("layer2_objects_copied", int, "layer-2 objects copied offsite in all"),
    Detail("layer2_objects_restored", int, "layer-2 objects decrypted into the scratch bucket"),
    Detail("layer2_sealed_bytes", int, "sealed bytes of those objects"),
    Detail("layer2_scratch_endpoint", str, "the scratch S3 endpoint the WAL restore read"),
    Detail("layer2_restore_error", str, "why the layer-2 offsite restore failed"),
    # protection resumes after the recovery (scenarios/protection.py; not part of the RTO)
    Detail("protected_again", dict, "per layer armed again: where to, first copy after, proof, interruption"),
    Detail("protected_again_seconds", dict, "per layer: seconds until its first new copy was proven; total"),
    # ransomware and a lost key
    Detail("defences", dict, "the offsite defences in place (Object Lock, separate credentials)"),
    Detail("iam_enforced", str, "how the drill's own S3 accounts were shown to enforce IAM"),
    Detail("offsite_copies_before_attack", int, "offsite copies held when the attack began"),
    Detail("attack", dict, "the attacker's attempts by kind and outcome (refused, absorbed, destroyed)"),
    Detail("offsite_listing_error", str, "why the offsite versions could not be listed after the attack"),
    Detail("offsite_after_attack", dict, "versions and delete markers left offsite after the attack"),
    Detail("key_obtained", dict, "how the layer-4 key was got at recovery (key service or escrow), in how long"),
    Detail("key_service", str, "the drill's key service (a KMS stand-in on 127.0.0.1) the offsite key comes from"),
    Detail("recovery_key", str, "where the recovery key that opens the escrow comes from (never the key)"),
    Detail("key_escrow", str, "where the data key's escrow (wrapped under the recovery key) is kept"),
)
DETAILS: Mapping[str, Detail] = {d.name: d for d in _DECLARED}

# the names reports/ read, by what they stand for
LAYER_POLICY = {1: "layer1_policy", 2: "layer2_policy", 4: "layer4_policy"}
BACKUP_TAKEN = {1: "backup_taken_at", 4: "offsite_backup_taken_at"}


def problems(details: Mapping[str, object]) -> list[str]:
    """Every undeclared or mistyped detail."""
    out = []
    for name, value in details.items():
        declared = DETAILS.get(name)
        problem = f"{name}: not declared in reports/details.py" if declared is None else declared.problem(value)
        if problem:
            out.append(problem)
    return out


def checked(details: Mapping[str, object]) -> dict[str, object]:
    """`details`, or UndeclaredDetail naming every problem."""
    found = problems(details)
    if found:
        raise UndeclaredDetail("; ".join(found) + ": declare each detail in reports/details.py")
    return dict(details)


def detail(details: Mapping[str, object], name: str) -> object:
    """A recorded detail read by its declared name (None when the result does not carry it)."""
    if name not in DETAILS:
        raise UndeclaredDetail(f"{name}: reports read a detail nobody declares (reports/details.py)")
    return details.get(name)
