"""Schedules as cron expressions (croniter), the seed's 'daily HH:MM' translated, one clear error for a bad
schedule, and the audit item that checks a schedule's longest gap against the RPO objective."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from layers.policy import Policy, ScheduleError, longest_gap_seconds, schedule_of, to_cron
from reports.audit import FAIL, PASS, UNCHECKABLE, audit
from reports.frame import to_frame
from tests import synthetic_history as synth

QUESTION = "backup schedule can meet the RPO objective"


def test_daily_is_the_equivalent_cron_and_both_schedule_alike() -> None:
    assert to_cron("daily 02:00") == "0 2 * * *" and to_cron("daily 23:05") == "5 23 * * *"
    after = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    daily, cron = Policy(schedule="daily 02:00"), Policy(schedule="0 2 * * *")
    assert daily.next_run(after) == cron.next_run(after) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    assert daily.next_run(datetime(2026, 12, 1, 1, 59, tzinfo=UTC)) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert Policy(schedule="*/15 * * * *").next_run(after) == after + timedelta(minutes=15)
    assert Policy(schedule="0 3 * * 1-5").next_run(datetime(2026, 12, 4, 4, 0, tzinfo=UTC)).weekday() == 0  # Fri -> Mon


def test_the_longest_gap_between_runs() -> None:
    assert longest_gap_seconds("daily 02:00") == 86_400
    assert longest_gap_seconds("*/15 * * * *") == 900
    assert longest_gap_seconds("0 3 * * 1-5") == 3 * 86_400  # Friday to Monday
    assert longest_gap_seconds("every 2s") == 2
    assert Policy(interval_seconds=2).longest_gap_seconds == 2
    assert schedule_of(Policy(schedule="0 2,14 * * *").describe) == "0 2,14 * * *"


@pytest.mark.parametrize("bad", ["daily 2am", "0 2 * *", "61 2 * * *", "hourly", "daily 24:00", "0 2 * * * "])
def test_a_bad_schedule_is_one_error_naming_it_and_the_fix(bad: str) -> None:
    with pytest.raises(ScheduleError) as error:
        Policy(schedule=bad)
    assert str(error.value).startswith(f"schedule {bad!r} is not a schedule: use a 5-field cron expression")
    assert "'daily 02:00'" in str(error.value)


def test_the_audit_fails_a_schedule_that_cannot_meet_the_rpo_objective() -> None:
    results = synth.history(1, scenarios=("total-loss", "row-deletion-rewind"))
    now = synth.T0 + timedelta(days=1)
    assert audit(to_frame(synth.records(results)), now=now).items  # sanity
    status, why = next((i.status, i.why) for i in audit(to_frame(synth.records(results)), now=now).items
                       if i.question == QUESTION)  # fmt: skip
    assert status == PASS and "the longest gap 2s" in why
    daily = [replace(r, details={**r.details, "layer1_policy": Policy(schedule="0 2 * * *").describe})
             if r.scenario == "total-loss" and r.backend == "process" and r.scale == "2MB" else r for r in results]  # fmt: skip
    item = next(i for i in audit(to_frame(synth.records(daily)), now=now).items if i.question == QUESTION)
    assert item.status == FAIL
    assert item.why.startswith("total-loss [process, 2MB]: layer 1 schedule '0 2 * * *' runs up to 86400s apart, "
                               "so the RPO objective 15s cannot be met")  # fmt: skip
    pitr_only = synth.history(1, scenarios=("row-deletion-rewind",))
    item = next(i for i in audit(to_frame(synth.records(pitr_only)), now=now).items if i.question == QUESTION)
    assert item.status == UNCHECKABLE
