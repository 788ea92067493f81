"""The benchmarks run: bench/restore_speed.py at its smallest size prints its table with every layer's
restore checked, and refuses to time a restore that lost rows; bench/suite_time.py times drills serially
and with two xdist workers and proves the workers stayed isolated (one whole history record per drill)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import layers.recovery
from bench import load_held, restore_speed, sqld_write_lock, suite_time
from bench.procstat import cpu_seconds, peak_mb, reset_peak
from fixtures.sqld import SqldServer

SMALLEST = "100KB"


def test_restore_speed_prints_every_layer_beside_the_physical_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.json"
    rows = restore_speed.main(["--sizes", SMALLEST, "--workdir", str(tmp_path), "--cache", str(tmp_path / "cache"),
                               "--json", str(out)])  # fmt: skip
    steps = [r.step for r in rows]
    assert steps == [
        restore_speed.RAW, "sqlite3 .backup", "S3 GET of the file (moto)",
        "layer 1 backup cycle (page, first)", "layer 1 backup cycle (page, later)", "layer 1 backup cycle (dump)",
        "layer 1 restore (page)", "layer 3 verify (layer 1, page)", "layer 1 restore (dump)", "layer 3 verify (layer 1, dump)",
        "layer 2 restore (bottomless, to /health)",
        "layer 4 restore (page)", "layer 3 verify (layer 4, page)", "layer 4 restore (dump)", "layer 3 verify (layer 4, dump)",
    ]  # fmt: skip
    assert all(r.seconds > 0 and r.db_bytes > 100_000 for r in rows)
    by_step = {r.step: r for r in rows}
    for step in ("layer 1 restore (page)", "layer 1 restore (dump)", "layer 1 backup cycle (page, later)"):
        assert by_step[step].sqld_peak_mb and by_step[step].runner_peak_mb, step
    assert 0 < by_step["layer 1 restore (dump)"].detail["replay_s"] <= by_step["layer 1 restore (dump)"].seconds
    assert by_step["layer 1 restore (page)"].detail["replay_s"] == 0, "a page snapshot is never replayed"
    assert by_step["layer 3 verify (layer 1, page)"].detail["file_gate_s"] > 0
    printed = capsys.readouterr().out
    assert "vs raw" in printed and "layer 4 restore (page)" in printed and "100.0%" in printed
    assert len(json.loads(out.read_text())) == len(rows)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("run-")], "the run left its scratch folder"


def test_restore_speed_refuses_to_time_a_restore_that_lost_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def place_nothing(database: Path, server: SqldServer) -> None:  # the verified file never reaches the server
        server.db_dir.mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(layers.recovery, "place", place_nothing)
    with pytest.raises(RuntimeError, match=r"restore into .* is incomplete"):
        restore_speed.main(["--sizes", SMALLEST, "--layers", "1", "--formats", "page", "--workdir", str(tmp_path),
                            "--cache", str(tmp_path / "cache")])  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "lots"], "--sizes='lots' is not a scale"),
        (["--layers", "3"], "--layers='3': use some of 1,2,4"),
    ],
)
def test_restore_speed_names_a_bad_flag(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        restore_speed.parse_args(argv)
    assert message in capsys.readouterr().err


def test_procstat_sees_memory_and_cpu_grow() -> None:
    assert reset_peak()
    before, cpu = peak_mb(), cpu_seconds()
    block = bytearray(64 << 20)  # touched: 64 MB resident
    for i in range(0, len(block), 4096):
        block[i] = 1
    sum(range(2_000_000))
    assert before is not None and cpu is not None
    assert (peak_mb() or 0) >= before + 60 and (cpu_seconds() or 0) > cpu
    del block
    assert peak_mb(None) is None and cpu_seconds(None) is None


def test_suite_time_with_two_workers_keeps_drills_isolated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = suite_time.main(["--workers", "1,2", "--backend", "process", "--workdir", str(tmp_path),
                            "--", "-k", "(test_total_loss and not dump) or (test_table_corruption and truncate)"])  # fmt: skip
    serial, parallel = runs
    assert (serial.passed, parallel.passed, serial.failed, parallel.failed) == (2, 2, 0, 0), (
        serial.failures,
        parallel.failures,
    )
    assert serial.records == parallel.records == 2 and serial.run_ids == 1
    assert parallel.run_ids == 1, "the xdist workers of one run record under the run's one id"
    assert suite_time.all_good(runs)
    assert "isolated" in capsys.readouterr().out


def test_suite_time_flags_torn_or_duplicated_history(tmp_path: Path) -> None:
    torn = tmp_path / "torn.jsonl"
    torn.write_text('{"drill": "a", "run_id": "x"}\n{"drill": "b", "ru{"drill": "c"}\n')
    with pytest.raises(RuntimeError, match="not one whole JSON record"):
        suite_time.read_history(torn)
    run = suite_time.SuiteRun(2, "process", "2MB", 1.0, 2, 0, records=3, drills=2, run_ids=2, exit_code=0)
    assert not run.isolated  # one drill recorded twice
    alone = suite_time.SuiteRun(1, "process", "2MB", 2.0, 2, 0, records=2, drills=2, run_ids=1, exit_code=0)
    fewer = suite_time.SuiteRun(2, "process", "2MB", 1.0, 2, 0, records=1, drills=1, run_ids=1, exit_code=0)
    assert alone.isolated and not suite_time.all_good([alone, fewer])  # a record lost in the parallel run


def test_soak_runs_drills_back_to_back_and_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/soak.py for 2 minutes (the CI soak; the monthly one runs 60): every drill passed, nothing lost
    beyond an RPO objective, no process or bucket left behind."""
    from bench import soak

    run = soak.main(["--minutes", "2", "--backend", "process", "--workdir", str(tmp_path), "--", "-k", "total_loss"])
    assert run.good, run
    assert run.drills >= 3 and run.passed == run.drills and run.acked_writes > 0
    assert "lost beyond RPO" in capsys.readouterr().out


