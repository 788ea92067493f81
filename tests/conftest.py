"""Shared fixtures of the project's own tests: a moto S3 region, a container engine, a small seed, and
factories of sqld servers (one parametrized over both backends). The root conftest.py is the drill plugin;
its fixture names (`drill`, `drill_session`, `drill_backend`, `run_scenario`) are deliberately not reused."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.binary import sqld_binary
from fixtures.config import Scale
from fixtures.engine import Engine, ensure_engine
from fixtures.image import ensure_image, resolve_image
from fixtures.s3 import Region, open_region
from fixtures.seed import SeedInfo, build_seed, install_seed
from fixtures.sqld import SqldServer, SqldSpec
from fixtures.sqld_container import ContainerSqld
from fixtures.sqld_process import ProcessSqld
from layers.backup import BackupCatalog
from layers.recovery import Candidate, Gate, Layer1Source, restore_first

BACKENDS = ("process", "container")
SMALL_SCALE = Scale(customers=120)

SqldFactory = Callable[..., SqldServer]


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
    """An answering container engine (podman's Docker-compatible socket if needed) holding the local sqld
    image, with testcontainers pointed at it for the session (the environment is restored after)."""
    engine = ensure_engine()
    assert engine is not None, "no container engine answers and podman could not serve one"
    env = engine.testcontainers_env()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    client = engine.client()
    try:
        ensure_image(client, resolve_image("local"), sqld_binary())
    finally:
        client.close()
    try:
        yield engine
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


@contextlib.contextmanager
def _servers(backend: str, root: Path) -> Iterator[SqldFactory]:
    """A factory of not-yet-started servers of one backend under root; kills every one it made on exit."""
    made: list[SqldServer] = []
    binary = str(sqld_binary()) if backend == "process" else ""

    def make(name: str = "srv", *, args: tuple[str, ...] = (), startup_timeout: float = 30.0) -> SqldServer:
        n = len(made) + 1
        spec = SqldSpec(
            name=f"{name}-{n}",
            storage=root / f"{name}-{n}",
            log=root / f"{name}-{n}.log",
            args=args,
            startup_timeout=startup_timeout,
        )
        server: SqldServer
        if backend == "container":
            server = ContainerSqld(spec, image=resolve_image("local"))
        else:
            server = ProcessSqld(spec, binary=binary)
        made.append(server)
        return server

    try:
        yield make
    finally:
        for server in made:
            with contextlib.suppress(Exception):
                server.kill()


@pytest.fixture(params=BACKENDS)
def sqld_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqldFactory]:
    """Builds sqld servers of the parametrized backend in tmp_path: `make(name, args=..., startup_timeout=...)`."""
    if request.param == "container":
        request.getfixturevalue("container_engine")
    with _servers(request.param, tmp_path) as make:
        yield make


@contextlib.contextmanager
def seeded_process(root: Path, seed: SeedInfo) -> Iterator[SqldServer]:
    """One started process sqld holding the seed, for modules that take many backups from one source."""
    with _servers("process", root) as make:
        server = make("source")
        install_seed(seed, server.db_file)
        yield server.start()


@pytest.fixture
def process_sqld(tmp_path: Path) -> Iterator[SqldFactory]:
    """Like sqld_factory, for the process backend only."""
    with _servers("process", tmp_path) as make:
        yield make


def restore_catalog(catalog: BackupCatalog, make: SqldFactory, workdir: Path, gate: Gate | None = None) -> Candidate:
    """layers.recovery.restore_first over one layer-1 catalog into fresh servers `make("target")`."""
    return restore_first([Layer1Source(catalog)], gate or Gate(), lambda: make("target"), workdir)
