"""Shared fixtures of the project's own tests: a moto S3 region, a container engine, a small seed, and
factories of sqld servers (one parametrized over both backends). The drill plugin is fixtures/plugin.py;
its fixture names (`drill`, `drill_session`, `drill_backend`, `run_scenario`) are deliberately not reused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.binary import sqld_binary
from fixtures.config import Scale
from fixtures.engine import TESTCONTAINERS_ENV, Engine
from fixtures.engine_ready import EngineUnusable, ready_engine
from fixtures.image import resolve_image
from fixtures.s3 import Region, open_region
from fixtures.seed import SeedInfo, build_seed
from fixtures.sqld import SqldServer
from layers.backup import BackupCatalog
from layers.store import S3Store
from tests.servers import SqldFactory, seeded_process, sqld_servers

BACKENDS = ("process", "container")
SMALL_SCALE = Scale(customers=120)


@pytest.fixture(scope="session")
def moto_region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """One local moto_server region for the whole session, killed at the end."""
    region = open_region("us-east", "moto", log_dir=tmp_path_factory.mktemp("moto"), reaper=None, timeout=30)
    try:
        yield region
    finally:
        if region.server is not None:
            region.server.kill()


@pytest.fixture(scope="session")
def container_engine() -> Iterator[Engine]:
    """A container engine proven to run the local sqld image (the one wiring the drills use), with
    testcontainers pointed at it for the session (the environment is restored after). An engine that
    cannot run containers fails the test with the cause and the fix: container coverage is never skipped."""
    saved = {key: os.environ.get(key) for key in TESTCONTAINERS_ENV}
    try:
        yield ready_engine(resolve_image("local"), sqld_binary()).engine
    except EngineUnusable as exc:
        pytest.fail(str(exc))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def small_seed(tmp_path_factory: pytest.TempPathFactory) -> SeedInfo:
    """A small seed database (120 customers), built once per session."""
    return build_seed(tmp_path_factory.mktemp("seed-cache"), SMALL_SCALE)


@pytest.fixture(params=BACKENDS)
def sqld_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqldFactory]:
    """Builds sqld servers of the parametrized backend in tmp_path: `make(name, args=..., startup_timeout=...)`."""
    if request.param == "container":
        request.getfixturevalue("container_engine")
    with sqld_servers(request.param, tmp_path) as make:
        yield make


@pytest.fixture
def process_sqld(tmp_path: Path) -> Iterator[SqldFactory]:
    """Like sqld_factory, for the process backend only."""
    with sqld_servers("process", tmp_path) as make:
        yield make


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, small_seed: SeedInfo) -> Iterator[SqldServer]:
    """One seeded process sqld that every backup of a module is taken from."""
    with seeded_process(tmp_path_factory.mktemp("source"), small_seed) as server:
        yield server


@pytest.fixture
def catalog(moto_region: Region, request: pytest.FixtureRequest) -> Iterator[BackupCatalog]:
    """A layer-1 catalog in a fresh bucket of the moto region, deleted after the test."""
    bucket = moto_region.new_bucket("catalog", request.node.name[-24:])
    try:
        yield BackupCatalog(S3Store(moto_region.client(), bucket))
    finally:
        moto_region.delete_bucket(bucket)
