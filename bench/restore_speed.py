"""Restore speed of each layer against the physical limit, measured side by side in one run.

For each seed size: the physical limits (a raw copy of the database file on the same disk with fsync, and
`sqlite3 .backup` of it), a plain SQL replay of the layer-1 dump by the sqlite3 CLI (the floor of any
SQL-dump restore, no server in the way), then each layer's restore into a fresh process sqld:

- layer 1: layers.backup.take_backup into a moto bucket, then restore_latest (timed), with the time split
  into download / verify / replay (measured inside the real call) and the CPU sqld and the runner used;
- layer 2: bottomless: a sqld streaming to a moto bucket is stopped (its snapshot flushed), then a sqld
  with the same settings starts on an empty folder and restores the newest generation (timed up to
  /health; the start of an empty sqld is shown beside it);
- layer 4: the layer-1 backup sealed into another region (layers.offsite.copy_backup), then
  restore_offsite (decrypt + replay, timed).

Every restore is checked (row counts of every table) before its time is reported. MB/s is database-file
bytes per second for every row, so `vs raw` = raw-copy seconds / row seconds.

    .venv/bin/python bench/restore_speed.py --sizes 10MB,100MB,1GB [--layers 1,2,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
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
from layers.store import S3Store  # noqa: E402
from reports.text import text_table  # noqa: E402

LAYERS = ("1", "2", "4")
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


def sqlite_replay(gz_dump: Path, dst: Path) -> float:
    """The layer-1 dump replayed by the sqlite3 CLI into a local file: SQL replay with no server and no HTTP."""
    started = time.monotonic()
    with gzip.open(gz_dump, "rb") as text:
        proc = subprocess.Popen(["sqlite3", str(dst)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert proc.stdin is not None
        shutil.copyfileobj(text, proc.stdin, 1 << 20)
        proc.stdin.close()
        if proc.wait(timeout=3600) != 0:
            raise RuntimeError(f"sqlite3 could not replay {gz_dump}")
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


def check_restored(url: str, seed: SeedInfo) -> None:
    """Every table holds the seed's row count (a restore that lost rows is not timed)."""
    counts: dict[str, object] = {}
    with HranaSession(url, timeout=600) as s:
        for t in TABLES:
            try:
                counts[t] = s.execute(f"SELECT count(*) FROM {t}").rows[0][0]
            except HranaError as exc:
                counts[t] = str(exc)[:80]
    expected = {t: seed.tables[t].count for t in TABLES}
    if counts != expected:
        raise RuntimeError(f"restore into {url} is incomplete: rows {counts}, expected {expected}")


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


def _python_parse_seconds(gz_dump: Path) -> tuple[float, float]:
    """(gunzip alone, gunzip + grouping into whole-statement chunks) of the dump, no network."""
    started = time.monotonic()
    with gzip.open(gz_dump, "rb") as raw:
        while raw.read(1 << 20):
            pass
    gunzip = time.monotonic() - started
    started = time.monotonic()
    with gzip.open(gz_dump, "rt", encoding="utf-8", newline="") as text:
        for _ in backup._statements(iter(text)):
            pass
    return gunzip, time.monotonic() - started


# -- the layers ------------------------------------------------------------------------------------------------
@dataclass
class Layer1Backup:
    catalog: backup.BackupCatalog
    entry: backup.CatalogEntry
    dump: Path  # a local copy of the gzip'd dump (for the sqlite3 replay and the parse-only pass)


def make_layer1_backup(bench: Bench, seed: SeedInfo) -> tuple[Layer1Backup, float]:
    source = bench.server("source")
    install_seed(seed, source.db_file)
    source.start()
    region = bench.region("us-east")
    catalog = backup.BackupCatalog(S3Store(region.client(), region.new_bucket("bench", f"l1-{seed.scale}")))
    started = time.monotonic()
    entry = backup.take_backup(source.http_url, catalog, sqld_version=source.version(), timeout=3600)
    seconds = time.monotonic() - started
    source.kill()
    dump = bench.workdir / f"{entry.id}.sql.gz"
    with dump.open("wb") as out:
        catalog.store.get(entry.key, out)
    return Layer1Backup(catalog, entry, dump), seconds


def layer1_restore(bench: Bench, seed: SeedInfo, made: Layer1Backup) -> Row:
    with (
        timed_calls(recovery, ("download_verified", "dump_problem", "replay_dump")) as calls,
        measured(lambda: None) as m,
    ):
        outcome = recovery.restore_first([recovery.Layer1Source(made.catalog)], recovery.Gate(),
                                         lambda: bench.server("l1-target"), bench.workdir / "restore")  # fmt: skip
    target = outcome.server
    assert isinstance(target, ProcessSqld)
    sqld_peak = peak_mb(target.pid)
    check_restored(target.http_url, seed)
    target.kill()
    if outcome.entry.id != made.entry.id:
        raise RuntimeError(f"layer 1 restored {outcome.entry.id}, not the backup just taken ({made.entry.id})")
    gunzip, parse = _python_parse_seconds(made.dump)
    detail = {
        "download_s": calls["download_verified"],
        "verify_dump_s": calls["dump_problem"],
        "replay_s": calls["replay_dump"],
        "py_gunzip_s": gunzip,
        "py_gunzip_and_chunking_s": parse,
        "sqld_cpu_s": m["sqld_cpu"],
        "runner_cpu_s": m["runner_cpu"],
        "dump_gz_bytes": float(made.entry.bytes),
    }
    return Row(seed.scale, seed.bytes, "layer 1 restore (dump replay)", m["seconds"], m["runner_peak_mb"], sqld_peak,
               detail)  # fmt: skip


