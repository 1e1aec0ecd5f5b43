"""Rotating DATA_KEY: `saas passports rekey` re-encrypts one company's passports under the new key
and recomputes their blind index; a second run finds nothing to do; other companies are untouched.
Checked against an independent decryption with the new key, not through the app."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from saas.core.config import get_settings
from testkit import Browser, cli, sql
from tests.integration.test_clients_api import api, create, schema_of, token

PASSPORT = {"series": "4510", "number": "123456", "issued_by": "ГУ МВД", "issued_on": "2015-03-01",
            "division_code": "770-001"}


def derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kartoteka:" + purpose).derive(key)


def company_with_passport(base_url: str, name: str) -> tuple[str, int]:
    with Browser(base_url) as b:
        slug = b.signup(name)
    with api(base_url, token(slug, "owner")) as c:
        return slug, create(c, passport=PASSPORT)["id"]


def test_rekey_moves_one_company_to_the_new_key(base_url: str, db_url: str) -> None:
    slug, cid = company_with_passport(base_url, "Rekey Co")
    other, other_cid = company_with_passport(base_url, "Rekey Neighbour Co")
    schema, other_schema = schema_of(db_url, slug), schema_of(db_url, other)
    settings = get_settings()
    old = base64.urlsafe_b64encode(settings.data_key).decode()
    new_key = secrets.token_bytes(32)
    env = {"DATA_KEY": base64.urlsafe_b64encode(new_key).decode(), "DATA_KEY_ID": "rotated",
           f"DATA_KEY_{settings.data_key_id.upper()}": old}

    r = cli("passports", "rekey", "--tenant", slug, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{slug}: 1 passports re-encrypted"
    (blob, key_id, bidx), = sql(db_url, f'SELECT passport_enc, passport_key_id, passport_bidx FROM "{schema}".clients '
                                        "WHERE id = :i", {"i": cid})
    assert key_id == "rotated"
    record = json.loads(AESGCM(derive(new_key, b"enc")).decrypt(bytes(blob[:12]), bytes(blob[12:]), b"passport"))
    assert record == PASSPORT
    assert bidx == hmac.new(derive(new_key, b"bidx"), b"4510123456", hashlib.sha256).hexdigest()
    events = sql(db_url, f'SELECT details FROM "{schema}".audit_events WHERE action = \'passports.rekeyed\'')
    assert [e[0]["count"] for e in events] == [1]

    again = cli("passports", "rekey", "--tenant", slug, env=env)
    assert again.stdout.strip() == f"{slug}: 0 passports re-encrypted"
    (neighbour_key,), = sql(db_url, f'SELECT passport_key_id FROM "{other_schema}".clients WHERE id = :i',
                            {"i": other_cid})
    assert neighbour_key == settings.data_key_id
    assert cli("passports", "rekey", "--tenant", "no-such-company", env=env).returncode != 0
