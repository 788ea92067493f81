"""Layer 2 armed again on the recovered, serving server, into a new generation.

A server that already streams its WAL (an in-place recovery such as row deletion, or the region outage's
layer-2 restore, which bottomless restored and keeps streaming) is checkpointed: sqld starts a new
generation whose snapshot is the recovered database. A server the recovery started without bottomless
(a layer-1 backup placed or replayed, a rolled-forward copy) is restarted on its own files with the layer-2
settings the primary ran with, into a new bucket: with a non-empty local file bottomless uploads it as the
first generation there (measured: restart 0.09 s, snapshot in S3 0.04 s later at 2 MB). The restart is what
an operator does when the recovery tooling started sqld without its production settings; its service
interruption is measured. Starting the recovered server with bottomless from the first start would fold
that into the RTO instead, but an empty bottomless server restores the newest generation of its bucket by
itself (a dump replay would land on top of it), so each recovery candidate would need a bucket of its own.

sqld verifies S3 certificates against its own CA bundle, which does not hold a drill-made CA: when the
region now serving is such a TLS endpoint (eu-west by default), layer 2 goes to a plain-HTTP endpoint
started for that region on 127.0.0.1, as the region outage's own layer-2 restore does."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from fixtures.hrana import HranaSession
from fixtures.s3 import MOTO_CREDENTIALS, MotoServer, Region, S3Endpoint
from layers.bottomless_layout import Generation, generations
from layers.pitr import bottomless_env, namespace_of
from layers.restore_proof import ProofFailed
from layers.store import S3Store

if TYPE_CHECKING:
    from fixtures.drill import Drill
    from fixtures.sqld import SqldServer

LAYER2_FLAG = "--enable-bottomless-replication"
BUCKET = "LIBSQL_BOTTOMLESS_BUCKET"


@dataclass(frozen=True)
class Layer2Target:
    """Where the serving server streams its WAL now, and how it got there."""

    region: Region  # its S3 endpoint (a drill region, or one known only from sqld's settings)
    bucket: str
    db_name: str  # bottomless's name: ns-DATABASE_ID:NAMESPACE
    known: frozenset[str]  # the generations there before it was armed
    how: str
    interruption_seconds: float = 0.0  # the service was down this long to arm it

    @property
    def store(self) -> S3Store:
        return S3Store(self.region.client(), self.bucket)


def streams(server: SqldServer) -> bool:
    return LAYER2_FLAG in server.spec.args and BUCKET in server.spec.env


def local_region(drill: Drill, name: str) -> Region:
    """A plain-HTTP moto_server on 127.0.0.1 standing for a region's storage (killed with the drill)."""
    server = MotoServer(name, drill.artifacts / f"moto-{name}.log", reaper=drill.session.reaper,
                        timeout=drill.config.startup_timeout).start()  # fmt: skip
    drill.cleanups.append(server.kill)
    return Region(name, S3Endpoint(name, server.url, *MOTO_CREDENTIALS), server)


def _region_of(drill: Drill, env: Mapping[str, str]) -> Region:
    """The drill region whose endpoint sqld streams to, or a Region made from sqld's own settings."""
    url = env["LIBSQL_BOTTOMLESS_ENDPOINT"]
    for region in drill.session.regions().values():
        if region.endpoint.url == url:
            return region
    aws = env["LIBSQL_BOTTOMLESS_AWS_DEFAULT_REGION"]
    key, secret = env["LIBSQL_BOTTOMLESS_AWS_ACCESS_KEY_ID"], env["LIBSQL_BOTTOMLESS_AWS_SECRET_ACCESS_KEY"]
    return Region(aws, S3Endpoint(aws, url, key, secret))


def _db_name(env: Mapping[str, str], namespace: str) -> str:
    return f"ns-{env['LIBSQL_BOTTOMLESS_DATABASE_ID']}:{namespace}"


def _known(region: Region, bucket: str, db_name: str) -> frozenset[str]:
    return frozenset(g.id for g in generations(S3Store(region.client(), bucket).list(f"{db_name}-"), db_name))


