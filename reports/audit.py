"""Readiness audit: the seed's checklists (per layer, design time, operation) as automated checks over the
drill history. Each item passes, fails, or is "not checkable" from what the drills record, and says why."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from fixtures.config import DrillConfig
from layers.policy import ScheduleError, longest_gap_seconds, schedule_of
from reports.certify import LAYERS
from reports.details import BACKUP_TAKEN, LAYER_POLICY, detail
from reports.frame import PHASE_COLUMNS, latest_per_key
from reports.result import Objectives, judge

PASS, FAIL, UNCHECKABLE = "pass", "fail", "not checkable"


@dataclass(frozen=True)
class AuditPolicy:
    """What the seed asks for: layer 1 kept 30 days (its daily full backup), PITR 7 days, offsite 90 days,
    a restore test every month."""

    layer1_retention_days: float = 30.0
    layer2_retention_days: float = 7.0
    layer4_retention_days: float = 90.0
    verification_max_age_days: float = 31.0


@dataclass(frozen=True)
class AuditItem:
    section: str
    question: str  # the seed's wording (Japanese) and its English
    status: str
    why: str


@dataclass(frozen=True)
class Audit:
    items: list[AuditItem]

    @property
    def failed(self) -> list[AuditItem]:
        return [i for i in self.items if i.status == FAIL]

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for i in self.items if i.status == s) for s in (PASS, FAIL, UNCHECKABLE)}

    def to_markdown(self) -> str:
        lines = ["| section | item | status | why |", "|---|---|---|---|"]
        for i in self.items:
            lines.append(f"| {i.section} | {i.question} | {i.status} | {i.why.replace('|', '/')} |")
        return "\n".join(lines) + "\n"


Verdict = tuple[str, str]  # (status, why)


class _Facts:
    """The history as the audit reads it: the newest result per scenario+backend+scale, per layer."""

    def __init__(self, frame: pd.DataFrame, policy: AuditPolicy, now: datetime, notify: str | None) -> None:
        """`notify`: where notifications go (None: the settings are not known)."""
        self.frame, self.policy, self.now, self.notify = frame, policy, now, notify
        self.latest = latest_per_key(frame)

    def of_layer(self, layer: int) -> pd.DataFrame:
        return self.latest[self.latest["layer_set"].map(lambda s: layer in s)] if not self.latest.empty else self.latest

    def none(self, layer: int) -> Verdict:
        return UNCHECKABLE, f"no layer-{layer} ({LAYERS[layer]}) drill in the history"


def _label(row: pd.Series) -> str:
    return f"{row['scenario']} [{row['backend']}, {row['scale']}]"


def _all(rows: pd.DataFrame, test: Callable[[pd.Series], str | None], good: str) -> Verdict:
    """FAIL naming every row `test` complains about, else PASS with `good`."""
    bad = [f"{_label(r)}: {msg}" for _, r in rows.iterrows() if (msg := test(r))]
    return (FAIL, "; ".join(bad)) if bad else (PASS, good)


def _kept_days(text: Any) -> float | None:
    m = re.search(r"kept (\d+(?:\.\d+)?) days", str(text or ""))
    return float(m.group(1)) if m else None


def _retention(f: _Facts, layer: int, key: str, required: float) -> Verdict:
    rows = f.of_layer(layer)
    if rows.empty:
        return f.none(layer)
    known = [(r, d) for _, r in rows.iterrows() if (d := _kept_days(detail(r["details"], key))) is not None]
    if not known:
        return UNCHECKABLE, f"the layer-{layer} results do not record a retention (details '{key}', 'kept N days')"
    short = [f"{_label(r)} keeps {d:g} days" for r, d in known if d < required]
    if short:
        return FAIL, f"{'; '.join(short)}: the policy asks for at least {required:g} days"
    return PASS, f"kept {min(d for _, d in known):g} days >= {required:g} ({detail(known[0][0]['details'], key)})"


def _check_outcome(f: _Facts, layer: int, name: str) -> Verdict:
    rows = f.of_layer(layer)
    if rows.empty:
        return f.none(layer)
    found = [(r, c) for _, r in rows.iterrows() for c in r["checks"] if c.get("name") == name]
    if not found:
        return UNCHECKABLE, f"no result records the check '{name}'"
    bad = [f"{_label(r)}: {c.get('detail', '')}" for r, c in found if not c.get("ok")]
    return (
        (FAIL, "; ".join(bad))
        if bad
        else (PASS, f"'{name}' ok in {len(found)} result(s): {found[0][1].get('detail', '')}")
    )


def _tested(f: _Facts, layer: int) -> Verdict:
    rows = f.of_layer(layer)
    if rows.empty:
        return f.none(layer)
    return _all(rows, lambda r: None if r["verdict"] == "pass" else "; ".join(r["failures"]) or "failed",
                f"{len(rows)} newest layer-{layer} drill(s) passed")  # fmt: skip


# -- the items ----------------------------------------------------------------------------------------
def backups_enabled(f: _Facts) -> Verdict:
    rows = f.of_layer(1)
    if rows.empty:
        return f.none(1)
    return _all(rows, lambda r: None if int(str(detail(r["details"], "backups_taken") or 0)) > 0 else "no backup was taken",
                "every newest layer-1 drill took scheduled backups")  # fmt: skip


def layer1_retention(f: _Facts) -> Verdict:
    return _retention(f, 1, LAYER_POLICY[1], f.policy.layer1_retention_days)


def layer1_notified(f: _Facts) -> Verdict:
    status, why = _check_outcome(f, 1, "layer1_notified")
    if f.notify is None:
        return status, why
    return status, f"{why}; {f.notify or 'no notify command or webhook set (drill_notify_command, drill_notify_url)'}"


def notify_targets(config: DrillConfig) -> str:
    """Where backup notifications go, the webhook by its host only (its URL carries the credentials)."""
    targets = [f"notify command {config.notify_command!r}"] if config.notify_command else []
    if config.notify_url:
        targets.append(f"webhook to {urlparse(config.notify_url).hostname}")
    return "; ".join(targets)


def backup_age_within_rpo(f: _Facts) -> Verdict:
    """The newest usable backup's age at the failure instant against the scenario's RPO objective."""
    measured = []
    for _, r in f.latest.iterrows():
        d = r["details"]
        taken, failed = detail(d, BACKUP_TAKEN[4]) or detail(d, BACKUP_TAKEN[1]), detail(d, "failure_at")
        if taken and failed:
            age = (datetime.fromisoformat(str(failed)) - datetime.fromisoformat(str(taken))).total_seconds()
            measured.append((r, age))
    if not measured:
        return UNCHECKABLE, "no result records when its newest backup was taken ('backup_taken_at')"
    bad = [f"{_label(r)}: {age:.1f}s > RPO {r['objective_rpo_seconds']:g}s" for r, age in measured
           if age > r["objective_rpo_seconds"]]  # fmt: skip
    if bad:
        return FAIL, "; ".join(bad)
    worst = max(measured, key=lambda m: m[1])
    return PASS, f"oldest at failure: {worst[1]:.1f}s ({_label(worst[0])}), within every RPO objective"


SCHEDULE_DETAILS = {n: LAYER_POLICY[n] for n in (1, 4)}  # the schedule each layer ran with (Policy.describe)


def schedule_meets_rpo(f: _Facts) -> Verdict:
    """Each schedule a newest layer-1/4 result ran with against its RPO objective: a failure just before a
    run loses everything since the previous one, so the longest gap between runs must fit in the RPO."""
    seen, bad = [], []
    for _, r in f.latest.iterrows():
        for layer, key in SCHEDULE_DETAILS.items():
            if layer not in r["layer_set"] or not detail(r["details"], key):
                continue
            when = schedule_of(str(detail(r["details"], key)))
            try:
                gap = longest_gap_seconds(when)
            except ScheduleError as exc:
                bad.append(f"{_label(r)}: layer {layer}: {exc}")
                continue
            seen.append(gap)
            if gap > r["objective_rpo_seconds"]:
                bad.append(f"{_label(r)}: layer {layer} schedule {when!r} runs up to {gap:g}s apart, so the RPO "
                           f"objective {r['objective_rpo_seconds']:g}s cannot be met; schedule backups at least every "
                           f"{r['objective_rpo_seconds']:g}s or raise the objective")  # fmt: skip
    if bad:
        return FAIL, "; ".join(bad)
    if not seen:
        return UNCHECKABLE, f"no layer-1/4 result records its schedule (details {', '.join(SCHEDULE_DETAILS.values())})"
    return PASS, f"{len(seen)} schedule(s), the longest gap {max(seen):g}s, within every RPO objective"


def pitr_enabled(f: _Facts) -> Verdict:
    rows = f.of_layer(2)
    if rows.empty:
        return f.none(2)
    return _all(rows, lambda r: None if detail(r["details"], "pitr_upload_proof") or detail(r["details"], "layer2") else
                "records no PITR (bottomless) configuration", "bottomless WAL streaming ran in every layer-2 drill")  # fmt: skip


def pitr_retention(f: _Facts) -> Verdict:
    rows = f.of_layer(2)
    if rows.empty:
        return f.none(2)
    if not any(_kept_days(detail(r["details"], LAYER_POLICY[2])) is not None for _, r in rows.iterrows()):
        return UNCHECKABLE, ("the layer-2 results do not record a WAL retention (details 'layer2_policy'); bottomless "
                             "keeps generations until deleted, so retention is the bucket's lifecycle rule")  # fmt: skip
    return _retention(f, 2, LAYER_POLICY[2], f.policy.layer2_retention_days)


def monthly_restore(f: _Facts) -> Verdict:
    passed = f.frame[f.frame["verdict"] == "pass"]
    if passed.empty:
        return FAIL, "no drill in the history has passed"
    newest = passed["started_at"].max().to_pydatetime()
    age = f.now - newest
    limit = timedelta(days=f.policy.verification_max_age_days)
    status = PASS if age <= limit else FAIL
    return status, f"last passing restore test {newest:%Y-%m-%d %H:%M} UTC, {age.days} day(s) ago (limit {limit.days})"


def rto_measured(f: _Facts) -> Verdict:
    if f.latest.empty:
        return FAIL, "no drill results in the history"

    def unmeasured(r: pd.Series) -> str | None:
        total = sum(float(r[c]) for c in PHASE_COLUMNS)
        ok = r["rto_seconds"] > 0 and abs(total - r["rto_seconds"]) <= 0.01 * r["rto_seconds"] + 0.01
        return None if ok else f"RTO {r['rto_seconds']:.2f}s but phases add up to {total:.2f}s"

    return _all(f.latest, unmeasured, f"{len(f.latest)} newest result(s) carry an RTO split into phases")


def results_documented(f: _Facts) -> Verdict:
    if f.latest.empty:
        return FAIL, "no drill results in the history"
    return _all(f.latest, lambda r: None if r["checks"] and r["commit"] else "no checks or no commit recorded",
                "every newest result records its checks, commit and machine in the history")  # fmt: skip


def offsite_present(f: _Facts) -> Verdict:
    rows = f.of_layer(4)
    if rows.empty:
        return f.none(4)
    return _all(rows, lambda r: None if detail(r["details"], "offsite_backup_id") or detail(r["details"], "offsite_copies")
                else "no offsite copy was restored", "offsite copies were held in the other region")  # fmt: skip


def offsite_encrypted(f: _Facts) -> Verdict:
    rows = f.of_layer(4)
    if rows.empty:
        return f.none(4)

    def unencrypted(r: pd.Series) -> str | None:
        d = r["details"]
        if not detail(d, "layer4_key"):
            return "no encryption key recorded (at rest)"
        if not str(detail(d, "offsite_tls") or "").startswith("TLS"):
            return f"in transit: {detail(d, 'offsite_tls') or 'not recorded'}"
        return None

    first = rows.iloc[0]["details"]
    return _all(
        rows, unencrypted, f"at rest: key {detail(first, 'layer4_key')}; in transit: {detail(first, 'offsite_tls')}"
    )


def offsite_retention(f: _Facts) -> Verdict:
    return _retention(f, 4, "layer4_production_policy", f.policy.layer4_retention_days)


def all_layers_planned(f: _Facts) -> Verdict:
    covered = {n for s in f.frame["layer_set"] for n in s} if not f.frame.empty else set()
    missing = [f"{n} ({LAYERS[n]})" for n in LAYERS if n not in covered]
    return (FAIL, f"no drill of layer(s) {', '.join(missing)}") if missing else (PASS, "every layer has a drill")


def objectives_met(f: _Facts) -> Verdict:
    if f.latest.empty:
        return FAIL, "no drill results in the history"

    def missed(r: pd.Series) -> str | None:
        writes = r["objective_rpo_writes"]
        obj = Objectives(
            r["objective_rpo_seconds"], r["objective_rto_seconds"], None if pd.isna(writes) else int(writes)
        )
        out = judge(obj, rto=r["rto_seconds"], rpo_seconds=r["rpo_seconds"], rpo_writes=int(r["rpo_writes"]),
                    check_failures=[])  # fmt: skip
        return "; ".join(out) or None

    return _all(f.latest, missed, f"{len(f.latest)} newest result(s) within their RPO/RTO objectives")


def all_layers_working(f: _Facts) -> Verdict:
    problems = []
    for n in LAYERS:
        status, why = _tested(f, n)
        if status != PASS:
            problems.append(f"layer {n}: {why}")
    return (FAIL, "; ".join(problems)) if problems else (PASS, "the newest drill of every layer passed")


def regular_verification(f: _Facts) -> Verdict:
    if f.frame.empty:
        return FAIL, "no drill results in the history"
    times = [*sorted({t.to_pydatetime() for t in f.frame["started_at"]}), f.now]
    limit = timedelta(days=f.policy.verification_max_age_days)
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > limit]
    if gaps:
        return FAIL, "; ".join(f"no drill from {a:%Y-%m-%d} to {b:%Y-%m-%d}" for a, b in gaps)
    return (
        PASS,
        f"{f.frame['run_id'].nunique()} run(s) since {times[0]:%Y-%m-%d}, never more than {limit.days} days apart",
    )


def _not_checkable(why: str) -> Callable[[_Facts], Verdict]:
    return lambda f: (UNCHECKABLE, why)


ITEMS: tuple[tuple[str, str, Callable[[_Facts], Verdict]], ...] = (
    ("layer 1", "自動バックアップが有効化されているか? automated backups enabled", backups_enabled),
    ("layer 1", "保持期間が適切か? retention adequate", layer1_retention),
    ("layer 1", "バックアップ成功の通知が設定されているか? success notifications delivered", layer1_notified),
    ("layer 1", "newest backup at the failure no older than the RPO objective", backup_age_within_rpo),
    ("layer 1", "backup schedule can meet the RPO objective", schedule_meets_rpo),
    ("layer 2", "PITRが有効化されているか? PITR enabled", pitr_enabled),
    ("layer 2", "WAL保持期間が適切か? WAL retention adequate", pitr_retention),
    ("layer 2", "PITR復旧手順がテスト済みか? PITR restore tested", lambda f: _tested(f, 2)),
    ("layer 3", "月次の復旧テストが実施されているか? monthly restore test", monthly_restore),
    ("layer 3", "復旧時間が測定されているか? recovery time measured", rto_measured),
    ("layer 3", "テスト結果が文書化されているか? results documented", results_documented),
    ("layer 4", "別リージョンにバックアップがあるか? backup in another region", offsite_present),
    ("layer 4", "暗号化が適用されているか? encryption applied", offsite_encrypted),
    ("layer 4", "offsite retention adequate (90 days)", offsite_retention),
    ("layer 4", "オフサイトからの復旧テストが実施済みか? offsite restore tested", lambda f: _tested(f, 4)),
    ("design", "4層すべてが計画されているか? all four layers planned", all_layers_planned),
    (
        "design",
        "各層の責任者が明確か? an owner per layer",
        _not_checkable("owners are people: neither the history nor the drill settings record them"),
    ),
    ("design", "RPO/RTO要件を満たせるか? RPO/RTO objectives achievable", objectives_met),
    (
        "design",
        "コストが予算内か? cost within budget",
        _not_checkable("the drills measure bytes and seconds, not prices or a budget"),
    ),
    ("operation", "すべての層が機能しているか? every layer working", all_layers_working),
    ("operation", "定期検証が実施されているか? regular verification", regular_verification),
    (
        "operation",
        "障害時の対応手順が文書化されているか? incident procedures documented",
        _not_checkable("the executable procedures are scenarios/*.py; a human runbook is outside the history"),
    ),
)


def audit(
    frame: pd.DataFrame,
    *,
    policy: AuditPolicy | None = None,
    now: datetime | None = None,
    config: DrillConfig | None = None,
) -> Audit:
    """`config` (the drill settings) adds what the history cannot show, e.g. where notifications go."""
    facts = _Facts(frame, policy or AuditPolicy(), now or datetime.now(UTC), notify_targets(config) if config else None)
    return Audit([AuditItem(section, question, *check(facts)) for section, question, check in ITEMS])
