"""Passports bound to their row (issue 16, item 4): a ciphertext moved to another client or into
another company does not open; the same passport has unrelated blind indexes in two companies, and
search by passport still finds within the company; every way a passport is written (API, import,
merge, restore of an export into another company) seals it to the row it lands in."""
from __future__ import annotations

from sqlalchemy import select

from saas.accounts.service import do_create_tenant
from saas.clients import service
from saas.clients.duplicates import do_merge
from saas.clients.imports.service import do_upload, run_import
from saas.clients.models import Client
from testkit import Browser, sql, with_database
from tests.integration.test_clients_api import api, create, schema_of, token
from tests.integration.test_export import build, restored_company

PASSPORT = {"series": "4510", "number": "123456", "issued_by": "ГУ МВД", "issued_on": "2015-03-01",
            "division_code": "770-001"}
OTHER = {**PASSPORT, "number": "654321"}


def passport_columns(db_url: str, schema: str, cid: int) -> tuple:
    return sql(db_url, f'SELECT passport_enc, passport_key_id, passport_bidx FROM "{schema}".clients WHERE id = :i',
               {"i": cid})[0]


def set_columns(db_url: str, schema: str, cid: int, enc: bytes, key_id: str) -> None:
    sql(db_url, f'UPDATE "{schema}".clients SET passport_enc = :e, passport_key_id = :k WHERE id = :i',
        {"e": enc, "k": key_id, "i": cid})


def search(c, q: str) -> list[int]:
    r = c.get("/clients", params={"q": q})
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def reveal(c, cid: int):
    return c.get(f"/clients/{cid}", params={"reveal": "passport"})


def test_a_ciphertext_swapped_between_two_clients_does_not_open(base_url: str, db_url: str) -> None:
    with Browser(base_url) as b:
        slug = b.signup("Swap Passports Co")
    schema = schema_of(db_url, slug)
    with api(base_url, token(slug, "owner")) as c:
        a, other = create(c, passport=PASSPORT)["id"], create(c, passport=OTHER)["id"]
        (a_enc, a_key, _), (b_enc, b_key, _) = (passport_columns(db_url, schema, a),
                                                passport_columns(db_url, schema, other))
        assert a_key.endswith(":v2") and b_key.endswith(":v2")
        set_columns(db_url, schema, a, b_enc, b_key)
        set_columns(db_url, schema, other, a_enc, a_key)
        for cid, theirs in ((a, "654321"), (other, "123456")):
            r = reveal(c, cid)
            assert r.status_code == 500 and theirs not in r.text  # refused, never the other client's passport
        set_columns(db_url, schema, a, a_enc, a_key)  # back where they belong: both open again
        set_columns(db_url, schema, other, b_enc, b_key)
        assert reveal(c, a).json()["passport"]["number"] == "123456"
        assert reveal(c, other).json()["passport"]["number"] == "654321"


def test_the_same_passport_in_two_companies_has_unrelated_indexes_and_ciphertexts(base_url: str,
                                                                                  db_url: str) -> None:
    slugs, clients = [], []
    for name in ("Bidx One Co", "Bidx Two Co"):
        with Browser(base_url) as b:
            slugs.append(b.signup(name))
    schemas = [schema_of(db_url, s) for s in slugs]
    tokens = [token(s, "owner") for s in slugs]
    for secret in tokens:
        with api(base_url, secret) as c:
            create(c, last_name="Шум", passport=OTHER)
            clients.append(create(c, passport=PASSPORT)["id"])
    one, two = (passport_columns(db_url, s, cid) for s, cid in zip(schemas, clients, strict=True))
    assert one[2] != two[2] and len(one[2]) == len(two[2]) == 64
    for secret, cid in zip(tokens, clients, strict=True):
        with api(base_url, secret) as c:
            assert search(c, "4510 123456") == [cid]  # found in its own company, and only there
            assert search(c, "4510123456") == [cid]
    # The first company's ciphertext copied onto the second's client of the same id: it does not open.
    assert clients[0] == clients[1]
    set_columns(db_url, schemas[1], clients[1], one[0], one[1])
    with api(base_url, tokens[1]) as c:
        assert reveal(c, clients[1]).status_code == 500


