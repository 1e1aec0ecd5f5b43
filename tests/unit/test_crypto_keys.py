"""During a key rotation a passport search asks for the blind index under every configured key."""
from __future__ import annotations

import base64
import secrets

import pytest

from saas.clients import crypto
from saas.core.config import get_settings


@pytest.fixture()
def two_keys(monkeypatch: pytest.MonkeyPatch):
    new, old = secrets.token_bytes(32), secrets.token_bytes(32)
    monkeypatch.setenv("DATA_KEY", base64.urlsafe_b64encode(new).decode())
    monkeypatch.setenv("DATA_KEY_ID", "k2")
    monkeypatch.setenv("DATA_KEY_K1", base64.urlsafe_b64encode(old).decode())
    get_settings.cache_clear()
    crypto._keys.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    crypto._keys.cache_clear()


def test_blind_indexes_cover_every_key_current_first(two_keys) -> None:
    indexes = crypto.blind_indexes("4510123456")
    assert indexes == [crypto.blind_index("4510123456", "k2"), crypto.blind_index("4510123456", "k1")]
    assert indexes[0] == crypto.blind_index("4510123456") and len(set(indexes)) == 2


def test_both_keys_are_configured_and_new_seals_use_the_current(two_keys) -> None:
    current, keys = crypto._keys()
    assert current == "k2" and set(keys) == {"k1", "k2"}
    sealed, key_id = crypto.encrypt({"series": "4510"})
    assert key_id == "k2" and crypto.decrypt(sealed, key_id) == {"series": "4510"}
