"""Passport keys: a ciphertext is bound to its company and client, the blind index is the company's
own, and during a key rotation or the move from the unbound scheme a passport search asks for the
index under every configured key and both schemes."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from saas.clients import crypto
from saas.core.config import get_settings

RECORD = {"series": "4510", "number": "123456", "issued_by": "ГУ МВД", "issued_on": "2015-03-01"}


@pytest.fixture()
def two_keys(monkeypatch: pytest.MonkeyPatch):
    new, old = secrets.token_bytes(32), secrets.token_bytes(32)
    monkeypatch.setenv("DATA_KEY", base64.urlsafe_b64encode(new).decode())
    monkeypatch.setenv("DATA_KEY_ID", "k2")
    monkeypatch.setenv("DATA_KEY_K1", base64.urlsafe_b64encode(old).decode())
    get_settings.cache_clear()
    crypto._keys.cache_clear()
    yield {"k2": new, "k1": old}
    monkeypatch.undo()
    get_settings.cache_clear()
    crypto._keys.cache_clear()


def legacy_seal(key: bytes, record: dict) -> bytes:
    """The first scheme, written independently of the app: constant AAD."""
    nonce = os.urandom(12)
    return nonce + AESGCM(crypto._derive(key, b"enc")).encrypt(nonce, json.dumps(record).encode(), b"passport")


def test_blind_indexes_cover_every_key_and_scheme_current_first(two_keys) -> None:
    indexes = crypto.blind_indexes("4510123456", company="t_7")
    legacy = [hmac.new(crypto._derive(two_keys[k], b"bidx"), b"4510123456", hashlib.sha256).hexdigest()
              for k in ("k2", "k1")]
    assert indexes == [crypto.blind_index("4510123456", company="t_7", key_id="k2"),
                       crypto.blind_index("4510123456", company="t_7", key_id="k1"), *legacy]
    assert indexes[0] == crypto.blind_index("4510123456", company="t_7") and len(set(indexes)) == 4


def test_both_keys_are_configured_and_new_seals_use_the_current_bound(two_keys) -> None:
    current, keys = crypto._keys()
    assert current == "k2" and set(keys) == {"k1", "k2"}
    sealed, key_id = crypto.encrypt({"series": "4510"}, company="t_7", client_id=3)
    assert key_id == "k2:v2" == crypto.sealed_key_id()
    assert crypto.decrypt(sealed, key_id, company="t_7", client_id=3) == {"series": "4510"}


def test_a_ciphertext_opens_only_on_its_own_row(two_keys) -> None:
    a, a_key = crypto.encrypt(RECORD, company="t_7", client_id=1)
    b, b_key = crypto.encrypt({**RECORD, "number": "654321"}, company="t_7", client_id=2)
    assert crypto.decrypt(a, a_key, company="t_7", client_id=1) == RECORD
    # Swapped between two rows of the company, or moved to the same id in another company: refused.
    for blob, key_id, company, client_id in ((a, a_key, "t_7", 2), (b, b_key, "t_7", 1), (a, a_key, "t_8", 1)):
        with pytest.raises(InvalidTag):
            crypto.decrypt(blob, key_id, company=company, client_id=client_id)
    # Relabelled as the unbound scheme (the stored key id without ":v2"): refused as well.
    with pytest.raises(InvalidTag):
        crypto.decrypt(a, a_key.removesuffix(crypto.BOUND), company="t_7", client_id=1)
    # The seal needs the id: a row without one yet cannot be sealed by mistake.
    with pytest.raises(ValueError, match="id"):
        crypto.encrypt(RECORD, company="t_7", client_id=None)  # type: ignore[arg-type]


def test_the_same_passport_has_unrelated_indexes_in_two_companies(two_keys) -> None:
    one, other = crypto.blind_index("4510123456", company="t_7"), crypto.blind_index("4510123456", company="t_8")
    assert one != other and len(one) == len(other) == 64
    assert crypto.blind_index("4510123456", company="t_7") == one  # equal inputs still match in a company
    assert one not in crypto.blind_indexes("4510123456", company="t_8")
    with pytest.raises(ValueError):
        crypto.blind_index("4510123456", company="public")  # only a company schema names a company


def test_rows_of_the_unbound_scheme_still_open_under_either_key(two_keys) -> None:
    for key_id in ("k1", "k2"):
        blob = legacy_seal(two_keys[key_id], RECORD)
        assert crypto.decrypt(blob, key_id, company="t_7", client_id=99) == RECORD
        assert not crypto.is_bound(key_id)


def test_a_session_names_its_company() -> None:
    class Session:
        def __init__(self, info: dict) -> None:
            self.info = info

    assert crypto.company_of(Session({"schema": "t_12"})) == "t_12"
    with pytest.raises(LookupError):
        crypto.company_of(Session({}))
