"""The ledger's loss assessment: which acknowledged writes a recovered database lost, whether what is left is
a clean point in time, and what every table must contain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.digest import Row, TableDigest
from fixtures.ledger import Key, Ledger, LossAssessment, RowChange, Write, assess

T0 = 1_000.0


def w(id: int, *changes: tuple[str, object, Row | None], in_doubt: bool = False, op: str = "op") -> Write:
    """A write acknowledged at T0 + id seconds (unless in doubt)."""
    return Write(id, op, tuple(RowChange(t, k, r) for t, k, r in changes), T0 + id, in_doubt)


def state(writes: list[Write]) -> dict[Key, Row | None]:
    """The rows left after applying these writes in order (deleted keys omitted, as a scan would)."""
    out: dict[Key, Row | None] = {}
    for write in writes:
        for c in write.changes:
            out[(c.table, c.key)] = c.row
    return {k: r for k, r in out.items() if r is not None}


ORDERS = [
    w(1, ("orders", 1, (1, "new"))),
    w(2, ("orders", 2, (2, "new")), ("items", 20, (20, 2, 3))),
    w(3, ("orders", 1, (1, "paid"))),
    w(4, ("orders", 3, (3, "new"))),
    w(5, ("orders", 2, (2, "shipped"))),
]


def ids(writes: tuple[Write, ...]) -> list[int]:
    return [x.id for x in writes]


def test_nothing_lost() -> None:
    loss = assess(ORDERS, state(ORDERS))
    assert loss.lost == () and loss.holes == () and loss.diverged == ()
    assert loss.cut == 5
    assert loss.lost_rows == 0
    assert loss.rpo_seconds(failure_at=T0 + 10) == 0.0


def test_clean_suffix_lost() -> None:
    loss = assess(ORDERS, state(ORDERS[:3]))
    assert loss.cut == 3
    assert ids(loss.lost) == [4, 5]
    assert loss.holes == () and loss.diverged == ()
    assert loss.lost_rows == 2  # orders 3 and 2
    assert loss.rpo_seconds(failure_at=T0 + 7.5) == pytest.approx(3.5)  # since write 4's acknowledgement
    assert loss.expected[("orders", 1)] == (1, "paid")
    assert ("orders", 3) not in loss.expected


def test_everything_lost() -> None:
    loss = assess(ORDERS, {})
    assert loss.cut == 0
    assert ids(loss.lost) == [1, 2, 3, 4, 5]
    assert loss.holes == ()
    assert loss.rpo_seconds(failure_at=T0 + 6) == pytest.approx(5.0)


def test_insert_then_delete_after_the_cut_counts_both_lost() -> None:
    """A deleted row looks like a never-inserted one: order 2's absence fits both 'before write 2' and
    'after write 4'. Write 3 (order 3) is missing too, so the cut is before write 3, and the insert and
    the delete of order 2 are both lost."""
    writes = [
        w(1, ("orders", 1, (1, "new"))),
        w(2, ("orders", 2, (2, "new"))),
        w(3, ("orders", 3, (3, "new"))),
        w(4, ("orders", 2, None), op="cancel"),
    ]
    loss = assess(writes, state(writes[:1]))
    assert loss.cut == 1
    assert ids(loss.lost) == [2, 3, 4]
    assert loss.holes == () and loss.diverged == ()


def test_insert_then_delete_with_nothing_else_missing_loses_nothing() -> None:
    writes = [w(1, ("orders", 1, (1, "new"))), w(2, ("orders", 2, (2, "new"))), w(3, ("orders", 2, None))]
    loss = assess(writes, state(writes))
    assert loss.lost == ()
    assert loss.cut == 3


def test_in_doubt_write_applied() -> None:
    writes = [*ORDERS[:3], w(4, ("orders", 3, (3, "new")), in_doubt=True), ORDERS[4]]
    loss = assess(writes, state(writes))
    assert loss.in_doubt_applied == 1
    assert loss.lost == () and loss.holes == ()
    assert loss.expected[("orders", 3)] == (3, "new")


def test_in_doubt_write_not_applied_is_not_a_loss() -> None:
    writes = [*ORDERS[:3], w(4, ("orders", 3, (3, "new")), in_doubt=True), ORDERS[4]]
    applied = [x for x in writes if not x.in_doubt]
    loss = assess(writes, state(applied))
    assert loss.in_doubt_applied == 0
    assert loss.lost == () and loss.holes == () and loss.diverged == ()
    assert loss.cut == 5
    assert ("orders", 3) not in loss.expected


def test_in_doubt_write_after_the_cut_is_not_counted_lost() -> None:
    writes = [*ORDERS[:3], w(4, ("orders", 3, (3, "new")), in_doubt=True)]
    loss = assess(writes, state(ORDERS[:3]))
    assert loss.lost == ()
    assert loss.in_doubt_applied == 0


def test_hole_older_write_missing_while_newer_survives() -> None:
    observed = state([x for x in ORDERS if x.id != 2])  # write 2's item missing, write 5 on order 2 present
    loss = assess(ORDERS, observed)
    assert loss.holes, "an older write missing under a newer survivor is not a clean point in time"
    assert ids(loss.holes) == [2]
    assert loss.cut == 5
    assert all(h.id < loss.cut for h in loss.holes)


def test_diverged_row() -> None:
    observed = state(ORDERS)
    observed[("orders", 1)] = (1, "tampered")
    loss = assess(ORDERS, observed)
    assert loss.diverged == (("orders", 1),)


def test_unknown_rows_outside_the_ledger_are_ignored() -> None:
    observed = {**state(ORDERS), ("orders", 999): (999, "seed")}
    assert assess(ORDERS, observed).diverged == ()


def test_expected_digests_add_the_ledger_rows_to_the_base() -> None:
    base = {"orders": TableDigest.of([(100, "seed")]), "other": TableDigest.of([(1,)])}
    loss = assess(ORDERS, state(ORDERS))
    digests = loss.expected_digests(base)
    assert digests["orders"] == TableDigest.of([(100, "seed"), (1, "paid"), (2, "shipped"), (3, "new")])
    assert digests["items"] == TableDigest.of([(20, 2, 3)])
    assert digests["other"] == base["other"]


def test_ledger_records_in_order_and_replays_state(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.record("place", (RowChange("orders", 1, (1, "new")),), T0 + 1)
    ledger.record("update", (RowChange("orders", 1, (1, "paid")),), T0 + 2)
    ledger.record("place", (RowChange("orders", 2, (2, "new")),), T0 + 3, in_doubt=True)
    assert [x.id for x in ledger.writes] == [1, 2, 3]
    assert [x.id for x in ledger.acked()] == [1, 2]
    assert ledger.state_at(T0 + 1.5) == {("orders", 1): (1, "new")}
    assert ledger.keys() == {"orders": {1, 2}}
    ledger.save(tmp_path / "ledger.jsonl")
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 3


# -- in-doubt writes are judged as whole transactions --------------------------------------------------------


def test_in_doubt_write_partly_overwritten_later_still_counts_as_applied() -> None:
    """In-doubt write 1 (order + item) committed; acknowledged write 2 then updated the order. The item that
    write 1 inserted is in the database, so the expectation must include it."""
    writes = [
        w(1, ("orders", 1, (1, "new")), ("items", 10, (10, 1)), in_doubt=True),
        w(2, ("orders", 1, (1, "paid"))),
    ]
    observed: dict[Key, Row | None] = {("orders", 1): (1, "paid"), ("items", 10): (10, 1)}
    loss = assess(writes, observed)
    assert loss.in_doubt_applied == 1
    assert loss.expected_digests({}) == {"orders": TableDigest.of([(1, "paid")]), "items": TableDigest.of([(10, 1)])}


def test_in_doubt_write_that_did_not_commit_explains_nothing() -> None:
    """In-doubt write 2 deletes item 1 and inserts order 9. Order 9 is absent, so write 2 did not commit and
    cannot explain why item 1 is absent: acknowledged write 1 is lost."""
    writes = [w(1, ("items", 1, (1, "i"))), w(2, ("items", 1, None), ("orders", 9, (9, "new")), in_doubt=True)]
    loss = assess(writes, {})
    assert ids(loss.lost) == [1]
    assert loss.cut == 0


# -- the property: a clean cut (plus any in-doubt writes) is always assessed as a clean cut -------------------

ENTITIES = (1, 2, 3)  # order n, with its item n and sometimes its attachment n


@dataclass(frozen=True)
class History:
    writes: list[Write]
    cut: int
    applied_in_doubt: frozenset[int]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Random writes in the workload's shapes over a few orders, a random cut, and a random subset of the
    in-doubt writes that committed. 'place' inserts an order with its item (and maybe an attachment),
    'update' rewrites the order row, 'cancel' deletes the order and everything of it; an order is placed
    again after a cancel, and never touched again once a write to it is in doubt (as the workload does)."""
    live: dict[int, list[Key]] = {}
    frozen: set[int] = set()
    writes: list[Write] = []
    for id in range(1, draw(st.integers(1, 14)) + 1):
        choices = [("place", n) for n in ENTITIES if n not in live and n not in frozen]
        choices += [(op, n) for n in live if n not in frozen for op in ("update", "cancel")]
        if not choices:
            break
        op, n = draw(st.sampled_from(choices))
        if op == "place":
            keys: list[Key] = [("orders", n), ("items", n)]
            if draw(st.booleans()):
                keys.append(("attachments", n))
            live[n] = keys
            changes = tuple(RowChange(t, k, (k, t, f"v{id}")) for t, k in keys)
        elif op == "update":
            changes = (RowChange("orders", n, (n, "orders", f"v{id}")),)
        else:
            changes = tuple(RowChange(t, k, None) for t, k in live.pop(n))
        in_doubt = draw(st.integers(0, 3)) == 0
        if in_doubt:
            frozen.add(n)
        writes.append(Write(id, op, changes, T0 + id, in_doubt))
    cut = draw(st.integers(0, len(writes)))
    doubtful = [x.id for x in writes if x.in_doubt and x.id <= cut]
    applied = frozenset(draw(st.lists(st.sampled_from(doubtful), unique=True))) if doubtful else frozenset()
    return History(writes, cut, applied)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_a_clean_cut_is_assessed_as_one(history: History) -> None:
    """Whatever the cut and whichever in-doubt writes committed: no holes, no divergence, only writes after
    the cut lost, and the expected digests are exactly what the database holds."""
    survivors = [
        x for x in history.writes if x.id <= history.cut and (not x.in_doubt or x.id in history.applied_in_doubt)
    ]
    observed = state(survivors)
    loss: LossAssessment = assess(history.writes, observed)
    assert loss.holes == ()
    assert loss.diverged == ()
    assert all(x.id > history.cut for x in loss.lost)
    assert all(not x.in_doubt for x in loss.lost)
    tables: dict[str, list[Row]] = {}
    for (table, _key), row in observed.items():
        assert row is not None
        tables.setdefault(table, []).append(row)
    assert loss.expected_digests(base={}) == {t: TableDigest.of(rows) for t, rows in tables.items()}
