"""Signed evidence bundles: every file is listed in SHA256SUMS with its hash, the manifest is signed with
Ed25519, and changing one byte of any file (or adding one, or using another key) fails verification."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.evidence import SIGNATURE, SUMS, EvidenceError, generate_keys, verify_bundle
from reports.history import FileHistory
from tests import synthetic_history as synth
from tests.drillrun import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reports.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("evidence")
    history = FileHistory(tmp / "h.jsonl")
    for record in synth.records(synth.history(2)):
        history.append(record)
    key, pub = tmp / "keys" / "evidence.key", tmp / "keys" / "evidence.pub"
    assert _cli("evidence-keygen", "--private-key", str(key), "--public-key", str(pub)).returncode == 0
    assert key.stat().st_mode & 0o077 == 0
    done = _cli("evidence", "--history", f"file:{history.path}", "--out", str(tmp / "bundle"), "--key", str(key),
                "--run", "run01")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return tmp / "bundle", key, pub


def test_the_bundle_holds_certificate_records_report_and_verifies(bundle: tuple[Path, Path, Path]) -> None:
    folder, _, pub = bundle
    listed = [line.split("  ", 1)[1] for line in (folder / SUMS).read_text().splitlines()]
    assert {"certificate.json", "certificate.md", "records.jsonl", "evidence.json", "report/report.html"} <= set(listed)
    assert {r["run_id"] for r in map(json.loads, (folder / "records.jsonl").read_text().splitlines())} == {"run01"}
    assert json.loads((folder / "certificate.json").read_text())["verdict"] == "certified"
    assert verify_bundle(folder, pub) == []
    done = _cli("verify-evidence", str(folder), "--public-key", str(pub))
    assert done.returncode == 0 and "evidence verified" in done.stdout


def test_one_changed_byte_in_any_file_fails(bundle: tuple[Path, Path, Path], tmp_path: Path) -> None:
    folder, _, pub = bundle
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert len(files) >= 8
    for path in files:
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        try:
            problems = verify_bundle(folder, pub)
        finally:
            path.write_bytes(original)
        assert problems, f"a changed byte in {path.relative_to(folder)} went unnoticed"
        name = path.relative_to(folder).as_posix()
        assert any(name in p or p.startswith(SUMS) for p in problems), problems
    assert verify_bundle(folder, pub) == []


def test_an_added_file_another_key_or_a_missing_signature_fail(bundle: tuple[Path, Path, Path], tmp_path: Path) -> None:
    folder, _, pub = bundle
    extra = folder / "report" / "extra.txt"
    extra.write_text("added later")
    try:
        assert verify_bundle(folder, pub) == ["report/extra.txt: not in SHA256SUMS (added after signing)"]
    finally:
        extra.unlink()
    other_pub = tmp_path / "other.pub"
    generate_keys(tmp_path / "other.key", other_pub)
    assert verify_bundle(folder, other_pub)[0].startswith("SHA256SUMS: the signature does not match")
    with pytest.raises(EvidenceError, match="not a readable SubjectPublicKeyInfo public key"):
        verify_bundle(folder, folder / "certificate.md")
    signature = (folder / SIGNATURE).read_bytes()
    (folder / SIGNATURE).unlink()
    try:
        assert verify_bundle(folder, pub)[0].endswith("(No such file or directory)")
        done = _cli("verify-evidence", str(folder), "--public-key", str(pub))
        assert done.returncode == 1 and "NOT verified" in done.stdout
    finally:
        (folder / SIGNATURE).write_bytes(signature)


def test_evidence_refuses_a_folder_that_is_not_empty(bundle: tuple[Path, Path, Path], tmp_path: Path) -> None:
    folder, key, _ = bundle
    history = FileHistory(tmp_path / "h.jsonl")
    for record in synth.records(synth.history(1)):
        history.append(record)
    done = _cli("evidence", "--history", f"file:{history.path}", "--out", str(folder), "--key", str(key))
    assert done.returncode == 2 and "is not empty" in done.stderr
