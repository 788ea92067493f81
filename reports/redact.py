"""Secrets out of recorded text: an exception message that carries a credential or a key (an endpoint
error quoting a signed header, a key file's content) is recorded with each secret replaced by '***'."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable

SECRET_NAME = re.compile(r"SECRET|ACCESS_KEY|KEY_ID|TOKEN|PASSWORD|(^|_)KEY$")
MIN_SECRET = 6  # shorter values ("1", "true") would blank out ordinary words
MASK = "***"


def _forms(value: str) -> set[str]:
    """The value, and the raw key's hex and base64 forms when the value is a base64-encoded key."""
    forms = {value}
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return forms
    if len(raw) >= MIN_SECRET:
        forms |= {raw.hex(), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.decode("latin-1")}
    return forms


def environment_secrets(environ: dict[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if SECRET_NAME.search(k.upper()) and len(v) >= MIN_SECRET}


def redact(text: str, extra: Iterable[str] = (), *, environ: dict[str, str] | None = None) -> str:
    """`text` with every secret of the environment (and of `extra`) in any of its forms masked."""
    secrets = set()
    for value in {*environment_secrets(environ), *extra}:
        if len(value) >= MIN_SECRET:
            secrets |= _forms(value)
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: a key inside another stays masked
        text = text.replace(secret, MASK)
    return text
