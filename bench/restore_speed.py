"""Backup and restore speed of each layer and format against the physical limit, side by side in one run.

For each seed size: the physical limits (a raw copy of the database file on the same disk with fsync,
`sqlite3 .backup` of it, an S3 GET of it), then from one running seeded process sqld:

- layer-1 backup cycles: a page snapshot (layers.snapshot: first, and later after LATER_ROWS new rows)
  and a dump (layers.backup.take_backup), each into a moto bucket, with the runner's and sqld's peak RSS;
- layer 1 and layer 4 restores of each format through layers.recovery.restore_first into a fresh process
  sqld (download, checksum, decrypt for layer 4, decompress and place by file or replay, to /health), and
  layer 3's verify as a drill runs it (page: the file gate at C speed + the served checks; dump: every row
  over Hrana), each its own row;
- layer 2 (`--layers` with 2): bottomless restoring its newest generation at start (to /health).

Every restore is checked (row counts of every table) before its time is reported. MB/s is database-file
bytes per second for every row, so `vs raw` = raw-copy seconds / row seconds.

    .venv/bin/python bench/restore_speed.py --sizes 100MB,1GB [--layers 1,4] [--formats page,dump] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import layers.backup as backup  # noqa: E402
import layers.recovery as recovery  # noqa: E402
from bench.procstat import cpu_seconds, lifetime_peak_mb, peak_mb, reset_peak  # noqa: E402
from fixtures.binary import sqld_binary  # noqa: E402
from fixtures.config import ConfigError, parse_scale  # noqa: E402
from fixtures.hrana import HranaError, HranaSession  # noqa: E402
from fixtures.reaper import Reaper  # noqa: E402
from fixtures.s3 import Region, open_region  # noqa: E402
from fixtures.seed import TABLES, SeedInfo, build_seed, install_seed  # noqa: E402
from fixtures.sqld import SqldSpec  # noqa: E402
from fixtures.sqld_process import ProcessSqld  # noqa: E402
from layers.offsite import OffsiteKey, OffsiteSource, copy_backup, keyring  # noqa: E402
from layers.pitr import bottomless_env  # noqa: E402
from layers.snapshot import PageSnapshots  # noqa: E402
from layers.store import S3Store  # noqa: E402
from layers.verify import verify  # noqa: E402
from reports.text import text_table  # noqa: E402

LAYERS = ("1", "2", "4")
FORMATS = ("page", "dump")
LATER_ROWS = 5000  # rows written between the first and the later page cycle
RAW = "raw copy + fsync"


@dataclass(frozen=True)
class Row:
    """One timed step of one size."""

    size: str
    db_bytes: int
    step: str
    seconds: float
    runner_peak_mb: float | None = None
    sqld_peak_mb: float | None = None
    detail: dict[str, float] = field(default_factory=dict)  # breakdown (seconds, CPU seconds, bytes)
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.db_bytes / 1e6 / self.seconds if self.seconds > 0 else float("inf")


# -- physical limits -----------------------------------------------------------------------------------------
def raw_copy(src: Path, dst: Path) -> float:
    """Copy the file and fsync it: the durable physical limit on this disk."""
    started = time.monotonic()
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.monotonic() - started


def sqlite_backup(src: Path, dst: Path) -> float:
    """`sqlite3 SRC .backup DST` (the SQLite online-backup API, page by page; synchronous=FULL)."""
    started = time.monotonic()
    subprocess.run(["sqlite3", str(src), f".backup '{dst}'"], check=True, capture_output=True, timeout=3600)
    return time.monotonic() - started


def s3_get(region: Region, src: Path, scratch: Path) -> float:
    """Put the database file into a bucket of the region, then time fetching it back into a file with
    layers/store.S3Store.get (as the restores do): the ceiling of any restore through this S3 endpoint."""
    store = S3Store(region.client(), region.new_bucket("bench", "s3-get"))
    with src.open("rb") as data:
        store.put("db", data)
    started = time.monotonic()
    with (scratch / "s3.db").open("wb") as out:
        store.get("db", out)
    seconds = time.monotonic() - started
    store.delete("db")
    return seconds


# -- servers and buckets of one run ------------------------------------------------------------------------
class Bench:
    """Process sqlds, moto regions and folders of one benchmark run; all ended and removed on close."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.reaper = Reaper(ROOT / ".drills" / "run")
        self.binary = str(sqld_binary())
        self._stack = contextlib.ExitStack()
        self._regions: dict[str, Region] = {}
        self._count = 0

    def region(self, name: str) -> Region:
        if name not in self._regions:
            region = open_region(name, "moto", log_dir=self.workdir, reaper=self.reaper, timeout=30)
            assert region.server is not None
            self._stack.callback(region.server.kill)
            self._regions[name] = region
        return self._regions[name]

    def server(self, name: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> ProcessSqld:
        self._count += 1
        folder = self.workdir / f"{self._count:02d}-{name}"
        spec = SqldSpec(name, folder, folder.with_suffix(".log"), env or {}, args, startup_timeout=1800)
        server = ProcessSqld(spec, binary=self.binary, reaper=self.reaper)
        self._stack.callback(shutil.rmtree, folder, True)
        self._stack.callback(server.kill)
        return server

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self.reaper.reap()


@contextlib.contextmanager
def timed_calls(module: Any, names: tuple[str, ...]) -> Iterator[dict[str, float]]:
    """Time calls of module-level functions while the real caller runs (seconds summed by name)."""
    spent = dict.fromkeys(names, 0.0)
    originals = {n: getattr(module, n) for n in names}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.monotonic() - started

        return timed

    for name, fn in originals.items():
        setattr(module, name, wrap(name, fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


@contextlib.contextmanager
def measured(pid: Callable[[], int | None]) -> Iterator[dict[str, float]]:
    """Wall seconds, runner and sqld CPU seconds, and the runner's peak RSS of the block."""
    out: dict[str, float] = {}
    reset_peak()
    runner0, sqld0 = cpu_seconds() or 0.0, cpu_seconds(pid()) or 0.0
    started = time.monotonic()
    yield out
    out["seconds"] = time.monotonic() - started
    out["runner_cpu"] = (cpu_seconds() or 0.0) - runner0
    out["sqld_cpu"] = (cpu_seconds(pid()) or 0.0) - sqld0
    out["runner_peak_mb"] = peak_mb() or 0.0


# -- the layers ------------------------------------------------------------------------------------------------
Backups = dict[str, tuple[backup.BackupCatalog, backup.CatalogEntry]]  # format -> its catalog, its newest entry


def _cycle_row(
    seed: SeedInfo, step: str, source: ProcessSqld, job: Callable[[], backup.CatalogEntry]
) -> tuple[Row, backup.CatalogEntry]:
    with measured(lambda: source.pid) as m:
        reset_peak(source.pid or "self")
        entry = job()
    detail = {"object_bytes": float(entry.bytes), "sqld_cpu_s": m["sqld_cpu"], "runner_cpu_s": m["runner_cpu"]}
    return Row(seed.scale, seed.bytes, step, m["seconds"], m["runner_peak_mb"], peak_mb(source.pid), detail), entry


def _write_more(url: str, rows: int) -> None:
    """New rows between two page cycles (what a later cycle has to carry)."""
    with HranaSession(url, timeout=600) as s:
        s.execute("CREATE TABLE IF NOT EXISTS bench_later (id INTEGER PRIMARY KEY, note TEXT)")
        s.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                  "INSERT INTO bench_later (note) SELECT hex(randomblob(60)) FROM n", [rows])  # fmt: skip


def backup_cycles(bench: Bench, seed: SeedInfo, formats: tuple[str, ...]) -> tuple[list[Row], Backups]:
    """Time layer-1 cycles from a running seeded sqld: page first and later (after LATER_ROWS new rows),
    then dump. The later page snapshot and the dump hold the same data; the restores use them."""
    source = bench.server("source")
    install_seed(seed, source.db_file)
    source.start()
    region = bench.region("us-east")
    catalogs = {f: backup.BackupCatalog(S3Store(region.client(), region.new_bucket("bench", f"l1-{f}-{seed.scale}")))
                for f in formats}  # fmt: skip
    version = source.version()
    rows: list[Row] = []
    made: Backups = {}
    if "page" in formats:
        catalog = catalogs["page"]
        agent = PageSnapshots(source.http_url, catalog, bench.workdir / f"agent-{seed.scale}", sqld_version=version)
        row, _ = _cycle_row(seed, "layer 1 backup cycle (page, first)", source, agent)
        rows.append(row)
    _write_more(source.http_url, LATER_ROWS)
    if "page" in formats:
        row, entry = _cycle_row(seed, "layer 1 backup cycle (page, later)", source, agent)
        made["page"] = (catalog, entry)
        rows.append(Row(**{**asdict(row), "note": f"after {LATER_ROWS} new rows"}))
    if "dump" in formats:
        dumps = catalogs["dump"]
        row, entry = _cycle_row(seed, "layer 1 backup cycle (dump)", source,
                                lambda: backup.take_backup(source.http_url, dumps, sqld_version=version, timeout=3600))  # fmt: skip
        made["dump"] = (dumps, entry)
        rows.append(row)
    source.kill()
    return rows, made


def seed_counts(seed: SeedInfo, later: int = 0) -> dict[str, int]:
    return {**{t: seed.tables[t].count for t in TABLES}, **({"bench_later": later} if later else {})}


def check_restored(url: str, expected: dict[str, int]) -> None:
    """Every table holds the expected row count (a restore that lost rows is not timed)."""
    counts: dict[str, object] = {}
    with HranaSession(url, timeout=600) as s:
        for t in expected:
            try:
                counts[t] = s.execute(f"SELECT count(*) FROM {t}").rows[0][0]
            except HranaError as exc:
                counts[t] = str(exc)[:80]
    if counts != expected:
        raise RuntimeError(f"restore into {url} is incomplete: rows {counts}, expected {expected}")


def restore_rows(bench: Bench, seed: SeedInfo, layer: int, fmt: str, sources: list[recovery.Source]) -> list[Row]:
    """Time recovery.restore_first (download, checksum, decompress or replay, to a serving sqld) behind the
    gate, and layer 3 as a drill runs it: the file gate plus the served checks (page), or verify over Hrana
    (dump). The gate's file check is the page format's verify row, not part of its restore row."""
    gate = recovery.Gate(TABLES, seed.tables, ())
    with (
        timed_calls(recovery, ("verify_file", "download_verified", "replay_dump")) as calls,
        measured(lambda: None) as m,
    ):
        won = recovery.restore_first(sources, gate, lambda: bench.server(f"l{layer}-{fmt}"), bench.workdir / "restore")
    target = won.server
    assert isinstance(target, ProcessSqld)
    sqld_peak = peak_mb(target.pid)
    check_restored(target.http_url, seed_counts(seed, LATER_ROWS))
    if won.entry.format != fmt or won.refused:
        raise RuntimeError(f"layer {layer} restored {won.entry.id} ({won.entry.format}), refused {won.refused_pairs}")
    gate_s = calls["verify_file"]
    started = time.monotonic()
    verification = verify(target.http_url, tables=TABLES, base=seed.tables, writes=[], checked_file=won.verification)
    served_s = time.monotonic() - started
    target.kill()
    if not verification.ok:
        raise RuntimeError(f"layer 3 failed on the layer-{layer} {fmt} restore: {verification.failures}")
    how = "by file" if fmt == "page" else "replay"
    detail = {"download_s": calls["download_verified"], "replay_s": calls["replay_dump"],
              "sqld_cpu_s": m["sqld_cpu"], "runner_cpu_s": m["runner_cpu"], "object_bytes": float(won.entry.bytes)}  # fmt: skip
    restore = Row(seed.scale, seed.bytes, f"layer {layer} restore ({fmt})", m["seconds"] - gate_s,
                  m["runner_peak_mb"], sqld_peak, detail, how)  # fmt: skip
    verify_detail = {"file_gate_s": gate_s, "served_checks_s": served_s}
    note = "file gate (C speed) + served checks over Hrana" if fmt == "page" else "every row over Hrana"
    return [restore, Row(seed.scale, seed.bytes, f"layer 3 verify (layer {layer}, {fmt})", gate_s + served_s,
                         detail=verify_detail, note=note)]  # fmt: skip


def _snapshot_in(keys: list[str]) -> bool:
    return any("/db." in k for k in keys)


def _keys(region: Region, bucket: str) -> list[str]:
    pages = region.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def layer2_restore(bench: Bench, seed: SeedInfo) -> list[Row]:
    """Bottomless: snapshot a seeded sqld into a bucket, then time a fresh sqld restoring it at start."""
    region = bench.region("us-east")
    bucket = region.new_bucket("bench", f"l2-{seed.scale}")
    env = bottomless_env(region.endpoint, bucket, "bench", 1)
    args = ("--enable-bottomless-replication",)
    source = bench.server("l2-source", env, args)
    install_seed(seed, source.db_file)
    source.start()
    patience = 60 + seed.bytes / 2e6  # seconds: the snapshot upload grows with the file
    deadline = time.monotonic() + patience
    while not _snapshot_in(_keys(region, bucket)) and time.monotonic() < deadline:
        time.sleep(0.2)  # the snapshot first: a SIGTERM while sqld still started once hung it for 7+ minutes
    source.stop(timeout=patience)  # SIGTERM: bottomless flushes its queue (SIGKILL after `patience`)
    keys = _keys(region, bucket)
    if not _snapshot_in(keys):
        raise RuntimeError(f"bottomless left no snapshot in s3://{bucket}: {keys[:10]}")
    empty = bench.server("empty")
    started = time.monotonic()
    empty.start()
    empty_start = time.monotonic() - started
    empty.kill()
    target = bench.server("l2-target", env, args)
    with measured(lambda: target.pid) as m:
        target.start()  # an empty folder: sqld restores the newest generation before it serves
    sqld_peak = peak_mb(target.pid)
    check_restored(target.http_url, seed_counts(seed))
    target.stop(timeout=1800)
    detail = {"empty_sqld_start_s": empty_start, "sqld_cpu_s": m["sqld_cpu"], "s3_objects": float(len(keys))}
    return [Row(seed.scale, seed.bytes, "layer 2 restore (bottomless, to /health)", m["seconds"], m["runner_peak_mb"],
                sqld_peak, detail, f"empty sqld start {empty_start:.2f}s")]  # fmt: skip


def offsite_sources(bench: Bench, seed: SeedInfo, made: Backups) -> dict[str, list[recovery.Source]]:
    """Seal each format's backup into another region (layers.offsite.copy_backup); one source per format."""
    key = OffsiteKey.generate()
    out: dict[str, list[recovery.Source]] = {}
    for fmt, (catalog, entry) in made.items():
        region = bench.region("eu-west")
        store = S3Store(region.client(), region.new_bucket("bench", f"l4-{fmt}-{seed.scale}"))
        copy_backup(catalog, entry, store, key)
        out[fmt] = [OffsiteSource(store, keyring(key))]
    return out


def _warm(path: Path) -> None:
    """Read the file once, so every step starts with it in the page cache."""
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def bench_size(bench: Bench, seed: SeedInfo, layers: tuple[str, ...], formats: tuple[str, ...]) -> list[Row]:
    scratch = bench.workdir / f"scratch-{seed.scale}"
    scratch.mkdir()
    _warm(seed.path)
    rows = [
        Row(seed.scale, seed.bytes, RAW, raw_copy(seed.path, scratch / "copy.db")),
        Row(seed.scale, seed.bytes, "sqlite3 .backup", sqlite_backup(seed.path, scratch / "backup.db")),
        Row(seed.scale, seed.bytes, "S3 GET of the file (moto)", s3_get(bench.region("us-east"), seed.path, scratch),
            note="ceiling of restores through this S3 endpoint"),
    ]  # fmt: skip
    shutil.rmtree(scratch)
    cycles, made = backup_cycles(bench, seed, formats)
    rows += cycles
    if "1" in layers:
        for fmt, (catalog, _) in made.items():
            rows += restore_rows(bench, seed, 1, fmt, [recovery.Layer1Source(catalog)])
    if "2" in layers:
        rows += layer2_restore(bench, seed)
    if "4" in layers:
        for fmt, sources in offsite_sources(bench, seed, made).items():
            rows += restore_rows(bench, seed, 4, fmt, sources)
    return rows


# -- output ------------------------------------------------------------------------------------------------------
def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(rows: list[Row]) -> list[str]:
    raw = {r.size: r.seconds for r in rows if r.step == RAW}
    head = ("size", "step", "seconds", "MB/s", "vs raw", "runner RSS MB", "sqld RSS MB")
    body = [
        (r.size, r.step, f"{r.seconds:.3f}", f"{r.mb_per_s:.1f}", f"{raw[r.size] / r.seconds:.1%}" if r.size in raw else "-",
         _mb(r.runner_peak_mb), _mb(r.sqld_peak_mb))
        for r in rows
    ]  # fmt: skip
    return text_table(head, body)


def breakdown(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if r.detail:
            parts = ", ".join(f"{k} {v:.3f}" if k.endswith("_s") else f"{k} {v:.0f}" for k, v in r.detail.items())
            out.append(f"{r.size} {r.step}: {parts}" + (f" ({r.note})" if r.note else ""))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10MB", help="comma-separated seed sizes, e.g. 10MB,100MB,1GB (default 10MB)"
    )
    parser.add_argument("--layers", default="1,2,4", help="layers to restore, comma-separated from 1,2,4")
    parser.add_argument("--formats", default="page,dump", help="layer-1 backup formats, comma-separated")
    parser.add_argument("--cache", type=Path, default=ROOT / ".drills" / "cache", help="seed cache folder")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".drills" / "bench", help="scratch space (same disk)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    try:
        args.scales = [parse_scale(s) for s in args.sizes.split(",") if s.strip()]
    except ConfigError as exc:
        parser.error(str(exc).replace("drill_scale", "--sizes"))
    args.format_list = tuple(x.strip() for x in args.formats.split(",") if x.strip())
    if not args.format_list or set(args.format_list) - set(FORMATS):
        parser.error(f"--formats={args.formats!r}: use some of {','.join(FORMATS)}")
    args.layer_list = tuple(x.strip() for x in args.layers.split(",") if x.strip())
    bad = [x for x in args.layer_list if x not in LAYERS]
    if bad or not args.layer_list:
        parser.error(
            f"--layers={args.layers!r}: use some of {','.join(LAYERS)} (layer 3 verifies, it does not restore)"
        )
    if not shutil.which("sqlite3"):
        parser.error("the sqlite3 CLI is needed for the physical-limit rows: apt-get install sqlite3")
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="run-") as tmp:
        bench = Bench(Path(tmp))
        try:
            for scale in args.scales:
                seed = build_seed(args.cache, scale)
                size_rows = bench_size(bench, seed, args.layer_list, args.format_list)
                rows += size_rows
                print("\n".join(table(size_rows)), flush=True)
        finally:
            bench.close()
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(breakdown(rows)))
    print(f"runner peak RSS over the whole run: {lifetime_peak_mb():.0f} MB; load after: "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "mb_per_s": r.mb_per_s} for r in rows], indent=1))
    return rows


if __name__ == "__main__":
    main()