def checkpoint(drill: Drill, server: SqldServer) -> Layer2Target:
    """A server already streaming: a TRUNCATE checkpoint of the served namespace starts a new generation.
    ProofFailed when sqld refuses it (measured: after a fork, sqld 0.24 has removed the live namespace's
    local bottomless staging folder; its WAL no longer reaches S3 and every checkpoint fails)."""
    namespace = namespace_of(drill.target_headers)
    env = server.spec.env
    region, db_name = _region_of(drill, env), _db_name(env, namespace)
    known = _known(region, env[BUCKET], db_name)
    response = requests.post(f"{server.admin_url}/v1/namespaces/{namespace}/checkpoint", timeout=30)
    if response.status_code != 200:
        staged = server.spec.storage / env[BUCKET]
        gone = not any(p.name.startswith(f"{db_name}-") for p in staged.iterdir()) if staged.is_dir() else True
        raise ProofFailed(f"checkpoint of {namespace} answered HTTP {response.status_code}: {response.text[:200]}"
                          + (f"; no local bottomless staging folder of {db_name} is left under ./{env[BUCKET]}/: "
                             "its WAL does not reach S3" if gone else ""))  # fmt: skip
    return Layer2Target(region, env[BUCKET], db_name, known, "checkpointed into a new generation of its bucket")


def _restart(drill: Drill, server: SqldServer, env: Mapping[str, str], args: tuple[str, ...]) -> float:
    """Restart the server on its own files with these settings; the seconds it did not serve. The served
    namespace is opened once (sqld loads namespaces, and so starts their generation, on first use)."""
    started = time.monotonic()
    server.stop()
    server.spec = dataclasses.replace(server.spec, env={**server.spec.env, **env}, args=args)
    server.start()
    with HranaSession(server.http_url, timeout=30, headers=drill.target_headers) as s:
        s.execute("SELECT 1")
    return time.monotonic() - started


def restart_in_place(drill: Drill, server: SqldServer, why: str) -> Layer2Target:
    """A server whose stream broke (`why`): restarted on the same settings, it starts a new generation of
    its local file in the same bucket (measured: the local file, newer than S3, is kept)."""
    env = server.spec.env
    region, db_name = _region_of(drill, env), _db_name(env, namespace_of(drill.target_headers))
    known = _known(region, env[BUCKET], db_name)
    down = _restart(drill, server, {}, server.spec.args)
    return Layer2Target(region, env[BUCKET], db_name, known,
                        f"{why}; restarted on its settings (service interrupted {down:.2f} s)", down)  # fmt: skip


def restart_streaming(drill: Drill, server: SqldServer, home: Region, armed: Mapping[str, str]) -> Layer2Target:
    """A server started without bottomless: restarted on its files with the primary's layer-2 settings
    (database id, batch interval) into a new bucket of the region now serving."""
    region = home if home.endpoint.url.startswith("http://") else local_region(drill, f"{home.name}-layer2")
    bucket = drill.new_bucket(region, "layer2-after")
    interval = int(armed.get("LIBSQL_BOTTOMLESS_BATCH_INTERVAL_SECS", drill.config.pitr_batch_interval))
    env = bottomless_env(region.endpoint, bucket, armed["LIBSQL_BOTTOMLESS_DATABASE_ID"], interval)
    down = _restart(drill, server, env, (*server.spec.args, LAYER2_FLAG))
    return Layer2Target(region, bucket, _db_name(env, namespace_of(drill.target_headers)), frozenset(),
                        f"restarted with bottomless into a new bucket (service interrupted {down:.2f} s)", down)  # fmt: skip


def wait_new_generation(target: Layer2Target, timeout: float) -> Generation:
    """The generation the target started when it was armed, once its snapshot is in S3."""
    store = target.store
    deadline = time.monotonic() + timeout
    while True:
        fresh = [g for g in generations(store.list(f"{target.db_name}-"), target.db_name)
                 if g.id not in target.known and g.snapshot is not None]  # fmt: skip
        if fresh:
            return fresh[0]
        if time.monotonic() > deadline:
            raise ProofFailed(
                f"no new generation of {target.db_name} in {store.url} within {timeout:g} s of arming "
                f"({target.how}): the recovered database is not streaming its WAL"
            )
        time.sleep(0.05)
