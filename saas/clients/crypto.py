"""Passport data at rest: AES-GCM with DATA_KEY, a keyed blind index for equality search.

The ciphertext carries its key id (stored beside it), so keys can rotate: a new DATA_KEY gets a new
DATA_KEY_ID, and the old key stays readable as DATA_KEY_<ID>. The blind index key is derived from
the data key with HKDF, so an index alone reveals nothing without the key.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from saas.core.config import get_settings, parse_data_key

NONCE = 12


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kartoteka:" + purpose).derive(key)


@functools.cache
def _keys() -> tuple[str, dict[str, bytes]]:
    settings = get_settings()
    keys = {settings.data_key_id: settings.data_key}
    for name, value in os.environ.items():
        if name.startswith("DATA_KEY_") and name != "DATA_KEY_ID":
            keys.setdefault(name.removeprefix("DATA_KEY_").lower(), parse_data_key(value))
    return settings.data_key_id, keys


def encrypt(record: dict[str, Any], aad: bytes = b"passport") -> tuple[bytes, str]:
    key_id, keys = _keys()
    nonce = os.urandom(NONCE)
    sealed = AESGCM(_derive(keys[key_id], b"enc")).encrypt(nonce, json.dumps(record).encode(), aad)
    return nonce + sealed, key_id


def decrypt(blob: bytes, key_id: str, aad: bytes = b"passport") -> dict[str, Any]:
    _current, keys = _keys()
    key = keys.get(key_id)
    if key is None:
        raise LookupError(f"data key {key_id!r} is not configured")
    plain = AESGCM(_derive(key, b"enc")).decrypt(blob[:NONCE], blob[NONCE:], aad)
    return json.loads(plain)


def passport_digits(series: str | None, number: str | None) -> str:
    return re.sub(r"\D", "", (series or "") + (number or ""))


def current_key_id() -> str:
    return _keys()[0]


def blind_index(value: str, key_id: str | None = None) -> str:
    """A keyed hash of the normalised series+number: equal inputs match, nothing else leaks."""
    current, keys = _keys()
    return hmac.new(_derive(keys[key_id or current], b"bidx"), value.encode(), hashlib.sha256).hexdigest()


def blind_indexes(value: str) -> list[str]:
    """The value's index under every configured key, the current first: a search finds passports
    that `saas passports rekey` has not reached yet after a key rotation."""
    current, keys = _keys()
    return [blind_index(value, current)] + [blind_index(value, k) for k in keys if k != current]


def mask(series: str | None, number: str | None) -> str:
    number = number or ""
    return f"•• •• ••••{number[-2:]}" if number else "•• ••"
