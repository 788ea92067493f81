"""Key escrow for layer 4: the data key wrapped a second time under a recovery key kept apart from the key
service (offline, in a safe, with the people who may declare a disaster), so a recovery can open the offsite
copies when the key service cannot be reached. The wrapped blob is stored beside the offsite copies
(`layer4/escrow/<key id>.json`): without the recovery key it is as useless as the sealed copies themselves.

Wrapping is AES-256-GCM under the recovery key, with the data key's id and the recovery key's id as
associated data: a blob renamed to another key id, altered, or opened under another recovery key fails."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from layers.offsite import OffsiteKey
from layers.store import ObjectMissing, ObjectStore

ESCROW = "layer4/escrow/"
FORMAT = "layer4-escrow-1"


class EscrowError(ValueError):
    """An escrowed key that cannot be unwrapped; the message says why."""


@dataclass(frozen=True)
class RecoveryKey:
    """A 256-bit key that only wraps and unwraps data keys. Its repr never shows the key."""

    secret: bytes = field(repr=False)
    source: str = "generated for this drill, held apart in memory"

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise ValueError(f"a recovery key needs 32 bytes, not {len(self.secret)}")

    @property
    def key_id(self) -> str:
        return "rk-" + hashlib.sha256(b"recovery key id:" + self.secret).hexdigest()[:12]

    @classmethod
    def generate(cls) -> RecoveryKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_file(cls, path: Path) -> RecoveryKey:
        """A file holding base64 of 32 random bytes (`openssl rand -base64 32 > recovery.key`)."""
        try:
            secret = base64.b64decode(path.read_text().strip(), validate=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"recovery key file {path}: {type(exc).__name__}") from None
        if len(secret) != 32:
            raise ValueError(f"recovery key file {path} must hold base64 of 32 bytes (`openssl rand -base64 32`)")
        return cls(secret, f"file {path}")


def escrow_key(key_id: str) -> str:
    return f"{ESCROW}{key_id}.json"


def _aad(key_id: str, recovery_id: str) -> bytes:
    return f"{FORMAT}:{key_id}:{recovery_id}".encode()


def wrap(key: OffsiteKey, recovery: RecoveryKey) -> bytes:
    nonce = secrets.token_bytes(12)
    wrapped = AESGCM(recovery.secret).encrypt(nonce, key.secret, _aad(key.key_id, recovery.key_id))
    blob = {"format": FORMAT, "key_id": key.key_id, "recovery_key_id": recovery.key_id,
            "nonce": base64.b64encode(nonce).decode(), "wrapped": base64.b64encode(wrapped).decode()}  # fmt: skip
    return json.dumps(blob).encode()


def unwrap(blob: bytes, key_id: str, recovery: RecoveryKey) -> OffsiteKey:
    try:
        raw = json.loads(blob)
        nonce, wrapped = base64.b64decode(raw["nonce"]), base64.b64decode(raw["wrapped"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EscrowError(f"escrow of {key_id} is not a {FORMAT} blob ({type(exc).__name__})") from None
    if raw.get("recovery_key_id") != recovery.key_id:
        raise EscrowError(f"escrow of {key_id} is wrapped under recovery key {raw.get('recovery_key_id')!r}, "
                          f"not the configured {recovery.key_id}")  # fmt: skip
    try:
        secret = AESGCM(recovery.secret).decrypt(nonce, wrapped, _aad(key_id, recovery.key_id))
    except InvalidTag:
        raise EscrowError(f"escrow of {key_id} does not authenticate under {recovery.key_id}") from None
    return OffsiteKey(key_id, secret, f"escrow, unwrapped with {recovery.key_id}")


def put_escrow(store: ObjectStore, key: OffsiteKey, recovery: RecoveryKey) -> str:
    """Store the data key wrapped under the recovery key beside the offsite copies; returns its name."""
    name = escrow_key(key.key_id)
    store.put_bytes(name, wrap(key, recovery), {"key-id": key.key_id, "recovery-key-id": recovery.key_id})
    return name


def open_escrow(store: ObjectStore, key_id: str, recovery: RecoveryKey) -> OffsiteKey:
    try:
        blob = store.get_bytes(escrow_key(key_id))
    except ObjectMissing:
        raise EscrowError(f"no escrow of {key_id} in {store.url}{ESCROW}") from None
    return unwrap(blob, key_id, recovery)
