"""The workload's libsql-client: the private attributes fixtures/workload.py sets (libsql-client 0.3.1 has
no option for either) must still change the session's timeout and headers."""

from __future__ import annotations

from fixtures.sqld import LOOPBACK, free_port
from fixtures.workload import REQUEST_TIMEOUT, open_client


def test_client_requests_time_out_and_carry_the_extra_headers() -> None:
    client = open_client(f"http://{LOOPBACK}:{free_port()}", {"x-namespace": "drill"})
    try:
        session = client._client._session  # type: ignore[attr-defined]
        assert session.timeout.total == REQUEST_TIMEOUT  # aiohttp's default would be 300 s
        assert session.headers["x-namespace"] == "drill"
    finally:
        client.close()