def layer2_restore(bench: Bench, seed: SeedInfo) -> list[Row]:
    """Bottomless: snapshot a seeded sqld into a bucket, then time a fresh sqld restoring it at start."""
    region = bench.region("us-east")
    bucket = region.new_bucket("bench", f"l2-{seed.scale}")
    env = bottomless_env(region.endpoint, bucket, "bench", 1)
    args = ("--enable-bottomless-replication",)
    source = bench.server("l2-source", env, args)
    install_seed(seed, source.db_file)
    source.start()
    source.stop(timeout=1800)  # SIGTERM: bottomless uploads the snapshot and flushes its queue
    keys = [o["Key"] for p in region.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in p.get("Contents", [])]  # fmt: skip
    if not any("/db." in k for k in keys):
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
    check_restored(target.http_url, seed)
    target.stop(timeout=1800)
    detail = {"empty_sqld_start_s": empty_start, "sqld_cpu_s": m["sqld_cpu"], "s3_objects": float(len(keys))}
    return [Row(seed.scale, seed.bytes, "layer 2 restore (bottomless, to /health)", m["seconds"], m["runner_peak_mb"],
                sqld_peak, detail, f"empty sqld start {empty_start:.2f}s")]  # fmt: skip


def layer4_restore(bench: Bench, seed: SeedInfo, made: Layer1Backup) -> Row:
    region = bench.region("eu-west")
    store = S3Store(region.client(), region.new_bucket("bench", f"l4-{seed.scale}"))
    key = OffsiteKey.generate()
    copy_backup(made.catalog, made.entry, store, key)
    with timed_calls(recovery, ("replay_dump",)) as calls, measured(lambda: None) as m:
        won = recovery.restore_first([OffsiteSource(store, keyring(key))], recovery.Gate(),
                                     lambda: bench.server("l4-target"), bench.workdir / "restore")  # fmt: skip
    target = won.server
    assert isinstance(target, ProcessSqld)
    sqld_peak = peak_mb(target.pid)
    check_restored(target.http_url, seed)
    target.kill()
    detail = {"replay_s": calls["replay_dump"], "fetch_decrypt_s": m["seconds"] - calls["replay_dump"],
              "sqld_cpu_s": m["sqld_cpu"], "runner_cpu_s": m["runner_cpu"]}  # fmt: skip
    return Row(seed.scale, seed.bytes, "layer 4 restore (decrypt + replay)", m["seconds"], m["runner_peak_mb"],
               sqld_peak, detail)  # fmt: skip


def _warm(path: Path) -> None:
    """Read the file once, so every step starts with it in the page cache."""
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def bench_size(bench: Bench, seed: SeedInfo, layers: tuple[str, ...]) -> list[Row]:
    scratch = bench.workdir / f"scratch-{seed.scale}"
    scratch.mkdir()
    _warm(seed.path)
    rows = [
        Row(seed.scale, seed.bytes, RAW, raw_copy(seed.path, scratch / "copy.db")),
        Row(seed.scale, seed.bytes, "sqlite3 .backup", sqlite_backup(seed.path, scratch / "backup.db")),
        Row(seed.scale, seed.bytes, "S3 GET of the file (moto)", s3_get(bench.region("us-east"), seed.path, scratch),
            note="ceiling of restores through this S3 endpoint"),
    ]  # fmt: skip
    made, backup_s = make_layer1_backup(bench, seed)
    rows.append(Row(seed.scale, seed.bytes, "sqlite3 CLI < layer-1 dump", sqlite_replay(made.dump, scratch / "replay.db"),
                    note="SQL replay floor: no sqld, no HTTP"))  # fmt: skip
    shutil.rmtree(scratch)
    if "1" in layers:
        row = layer1_restore(bench, seed, made)
        rows.append(Row(**{**asdict(row), "note": f"backup took {backup_s:.2f}s"}))
    if "2" in layers:
        rows += layer2_restore(bench, seed)
    if "4" in layers:
        rows.append(layer4_restore(bench, seed, made))
    made.dump.unlink()
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
    parser.add_argument("--cache", type=Path, default=ROOT / ".drills" / "cache", help="seed cache folder")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".drills" / "bench", help="scratch space (same disk)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    try:
        args.scales = [parse_scale(s) for s in args.sizes.split(",") if s.strip()]
    except ConfigError as exc:
        parser.error(str(exc).replace("drill_scale", "--sizes"))
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
                size_rows = bench_size(bench, seed, args.layer_list)
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
