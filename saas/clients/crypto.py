"""Passport data at rest: AES-GCM with DATA_KEY, a keyed blind index for equality search.

Each ciphertext is bound to its row: the AAD names the company (its schema, t_<tenant id>, which
never changes) and the client id, so a ciphertext copied onto another client, or into another
company, does not decrypt. The blind-index key is derived per company (HKDF with the company in
`info`), so the same passport has unrelated indexes in two companies and an index alone reveals
nothing without the key.

The ciphertext carries its key id (stored beside it in `passport_key_id`), so keys can rotate: a
new DATA_KEY gets a new DATA_KEY_ID, and the old key stays readable as DATA_KEY_<ID>. The stored id
also says how the row is sealed: "<key id>:v2" is bound as above; a bare "<key id>" is the first,
unbound scheme (constant AAD, one index key for every company), still read until
`saas passports rekey` (rekey.py) has moved the company's rows.
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

from saas.core.config import ConfigError, get_settings, parse_data_key
from saas.core.db import check_schema

NONCE = 12
BOUND = ":v2"  # the stored key id's suffix for a row sealed to its company and client
LEGACY_AAD = b"passport"  # the unbound scheme's constant AAD, read until the rekey


@functools.lru_cache(maxsize=1024)
def _derive(key: bytes, purpose: bytes) -> bytes:
    # Cached: one HKDF per (key, purpose) rather than per passport (imports seal thousands).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kartoteka:" + purpose).derive(key)


@functools.cache
def _keys() -> tuple[str, dict[str, bytes]]:
    settings = get_settings()
    if ":" in settings.data_key_id:
        raise ConfigError("DATA_KEY_ID must not contain ':'")
    keys = {settings.data_key_id: settings.data_key}
    for name, value in os.environ.items():
        if name.startswith("DATA_KEY_") and name != "DATA_KEY_ID":
            keys.setdefault(name.removeprefix("DATA_KEY_").lower(), parse_data_key(value))
    return settings.data_key_id, keys


def _key(key_id: str) -> bytes:
    key = _keys()[1].get(key_id)
    if key is None:
        raise LookupError(f"data key {key_id!r} is not configured")
    return key


def company_of(session: Any) -> str:
    """The company a session is bound to (its schema): the binding of every passport it reads or
    writes. A session bound to no company has no passports to touch."""
    schema = session.info.get("schema")
    if not schema:
        raise LookupError("passports are sealed in a company's session only")
    return check_schema(schema)


def _aad(company: str, client_id: int) -> bytes:
    if not isinstance(client_id, int) or isinstance(client_id, bool):
        raise ValueError("a passport is sealed to its client's id: draw the id before sealing")
    return f"kartoteka:passport:{check_schema(company)}:{client_id}".encode()


def current_key_id() -> str:
    return _keys()[0]


def sealed_key_id() -> str:
    """The stored key id of a row sealed now (current key, bound): what the rekey moves rows to."""
    return current_key_id() + BOUND


def is_bound(stored_key_id: str) -> bool:
    return stored_key_id.endswith(BOUND)


def encrypt(record: dict[str, Any], *, company: str, client_id: int) -> tuple[bytes, str]:
    """Seal `record` to the company and client; returns (ciphertext, stored key id)."""
    aad = _aad(company, client_id)
    key_id = current_key_id()
    nonce = os.urandom(NONCE)
    sealed = AESGCM(_derive(_key(key_id), b"enc")).encrypt(nonce, json.dumps(record).encode(), aad)
    return nonce + sealed, key_id + BOUND


def decrypt(blob: bytes, stored_key_id: str, *, company: str, client_id: int) -> dict[str, Any]:
    """Open a row's passport. A ciphertext of another row or company fails (InvalidTag); a row not
    yet rekeyed is read under the unbound scheme."""
    if is_bound(stored_key_id):
        key_id, aad = stored_key_id.removesuffix(BOUND), _aad(company, client_id)
    else:
        key_id, aad = stored_key_id, LEGACY_AAD
    plain = AESGCM(_derive(_key(key_id), b"enc")).decrypt(blob[:NONCE], blob[NONCE:], aad)
    return json.loads(plain)


def passport_digits(series: str | None, number: str | None) -> str:
    return re.sub(r"\D", "", (series or "") + (number or ""))


def blind_index(value: str, *, company: str, key_id: str | None = None) -> str:
    """A keyed hash of the normalised series+number under the company's own index key: equal inputs
    match within the company, nothing else leaks."""
    purpose = b"bidx:" + check_schema(company).encode()
    return hmac.new(_derive(_key(key_id or current_key_id()), purpose), value.encode(), hashlib.sha256).hexdigest()


def _legacy_blind_index(value: str, key_id: str) -> str:
    """The unbound scheme's index (one key for every company): found until the rekey."""
    return hmac.new(_derive(_key(key_id), b"bidx"), value.encode(), hashlib.sha256).hexdigest()


def blind_indexes(value: str, *, company: str) -> list[str]:
    """Every index the value may be stored under in the company, the current first: under each
    configured key (a rotation `saas passports rekey` has not finished), bound and unbound (rows
    the rekey has not reached yet)."""
    current, keys = _keys()
    order = [current, *(k for k in keys if k != current)]
    return ([blind_index(value, company=company, key_id=k) for k in order]
            + [_legacy_blind_index(value, k) for k in order])


def mask(series: str | None, number: str | None) -> str:
    number = number or ""
    return f"•• •• ••••{number[-2:]}" if number else "•• ••"