def test_imports_and_merges_seal_each_passport_to_the_row_it_lands_in(db_url: str) -> None:
    clients = ("Фамилия;Телефон;Серия паспорта;Номер паспорта;Кем выдан\r\n"
               "Первый;+79160000101;4510;111111;ОВД\r\n"
               "Второй;+79160000102;4510;222222;ОВД\r\n").encode()
    again = "Фамилия;Эл. почта;Серия паспорта;Номер паспорта\r\nПервый;first@example.com;4510;111111\r\n".encode()
    operations = "Паспорт клиента;Дата;Сумма\r\n4510 222222;01.03.2024;500\r\n".encode()

    async def go(db) -> None:
        async with db.session() as s:
            schema = (await do_create_tenant(s, "Import Passports Co")).schema_name
        async with db.session(schema) as s:
            for data, kind, expected in ((clients, "clients", {"created": 2, "updated": 0}),
                                         (again, "clients", {"created": 0, "updated": 1}),
                                         (operations, "operations", {"created": 1, "rejected": 0})):
                imp = await do_upload(s, data=data, filename=f"{kind}.csv", kind=kind, actor="test")
                counts = await run_import(s, imp)
                assert {k: counts[k] for k in expected} == expected, (kind, counts, imp.rejected)
        async with db.session(schema) as s:
            rows = {c.last_name: c for c in await s.scalars(select(Client).order_by(Client.id))}
            assert set(rows) == {"Первый", "Второй"}
            assert rows["Первый"].email == "first@example.com"  # the second file matched it by passport
            assert rows["Второй"].operations_count == 1  # the operation found its client by passport
            for name, number in (("Первый", "111111"), ("Второй", "222222")):
                assert rows[name].passport_key_id.endswith(":v2")
                assert service.reveal_passport(rows[name])["number"] == number
            # A merge moves the passport to the kept client, sealed anew to it.
            keep = Client(id=(await service.draw_client_ids(s, 1))[0], last_name="Третий")
            s.add(keep)
            await s.flush()
            await do_merge(s, keep, rows["Второй"], "test")
        async with db.session(schema) as s:
            kept = await s.get(Client, keep.id)
            assert service.reveal_passport(kept)["number"] == "222222"
            assert kept.passport_bidx == rows["Второй"].passport_bidx  # the same company index

    with_database(db_url, go)


def test_an_export_restored_into_another_company_is_sealed_to_it(base_url: str, db_url: str, worker,
                                                                 make_http) -> None:
    owner = make_http()
    slug = owner.signup("Passport Export Co")
    schema = schema_of(db_url, slug)
    with api(base_url, token(slug, "owner")) as c:
        source_id = create(c, last_name="Экспортов", passport=PASSPORT)["id"]
    _job, link = build(owner, db_url, slug, schema, passport="full")
    zip_bytes = owner.get(link).content

    _target, dest, dest_schema, _job = restored_company(make_http, db_url, zip_bytes, "Passport Restore Co")

    (dest_id,), = sql(db_url, f'SELECT id FROM "{dest_schema}".clients WHERE last_name = \'Экспортов\'')
    source, restored = passport_columns(db_url, schema, source_id), passport_columns(db_url, dest_schema, dest_id)
    assert restored[1].endswith(":v2") and bytes(restored[0]) != bytes(source[0]) and restored[2] != source[2]
    with api(base_url, token(dest, "owner")) as c:
        shown = reveal(c, dest_id).json()["passport"]
        assert shown["masked"] is False and {k: shown[k] for k in PASSPORT} == PASSPORT
        assert search(c, "4510 123456") == [dest_id]
