"""`saas passports rekey`: after a DATA_KEY rotation, and from the first, unbound scheme (constant
AAD, one blind-index key for every company), every passport of a company ends sealed under the
current key, bound to its company and client, its blind index the company's own. Resumable: a run
cut short (`--limit`) or failing half-way goes on from there; search and reveal work throughout.
Checked against an independent decryption, not through the app."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text

from saas.core.config import get_settings
from testkit import Browser, cli, sql, with_database
from tests.integration.test_clients_api import api, create, schema_of, token

PASSPORT = {"series": "4510", "number": "123456", "issued_by": "ГУ МВД", "issued_on": "2015-03-01",
            "division_code": "770-001"}


def derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kartoteka:" + purpose).derive(key)


def open_bound(key: bytes, blob: bytes, schema: str, client_id: int) -> dict:
    aad = f"kartoteka:passport:{schema}:{client_id}".encode()
    return json.loads(AESGCM(derive(key, b"enc")).decrypt(bytes(blob[:12]), bytes(blob[12:]), aad))


def company_bidx(key: bytes, schema: str, digits: str) -> str:
    return hmac.new(derive(key, b"bidx:" + schema.encode()), digits.encode(), hashlib.sha256).hexdigest()


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
    assert key_id == "rotated:v2"
    assert open_bound(new_key, blob, schema, cid) == PASSPORT
    assert bidx == company_bidx(new_key, schema, "4510123456")
    events = sql(db_url, f'SELECT details FROM "{schema}".audit_events WHERE action = \'passports.rekeyed\'')
    assert [e[0]["count"] for e in events] == [1]

    again = cli("passports", "rekey", "--tenant", slug, env=env)
    assert again.stdout.strip() == f"{slug}: 0 passports re-encrypted"
    (neighbour_key,), = sql(db_url, f'SELECT passport_key_id FROM "{other_schema}".clients WHERE id = :i',
                            {"i": other_cid})
    assert neighbour_key == settings.data_key_id + ":v2"
    assert cli("passports", "rekey", "--tenant", "no-such-company", env=env).returncode != 0


# ---- from the unbound scheme -------------------------------------------------------------------

LEGACY_ROWS = 600  # more than one batch (500): a failure in the second leaves the first done


def legacy_seal(key: bytes, record: dict) -> bytes:
    """The first scheme, as it was written: AES-GCM with the constant AAD b"passport"."""
    nonce = os.urandom(12)
    return nonce + AESGCM(derive(key, b"enc")).encrypt(nonce, json.dumps(record).encode(), b"passport")


def number(i: int) -> str:
    return f"{700000 + i:06d}"


def write_legacy_rows(db_url: str, schema: str) -> list[int]:
    """LEGACY_ROWS clients with passports sealed and indexed the old way; returns their ids."""
    settings = get_settings()
    key = settings.data_key
    legacy_index = derive(key, b"bidx")
    rows = [{"l": f"Старый{i}", "e": legacy_seal(key, {**PASSPORT, "number": number(i)}), "k": settings.data_key_id,
             "b": hmac.new(legacy_index, f"4510{number(i)}".encode(), hashlib.sha256).hexdigest(),
             "m": f"•• •• ••••{number(i)[-2:]}"} for i in range(LEGACY_ROWS)]

    async def go(db) -> list[int]:
        async with db.session(schema) as s:
            await s.execute(text("INSERT INTO clients (last_name, first_name, passport_enc, passport_key_id, "
                                 "passport_bidx, passport_mask) VALUES (:l, 'Клиент', :e, :k, :b, :m)"), rows)
            return list(await s.scalars(text("SELECT id FROM clients WHERE last_name LIKE 'Старый%' ORDER BY id")))

    return with_database(db_url, go)


def bound_count(db_url: str, schema: str) -> int:
    return sql(db_url, f'SELECT count(*) FROM "{schema}".clients WHERE passport_key_id LIKE :p', {"p": "%:v2"})[0][0]


def finds(c, i: int) -> list[str]:
    r = c.get("/clients", params={"q": f"4510 {number(i)}"})
    assert r.status_code == 200, r.text
    return [item["last_name"] for item in r.json()["items"]]


def reveals(c, cid: int) -> str:
    r = c.get(f"/clients/{cid}", params={"reveal": "passport"})
    assert r.status_code == 200, r.text
    return r.json()["passport"]["number"]


def test_rekey_from_the_unbound_scheme_is_resumable_and_complete(base_url: str, db_url: str) -> None:
    with Browser(base_url) as b:
        slug = b.signup("Legacy Passports Co")
    schema = schema_of(db_url, slug)
    ids = write_legacy_rows(db_url, schema)
    assert len(ids) == LEGACY_ROWS and bound_count(db_url, schema) == 0
    key = get_settings().data_key
    with api(base_url, token(slug, "owner")) as c:
        # Before any rekey: the old rows are found by passport and open.
        assert finds(c, 5) == ["Старый5"] and reveals(c, ids[5]) == number(5)

        # A run cut short: the first rows are moved, the rest wait; both kinds are found and open.
        r = cli("passports", "rekey", "--tenant", slug, "--limit", "3")
        assert r.returncode == 0 and r.stdout.strip() == f"{slug}: 3 passports re-encrypted", r.stderr
        assert bound_count(db_url, schema) == 3
        for i in (1, 400):
            assert finds(c, i) == [f"Старый{i}"] and reveals(c, ids[i]) == number(i)

        # A run failing half-way (a damaged row in its second batch): the first batch stays done.
        (good,), = sql(db_url, f'SELECT passport_enc FROM "{schema}".clients WHERE id = :i', {"i": ids[550]})
        sql(db_url, f'UPDATE "{schema}".clients SET passport_enc = :e WHERE id = :i',
            {"e": b"\0" * 40, "i": ids[550]})
        failed = cli("passports", "rekey", "--tenant", slug)
        assert failed.returncode != 0 and "4510" not in failed.stderr
        assert bound_count(db_url, schema) == 503
        assert finds(c, 10) == ["Старый10"] and finds(c, 590) == ["Старый590"]

        # Repaired, the next run goes on from there and finishes; a further run has nothing to do.
        sql(db_url, f'UPDATE "{schema}".clients SET passport_enc = :e WHERE id = :i', {"e": good, "i": ids[550]})
        r = cli("passports", "rekey", "--tenant", slug)
        assert r.stdout.strip() == f"{slug}: 97 passports re-encrypted", r.stderr
        assert cli("passports", "rekey", "--tenant", slug).stdout.strip() == f"{slug}: 0 passports re-encrypted"

        # Every passport opens only bound to its own row, with the company's index; search and reveal work.
        rows = sql(db_url, f'SELECT id, passport_enc, passport_key_id, passport_bidx FROM "{schema}".clients '
                           "WHERE last_name LIKE 'Старый%' ORDER BY id")
        assert len(rows) == LEGACY_ROWS
        for i, (cid, blob, key_id, bidx) in enumerate(rows):
            assert cid == ids[i] and key_id == get_settings().data_key_id + ":v2"
            assert open_bound(key, blob, schema, cid) == {**PASSPORT, "number": number(i)}
            assert bidx == company_bidx(key, schema, f"4510{number(i)}")
        for i in (0, 5, 550, 599):
            assert finds(c, i) == [f"Старый{i}"] and reveals(c, ids[i]) == number(i)
    events = sql(db_url, f'SELECT details FROM "{schema}".audit_events WHERE action = \'passports.rekeyed\' '
                         "ORDER BY id")
    assert [e[0]["count"] for e in events] == [3, 500, 97]  # the failed run's committed batch too