def test_load_held_prints_each_mode_with_the_rate_it_achieved(capsys: pytest.CaptureFixture[str]) -> None:
    """bench/load_held.py measures the application alone (its proxy in and out of the runner's process) and
    beside page snapshots synced in and out of it and layer-4 copies, on a real sqld: every row has
    acknowledged writes, the snapshot rows backups, and each process its CPU."""
    assert load_held.main(["--backends", "process", "--writers", "2", "--rate", "40", "--seconds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("backend"))
    spans = [m.span() for m in re.finditer(r"-+", lines[header + 1])]  # the table's column widths
    names = [lines[header][a:b].strip() for a, b in spans]
    rows = [dict(zip(names, (line[a:b].strip() for a, b in spans), strict=True)) for line in lines[header + 2 :]]
    assert [r["mode"] for r in rows] == list(load_held.MODES)
    for row in rows:
        assert float(row["achieved/s"]) > 0, row
        assert (int(row["backups"]) > 0) == ("snapshots" in row["mode"]), row
        assert "runner" in row["CPU % of a core"] and "sqld" in row["CPU % of a core"], row
        assert ("proxy" in row["CPU % of a core"]) == ("proxy in the runner" not in row["mode"]), row


def test_sqld_write_lock_prints_one_row_per_try_with_its_probes(capsys: pytest.CaptureFixture[str]) -> None:
    """bench/sqld_write_lock.py on a real sqld: each try's writes, the probes after the writers stop, a verdict."""
    assert sqld_write_lock.main(["--tries", "1", "--writers", "2", "--seconds", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    (row,) = [line.split() for line in out if line.split()[:2] == ["1", "2"]]
    assert int(row[2]) > 0 and row[-1] in ("ok", "stalled", "STUCK"), row
    assert out[-1].startswith("stuck: ") and out[-1].endswith(" of 1 tries"), out
