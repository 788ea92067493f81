"""The staging sqld a restore test restores into: a fresh server of the chosen backend in the run's own
folder, killed when the run ends."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from fixtures.binary import sqld_binary
from fixtures.engine import ensure_engine
from fixtures.image import ensure_image, resolve_image
from fixtures.sqld import SqldServer, SqldSpec
from fixtures.sqld_container import ContainerSqld
from fixtures.sqld_process import ProcessSqld
from fixtures.wait import NotReady
from layers.source_access import RestoreFailed, SourceError


def new_staging(
    backend: str,
    workdir: Path,
    stack: ExitStack,
    *,
    name: str = "staging",
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> SqldServer:
    """A staging sqld, not started (killed when `stack` closes)."""
    spec = SqldSpec(name, workdir / name, workdir / f"{name}.log", env=dict(env or {}), args=args)
    server: SqldServer
    if backend == "container":
        engine = ensure_engine()
        if engine is None:
            raise SourceError("--backend container: no container engine answers (run scripts/setup.sh)")
        os.environ.update(engine.testcontainers_env())
        client = engine.client()
        ensure_image(client, resolve_image("local"))
        client.close()
        server = ContainerSqld(spec, image=resolve_image("local"))
    else:
        server = ProcessSqld(spec, binary=str(sqld_binary()))
    stack.callback(server.kill)
    return server


def start_staging(
    backend: str,
    workdir: Path,
    stack: ExitStack,
    *,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    prefill: Path | None = None,
) -> SqldServer:
    """Start the staging sqld (killed when `stack` closes); `prefill` is a SQLite file it serves from start."""
    server = new_staging(backend, workdir, stack, env=env, args=args)
    if prefill is not None:
        server.db_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(prefill, server.db_file)
    try:
        return server.start()
    except NotReady as exc:  # e.g. sqld refused the restored file, or bottomless's restore failed
        raise RestoreFailed(f"the staging sqld did not start on the restored data: {str(exc)[-1500:]}") from None
