"""Secrets never leave: S3 keys and the offsite encryption key do not appear in logs, pytest output (even
with --showlocals), reports, history, JUnit XML, artifacts or exception messages. The drills run against
regions configured as real endpoints (a moto_server, which accepts any keys) with unique marker
credentials, and every artefact is searched for the markers in every form they could take."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.s3 import EndpointUnreachable, Region, S3Endpoint, open_region
from fixtures.sqld import SqldServer, SqldSpec, free_port
from layers.backup import BackupCatalog, BackupScheduler, NoUsableBackup
from layers.key_escrow import RecoveryKey
from layers.key_source import KeyServiceClient, ObtainedKey
from layers.notify import JsonlNotifier
from layers.offsite import OffsiteKey
from layers.pitr import bottomless_env
from layers.policy import Policy
from layers.store import S3Store
from tests.drillrun import DrillRun, run_pytest
from tests.servers import restore_catalog


class Markers:
    """Unique credentials for one test, and every byte form they could leak in."""

    def __init__(self) -> None:
        tag = secrets.token_hex(6)
        self.env = {
            "DRILL_S3_US_EAST_ACCESS_KEY_ID": f"AKIDUSEAST{tag}",
            "DRILL_S3_US_EAST_SECRET_ACCESS_KEY": f"usEastSecretMarker{tag}",
            "DRILL_S3_EU_WEST_ACCESS_KEY_ID": f"AKIDEUWEST{tag}",
            "DRILL_S3_EU_WEST_SECRET_ACCESS_KEY": f"euWestSecretMarker{tag}",
        }
        self.offsite = b"OFFSITE" + secrets.token_bytes(25)
        self.env["DRILL_OFFSITE_KEY"] = base64.b64encode(self.offsite).decode()

    @property
    def forms(self) -> dict[str, bytes]:
        out = {name: value.encode() for name, value in self.env.items()}
        out["offsite key (raw)"] = self.offsite
        out["offsite key (hex)"] = self.offsite.hex().encode()
        out["offsite key (urlsafe base64)"] = base64.urlsafe_b64encode(self.offsite).rstrip(b"=")
        return out

    def leaks(self, data: bytes, where: str) -> list[str]:
        return [f"{name} in {where}" for name, form in self.forms.items() if form in data]


@pytest.fixture
def markers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Markers]:
    m = Markers()
    for name, value in m.env.items():
        monkeypatch.setenv(name, value)
    yield m


def _search(run: DrillRun, tmp: Path, markers: Markers) -> list[str]:
    leaks = markers.leaks(run.output.encode(), "pytest stdout/stderr")
    files = [p for p in tmp.rglob("*") if p.is_file()]
    assert any(p.name == "junit.xml" for p in files) and any(p.name == "history.jsonl" for p in files)
    for path in files:
        leaks += markers.leaks(path.read_bytes(), str(path.relative_to(tmp)))
    return leaks


def test_drills_with_real_endpoint_credentials_leak_nothing(
    tmp_path: Path, moto_region: Region, markers: Markers
) -> None:
    url = moto_region.endpoint.url
    # 1. primary region as a real endpoint: layer 1 (a failing drill too, its traceback with locals) and layer 2
    #    (sqld's bottomless gets the keys in its environment and writes its log into the artifacts).
    first = run_pytest(
        ["drills/test_total_loss.py", "drills/test_row_deletion.py::test_row_deletion_rewind", "-p", "tests.sabotage",
         "--drill-backend=process", f"--drill-regions=us-east={url} eu-west=moto", "--showlocals", "--tb=long",
         "-rA", "-v", f"--junitxml={tmp_path / 'a' / 'junit.xml'}"],
        tmp_path / "a", env={**markers.env, "DRILL_SABOTAGE": "total-loss-restore-noop"},
    )  # fmt: skip
    assert "1 failed, 1 passed" in first.output, first.output[-3000:]
    assert {r["scenario"] for r in first.history} == {"total-loss", "row-deletion-rewind"}
    # 2. offsite region as a real endpoint, with the offsite encryption key from the environment.
    second = run_pytest(
        ["drills/test_region_outage.py::test_region_outage", "--drill-backend=process",
         f"--drill-regions=us-east=moto eu-west={url}", "--showlocals", "-rA", "-v",
         f"--junitxml={tmp_path / 'b' / 'junit.xml'}"],
        tmp_path / "b", env=markers.env,
    )  # fmt: skip
    assert second.returncode == 0, second.output[-3000:]
    offsite_key = OffsiteKey.from_env(markers.env)
    assert offsite_key is not None
    assert [r["details"]["layer4_key"] for r in second.history] == [f"{offsite_key.key_id} ($DRILL_OFFSITE_KEY)"], (
        "the drill should have sealed with the key from the environment"
    )
    assert _search(first, tmp_path / "a", markers) + _search(second, tmp_path / "b", markers) == []


def test_no_credentials_no_run(tmp_path: Path, moto_region: Region, monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise of the test above: a real-endpoint region runs only with the credentials it was given."""
    for name in ("DRILL_S3_US_EAST_ACCESS_KEY_ID", "DRILL_S3_US_EAST_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EndpointUnreachable, match="DRILL_S3_US_EAST_ACCESS_KEY_ID"):
        open_region("us-east", moto_region.endpoint.url, log_dir=tmp_path, reaper=None, timeout=5)


def test_objects_holding_keys_never_show_them(markers: Markers) -> None:
    endpoint = S3Endpoint("us-east", "http://127.0.0.1:9", markers.env["DRILL_S3_US_EAST_ACCESS_KEY_ID"],
                          markers.env["DRILL_S3_US_EAST_SECRET_ACCESS_KEY"])  # fmt: skip
    spec = SqldSpec("p", Path("/tmp/x"), Path("/tmp/x.log"), env=bottomless_env(endpoint, "b", "db", 1))
    key = OffsiteKey.from_env()
    assert key is not None
    shown = " ".join([repr(endpoint), str(endpoint), repr(spec), repr(key), repr(Region("us-east", endpoint))])
    assert markers.leaks(shown.encode(), "reprs") == []


def _no_server(name: str) -> SqldServer:
    raise AssertionError("nothing restorable: no server may be provisioned")


def test_errors_through_the_runner_name_no_keys(markers: Markers, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EndpointUnreachable) as unreachable:
        open_region("us-east", dead, log_dir=tmp_path, reaper=None, timeout=2)
    endpoint = S3Endpoint("us-east", dead, markers.env["DRILL_S3_US_EAST_ACCESS_KEY_ID"],
                          markers.env["DRILL_S3_US_EAST_SECRET_ACCESS_KEY"])  # fmt: skip
    catalog = BackupCatalog(S3Store(endpoint.client(connect_timeout=1, read_timeout=1), "bucket"))
    with pytest.raises(NoUsableBackup) as restore:
        restore_catalog(catalog, _no_server, tmp_path / "restore")
    notifier = JsonlNotifier(tmp_path / "n.jsonl")
    scheduler = BackupScheduler(dead, catalog, Policy(interval_seconds=1), notifier, sqld_version="v")
    scheduler.run_once()
    texts = [str(unreachable.value), repr(unreachable.value), str(restore.value), (tmp_path / "n.jsonl").read_text()]
    assert all(texts) and markers.leaks("\n".join(texts).encode(), "error messages") == []


def test_key_service_recovery_key_and_escrow_leak_nothing(tmp_path: Path, markers: Markers) -> None:
    """The key-unavailable drill with the offsite key from the environment and a recovery key from a file:
    neither key, the escrowed (wrapped) key, nor the key service's bearer token appears in the output, the
    history, the JUnit XML or any artifact (the key service's log included)."""
    recovery = b"RECOVERY" + secrets.token_bytes(24)
    key_file = tmp_path / "vault" / "recovery.key"  # outside the folder searched: it is the key itself
    key_file.parent.mkdir()
    key_file.write_text(base64.b64encode(recovery).decode())
    run = run_pytest(
        ["drills/test_key_unavailable.py", "--drill-backend=process", f"--drill-recovery-key={key_file}",
         "--showlocals", "-rA", "-v", f"--junitxml={tmp_path / 'run' / 'junit.xml'}"],
        tmp_path / "run", env=markers.env,
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    (record,) = run.history
    assert record["details"]["key_obtained"]["via"] == "escrow"
    assert record["details"]["recovery_key"].endswith(f"(file {key_file})")
    assert any(p.name == "key-service.log" for p in (tmp_path / "run").rglob("*")), "the key service logged nothing"
    forms = {"recovery key (raw)": recovery, "recovery key (hex)": recovery.hex().encode(),
             "recovery key (base64)": base64.b64encode(recovery), "wrapped key (escrow blob)": b'"wrapped"',
             "bearer token": b"Bearer "}  # fmt: skip
    texts = [(run.output.encode(), "pytest output")]
    texts += [(p.read_bytes(), str(p)) for p in (tmp_path / "run").rglob("*") if p.is_file()]
    leaks = _search(run, tmp_path / "run", markers)
    leaks += [f"{name} in {where}" for data, where in texts for name, form in forms.items() if form in data]
    assert leaks == []


def test_key_holders_never_show_their_keys() -> None:
    key = OffsiteKey.generate()
    recovery = RecoveryKey.generate()
    client = KeyServiceClient("https://127.0.0.1:9", "token-" + secrets.token_hex(16))
    shown = " ".join([repr(key), repr(recovery), repr(client), repr(ObtainedKey(key, "escrow", ()))])
    for secret in (key.secret, recovery.secret, client.token.encode()):
        assert secret.hex() not in shown and base64.b64encode(secret).decode() not in shown
    assert client.token not in shown
