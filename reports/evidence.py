"""Signed evidence of restore tests for auditors (SOC 2 A1.2, ISO 27001 A.17 ask for dated proof): one
folder with the certificate, the run's history records, the report, `evidence.json` (what and when),
a `SHA256SUMS` manifest of every file (`sha256sum -c SHA256SUMS` checks it) and `SHA256SUMS.sig`, an
Ed25519 signature (`cryptography`) of that manifest. Keys are PEM files: PKCS#8 private,
SubjectPublicKeyInfo public (`openssl genpkey -algorithm ed25519` makes the same)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fixtures.digest import file_sha256
from reports.certify import Certificate
from reports.render import render_report

SUMS, SIGNATURE, RECORDS, FACTS = "SHA256SUMS", "SHA256SUMS.sig", "records.jsonl", "evidence.json"


class EvidenceError(ValueError):
    """A key that is not usable, or a bundle that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    files: tuple[str, ...]  # relative paths listed in SHA256SUMS
    fingerprint: str  # SHA-256 of the raw public key


def _load_pem(path: Path, private: bool) -> Any:
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as exc:
        kind = "PKCS#8 private" if private else "SubjectPublicKeyInfo public"
        raise EvidenceError(f"{path}: not a readable {kind} key PEM file ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise EvidenceError(f"{path}: not an Ed25519 key (make one: python -m reports.cli evidence-keygen)")
    return key


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def generate_keys(private_path: Path, public_path: Path) -> str:
    """A new Ed25519 key pair as PEM files (the private one mode 0600); returns its fingerprint."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return fingerprint(key.public_key())


def _listed(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name not in (SUMS, SIGNATURE))  # fmt: skip


def bundle_evidence(
    certificate: Certificate, records: list[dict[str, Any]], frame: pd.DataFrame, out: Path, key_path: Path
) -> Bundle:
    """Writes the bundle into `out` (created; must be empty) and signs it. `records`: the certified runs'
    history records; `frame`: the whole history (the report's trends)."""
    key = _load_pem(key_path, private=True)
    if out.exists() and any(out.iterdir()):
        raise EvidenceError(f"{out} is not empty: evidence goes into a new folder, so nothing stale is signed")
    certificate.write(out)
    (out / RECORDS).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    render_report(frame, certificate.run_ids, out / "report", history=certificate.history)
    signer = fingerprint(key.public_key())
    facts = {"run_ids": certificate.run_ids, "verdict": certificate.verdict, "drills_ran": [certificate.started,
             certificate.finished], "bundled_at": datetime.now(UTC).isoformat(), "history": certificate.history,
             "public_key_sha256": signer, "records": len(records)}  # fmt: skip
    (out / FACTS).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    files = _listed(out)
    sums = "".join(f"{file_sha256(out / name)}  {name}\n" for name in files).encode()
    (out / SUMS).write_bytes(sums)
    (out / SIGNATURE).write_bytes(key.sign(sums))
    return Bundle(out, tuple(files), signer)


def verify_bundle(folder: Path, public_key_path: Path) -> list[str]:
    """Every problem with the bundle in `folder` (empty: the signature holds and every file is as signed)."""
    public = _load_pem(public_key_path, private=False)
    try:
        sums, signature = (folder / SUMS).read_bytes(), (folder / SIGNATURE).read_bytes()
    except OSError as exc:
        return [f"{folder}: no {SUMS} or {SIGNATURE} ({exc.strerror})"]
    try:
        public.verify(signature, sums)
    except InvalidSignature:
        return [f"{SUMS}: the signature does not match (the manifest was changed, or signed by another key)"]
    problems, listed = [], {}
    for line in sums.decode().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: listed in {SUMS} but missing")
        elif file_sha256(path) != digest:
            problems.append(f"{name}: changed since it was signed (SHA-256 differs)")
    problems += [f"{name}: not in {SUMS} (added after signing)" for name in _listed(folder) if name not in listed]
    return problems
