"""Where a recovery gets the layer-4 data key: the key service (a KMS stand-in, fixtures.key_service), and
when that cannot answer, the escrow (layers.key_escrow) if a recovery key is configured (drill_recovery_key).
Nothing else holds the key: with neither, the recovery stops with one message naming the problem and the fix."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import requests

from layers.backup import NoUsableBackup
from layers.key_escrow import EscrowError, RecoveryKey, open_escrow
from layers.offsite import OffsiteKey
from layers.store import STORE_ERRORS, ObjectStore

ESCROW_ERRORS: tuple[type[Exception], ...] = (EscrowError, *STORE_ERRORS)


class KeyUnavailable(NoUsableBackup):
    """The data key cannot be had, so no offsite copy can be opened."""


@dataclass(frozen=True)
class KeyServiceClient:
    url: str
    token: str = field(repr=False)
    ca: str = ""

    def fetch(self, key_id: str, timeout: float = 5.0) -> OffsiteKey:
        """The key from the service; raises KeyUnavailable saying why (never with the token or the key)."""
        try:
            answer = requests.get(f"{self.url}/v1/keys/{key_id}", headers={"Authorization": f"Bearer {self.token}"},
                                  timeout=timeout, verify=self.ca or True)  # fmt: skip
        except requests.RequestException as exc:
            raise KeyUnavailable(f"key service {self.url} did not answer ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise KeyUnavailable(f"key service {self.url} answered HTTP {answer.status_code} for {key_id}")
        return OffsiteKey(key_id, base64.b64decode(answer.json()["key"]), f"key service {self.url}")


@dataclass(frozen=True)
class ObtainedKey:
    key: OffsiteKey
    via: str  # "key service" or "escrow"
    problems: tuple[str, ...]  # what failed on the way


def obtain_key(
    key_id: str, service: KeyServiceClient, escrow: ObjectStore, recovery: RecoveryKey | None
) -> ObtainedKey:
    """The key service first, then the escrow beside the offsite copies. Raises KeyUnavailable."""
    try:
        return ObtainedKey(service.fetch(key_id), "key service", ())
    except KeyUnavailable as exc:
        down = str(exc)
    if recovery is None:
        raise KeyUnavailable(
            f"the layer-4 key {key_id} cannot be had: {down}, and no escrow is configured. Fix: bring the key "
            "service back, or set drill_recovery_key (--drill-recovery-key) to the file of the recovery key "
            f"that wraps the escrowed copy in {escrow.url}"
        )
    try:
        return ObtainedKey(open_escrow(escrow, key_id, recovery), "escrow", (down,))
    except ESCROW_ERRORS as exc:
        raise KeyUnavailable(
            f"the layer-4 key {key_id} cannot be had: {down}, and the escrow failed: {exc}. Fix: bring the key "
            f"service back, or configure the recovery key that wrapped the escrow (drill_recovery_key)"
        ) from None
