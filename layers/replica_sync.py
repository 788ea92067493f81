"""One sync of a libsql embedded replica, run as its own process by layers/snapshot.py:

    python layers/replica_sync.py REPLICA_PATH PRIMARY_URL PATIENCE_SECONDS

libsql_experimental holds Python's GIL for the whole connect + sync + close (measured: a 2 ms ticker
thread stalled for as long as the sync took, 0.7-1 s under a 400 writes/s workload), which froze the
runner's writers, readers and service proxy once per backup cycle. A backup agent is a process apart from
the application anyway. Exit 0 once synced and closed (the replica's WAL checkpointed into its file);
otherwise the last error on stderr and exit 1. "Unavailable" (sqld still compacting its log into the
snapshot a new replica starts from, measured at 1 GB) is retried for PATIENCE_SECONDS.

Imports nothing of the project, so it runs by path with the runner's own interpreter."""

from __future__ import annotations

import sys
import time

RETRY_PAUSE = 0.5


def sync_once(replica: str, url: str, patience: float) -> None:
    import libsql_experimental  # a compiled client

    deadline = time.monotonic() + patience
    while True:
        conn = libsql_experimental.connect(replica, sync_url=url)
        try:
            conn.sync()
            return
        except ValueError as exc:
            if "Unavailable" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        time.sleep(RETRY_PAUSE)


def main(argv: list[str]) -> int:
    replica, url, patience = argv
    try:
        sync_once(replica, url, float(patience))
    except Exception as exc:  # the parent raises it with this text
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
