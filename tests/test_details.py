"""The declared details (reports/details.py): a result with an undeclared or mistyped detail is refused
when recorded, reports read only declared names, and every name reports/ reads by constant is declared."""

from __future__ import annotations

import pytest

from reports.details import BACKUP_TAKEN, DETAILS, LAYER_POLICY, UndeclaredDetail, checked, detail, problems


def test_declared_details_pass_and_numbers_of_either_kind_are_one_type() -> None:
    recorded = {"backups_taken": 3, "rpo_with_wal_seconds": 2, "backup_id": None, "layer2": {"bucket": "b"}}
    assert checked(recorded) == recorded


def test_an_undeclared_detail_is_refused_naming_it_and_the_fix() -> None:
    with pytest.raises(UndeclaredDetail, match=r"layer2_polcy: not declared in reports/details\.py.*declare each"):
        checked({"backups_taken": 1, "layer2_polcy": "kept 7 days"})


def test_a_mistyped_detail_is_refused() -> None:
    assert problems({"backups_taken": "3", "start_refused": 1, "backup_taken_at": None}) == [
        "backups_taken: str, declared (<class 'int'>,)",
        "start_refused: int, declared (<class 'bool'>,)",
        "backup_taken_at: NoneType, declared (<class 'str'>,)",
    ]


def test_reports_cannot_read_a_name_nobody_declares() -> None:
    assert detail({"layer2_policy": "kept 7 days"}, "layer2_policy") == "kept 7 days"
    assert detail({}, "layer2_policy") is None
    with pytest.raises(UndeclaredDetail, match="layer2_polcy"):
        detail({"layer2_polcy": "x"}, "layer2_polcy")


def test_the_names_reports_read_by_constant_are_declared() -> None:
    assert set(LAYER_POLICY.values()) | set(BACKUP_TAKEN.values()) <= set(DETAILS)
