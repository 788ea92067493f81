"""Servers for the project's own tests: a factory of not-yet-started sqld servers of one backend, and a
seeded process server for modules that take many backups from one source."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from fixtures.binary import sqld_binary
from fixtures.image import resolve_image
from fixtures.seed import SeedInfo, install_seed
from fixtures.sqld import SqldServer, SqldSpec
from fixtures.sqld_container import ContainerSqld
from fixtures.sqld_process import ProcessSqld
from layers.backup import BackupCatalog
from layers.recovery import Candidate, Gate, Layer1Source, restore_first

SqldFactory = Callable[..., SqldServer]


@contextlib.contextmanager
def sqld_servers(backend: str, root: Path) -> Iterator[SqldFactory]:
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


@contextlib.contextmanager
def seeded_process(root: Path, seed: SeedInfo) -> Iterator[SqldServer]:
    """One started process sqld holding the seed, for modules that take many backups from one source."""
    with sqld_servers("process", root) as make:
        server = make("source")
        install_seed(seed, server.db_file)
        yield server.start()


def restore_catalog(catalog: BackupCatalog, make: SqldFactory, workdir: Path, gate: Gate | None = None) -> Candidate:
    """layers.recovery.restore_first over one layer-1 catalog into fresh servers `make("target")`."""
    return restore_first([Layer1Source(catalog)], gate or Gate(), lambda: make("target"), workdir)
