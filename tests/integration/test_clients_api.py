"""The clients API: cards, passport masking and reveal, validation, operations and their metrics,
list search/filters/sorts/keyset pages, roles, tenant isolation, and personal data at rest."""
from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from saas.core import clock
from testkit import Browser, audit_count, cli, sql

TODAY = clock.today()


# ---- helpers -------------------------------------------------------------------------------


def token(slug: str, role: str) -> str:
    r = cli("tokens", "create", "--tenant", slug, "--role", role, "--name", f"{role}-{secrets.token_hex(3)}")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def api(base_url: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def schema_of(db_url: str, slug: str) -> str:
    rows = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})
    assert rows, slug
    return rows[0][0]


def fields_of(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 422, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == 422 and body["error"]
    assert isinstance(body.get("fields"), dict) and body["fields"], body
    return body["fields"]


def tag() -> str:
    return f"t{secrets.token_hex(4)}"


FULL = {
    "last_name": "Иванов", "first_name": "Пётр", "middle_name": "Сергеевич", "birth_date": "1985-03-15",
    "phone": "8 916 123-45-67", "email": "Petr.Ivanov@Example.COM", "address": "Москва, ул. Ленина, 1",
    "passport": {"series": "4510", "number": "123456", "issued_by": "ОВД Тверского района г. Москвы",
                 "issued_on": "2015-06-01", "division_code": "770-001"},
    "consent": {"email": True}, "tags": ["vip", "опт"], "note": "Постоянный клиент",
}


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant(base_url: str) -> str:
    with Browser(base_url) as b:
        return b.signup("Clients Api Co")


@pytest.fixture(scope="module")
def schema(tenant: str, db_url: str) -> str:
    return schema_of(db_url, tenant)


def _api_as(role: str):
    """A module fixture named after `role`: an API client of the tenant with a token of that role."""
    @pytest.fixture(scope="module", name=role)
    def role_api(base_url: str, tenant: str):
        with api(base_url, token(tenant, role)) as c:
            yield c

    return role_api


owner, admin, marketer, viewer = (_api_as(role) for role in ("owner", "admin", "marketer", "viewer"))


def create(c: httpx.Client, **fields: Any) -> dict:
    body = {"last_name": "Тестов", **fields}
    r = c.post("/clients", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def add_op(c: httpx.Client, client_id: int, **fields: Any) -> dict:
    body = {"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "100.00", **fields}
    r = c.post(f"/clients/{client_id}/operations", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def list_ids(c: httpx.Client, **params: Any) -> list[int]:
    r = c.get("/clients", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


# ---- create, read, reveal, patch -----------------------------------------------------------


def test_create_with_every_field_normalises_and_masks(owner: httpx.Client) -> None:
    r = owner.post("/clients", json=FULL)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["last_name"], c["first_name"], c["middle_name"]) == ("Иванов", "Пётр", "Сергеевич")
    assert c["birth_date"] == "1985-03-15"
    assert c["phone"] == "+79161234567"
    assert c["email"] == "petr.ivanov@example.com"
    assert c["address"] == "Москва, ул. Ленина, 1"
    assert c["consent"] == {"email": True, "sms": False, "calls": False}
    assert c["tags"] == ["vip", "опт"]
    assert c["note"] == "Постоянный клиент"
    assert c["archived"] is False
    assert c["passport"]["masked"] is True
    assert c["passport"]["number"] is None and c["passport"]["series"] is None
    assert "123456" not in str(c["passport"]) and "4510" not in str(c["passport"])
    assert c["metrics"]["operations_count"] == 0
    assert Decimal(c["metrics"]["revenue_total"]) == 0

    got = owner.get(f"/clients/{c['id']}")
    assert got.status_code == 200
    g = got.json()
    assert g["phone"] == "+79161234567" and g["email"] == "petr.ivanov@example.com"
    assert g["passport"]["masked"] is True and g["passport"]["number"] is None
    assert g["passport"]["display"] and g["passport"]["display"].endswith("56")
    assert "123456" not in str(g["passport"]) and "4510" not in str(g["passport"])


def test_reveal_passport_for_owner_and_admin_is_audited(owner: httpx.Client, admin: httpx.Client,
                                                          db_url: str, schema: str) -> None:
    cid = owner.post("/clients", json=FULL).json()["id"]
    before = audit_count(db_url, schema, "passport.revealed", cid)
    for who in (owner, admin):
        r = who.get(f"/clients/{cid}", params={"reveal": "passport"})
        assert r.status_code == 200, r.text
        p = r.json()["passport"]
        assert p["masked"] is False
        assert (p["series"], p["number"]) == ("4510", "123456")
        assert p["issued_by"] == "ОВД Тверского района г. Москвы"
        assert p["issued_on"] == "2015-06-01"
        assert p["division_code"] == "770-001"
    assert audit_count(db_url, schema, "passport.revealed", cid) == before + 2
    actors = sql(db_url, f'SELECT actor, details::text FROM "{schema}".audit_events '
                         "WHERE action = 'passport.revealed' AND object_id = :o", {"o": cid})
    assert all(a.startswith("token:") for a, _d in actors)
    assert all("123456" not in d for _a, d in actors)


@pytest.mark.parametrize("role", ["viewer", "marketer"])
def test_reveal_passport_is_forbidden_below_admin(role: str, owner: httpx.Client, viewer: httpx.Client,
                                                  marketer: httpx.Client, db_url: str, schema: str) -> None:
    who = {"viewer": viewer, "marketer": marketer}[role]
    cid = owner.post("/clients", json=FULL).json()["id"]
    before = audit_count(db_url, schema, "passport.revealed", cid)
    r = who.get(f"/clients/{cid}", params={"reveal": "passport"})
    assert r.status_code == 403
    assert "123456" not in r.text
    assert audit_count(db_url, schema, "passport.revealed", cid) == before
    # Without reveal the weaker role may read the (masked) card.
    plain = who.get(f"/clients/{cid}")
    assert plain.status_code == 200 and plain.json()["passport"]["masked"] is True


def test_patch_changes_only_the_fields_sent(owner: httpx.Client) -> None:
    cid = owner.post("/clients", json=FULL).json()["id"]
    r = owner.patch(f"/clients/{cid}", json={"note": "x"})
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["note"] == "x"
    assert c["phone"] == "+79161234567" and c["email"] == "petr.ivanov@example.com"
    assert (c["last_name"], c["first_name"], c["middle_name"]) == ("Иванов", "Пётр", "Сергеевич")
    assert c["birth_date"] == "1985-03-15" and c["address"] == "Москва, ул. Ленина, 1"
    assert c["tags"] == ["vip", "опт"] and c["consent"]["email"] is True
    revealed = owner.get(f"/clients/{cid}", params={"reveal": "passport"}).json()["passport"]
    assert (revealed["series"], revealed["number"], revealed["division_code"]) == ("4510", "123456", "770-001")

    r = owner.patch(f"/clients/{cid}", json={"phone": "+7 903 000-11-22", "email": "NEW@Example.com"})
    assert r.status_code == 200
    c = r.json()
    assert c["phone"] == "+79030001122" and c["email"] == "new@example.com" and c["note"] == "x"


def test_patch_of_one_passport_part_keeps_the_others(owner: httpx.Client) -> None:
    """PATCH changes only what it sends, also inside the passport object."""
    cid = owner.post("/clients", json=FULL).json()["id"]
    r = owner.patch(f"/clients/{cid}", json={"passport": {"number": "654321"}})
    assert r.status_code == 200, r.text
    revealed = owner.get(f"/clients/{cid}", params={"reveal": "passport"}).json()["passport"]
    assert (revealed["series"], revealed["number"]) == ("4510", "654321")
    assert revealed["issued_by"] == "ОВД Тверского района г. Москвы"
    assert revealed["issued_on"] == "2015-06-01" and revealed["division_code"] == "770-001"


def test_patch_passport_null_removes_it(owner: httpx.Client) -> None:
    cid = owner.post("/clients", json=FULL).json()["id"]
    r = owner.patch(f"/clients/{cid}", json={"passport": None})
    assert r.status_code == 200, r.text
    assert r.json()["passport"] is None
    assert r.json()["phone"] == "+79161234567"


def test_patch_consent_and_tags(owner: httpx.Client) -> None:
    cid = create(owner, consent={"email": True, "sms": True}, tags=["a", "b"])["id"]
    r = owner.patch(f"/clients/{cid}", json={"consent": {"email": False}})
    assert r.status_code == 200
    assert r.json()["consent"] == {"email": False, "sms": True, "calls": False}
    assert r.json()["tags"] == ["a", "b"]
    r = owner.patch(f"/clients/{cid}", json={"tags": ["c"]})
    assert r.json()["tags"] == ["c"] and r.json()["consent"]["sms"] is True
    assert owner.patch(f"/clients/{cid}", json={"tags": []}).json()["tags"] == []


def test_patch_with_a_bad_value_changes_nothing(owner: httpx.Client) -> None:
    cid = owner.post("/clients", json=FULL).json()["id"]
    r = owner.patch(f"/clients/{cid}", json={"note": "changed", "phone": "123"})
    assert "phone" in fields_of(r)
    c = owner.get(f"/clients/{cid}").json()
    assert c["note"] == "Постоянный клиент" and c["phone"] == "+79161234567"


def test_patch_birth_date_after_the_passport_issue_date_is_refused(owner: httpx.Client) -> None:
    """The issue-date-after-birth rule must hold however the card is changed, not only on create."""
    cid = owner.post("/clients", json=FULL).json()["id"]  # passport issued 2015-06-01
    r = owner.patch(f"/clients/{cid}", json={"birth_date": "2016-01-01"})
    assert r.status_code == 422, r.text
    assert owner.get(f"/clients/{cid}").json()["birth_date"] == "1985-03-15"


# ---- validation ----------------------------------------------------------------------------

FUTURE = (TODAY + timedelta(days=30)).isoformat()
PP = {"series": "4510", "number": "123456"}
BAD_CLIENTS = {
    "bad phone": ({"phone": "12345"}, {"phone"}),
    "bad email": ({"email": "not-an-email"}, {"email"}),
    "short series": ({"passport": {**PP, "series": "45"}}, {"passport_series", "passport.series"}),
    "bad division code": ({"passport": {**PP, "division_code": "7700"}},
                          {"passport_division_code", "passport.division_code"}),
    "issue date in the future": ({"passport": {**PP, "issued_on": FUTURE}},
                                 {"passport_issued_on", "passport.issued_on"}),
    "issued before birth": ({"birth_date": "1990-01-01", "passport": {**PP, "issued_on": "1985-01-01"}},
                            {"passport_issued_on", "passport.issued_on"}),
    "birth date in the future": ({"birth_date": FUTURE}, {"birth_date"}),
    "no name": ({"last_name": "", "first_name": "", "phone": "+79160000001"}, {"name", "last_name", "first_name"}),
    "unknown product group": ({"product_groups": ["No such group"]}, {"product_groups"}),
}


@pytest.mark.parametrize("case", list(BAD_CLIENTS))
def test_invalid_client_is_422_naming_the_field(case: str, owner: httpx.Client) -> None:
    payload, expected = BAD_CLIENTS[case]
    marker = tag()
    r = owner.post("/clients", json={"last_name": "Ошибкин", "tags": [marker], **payload})
    assert r.headers["content-type"].startswith("application/json")
    assert set(fields_of(r)) & expected, r.json()
    assert list_ids(owner, tag=marker, archived="all") == []  # nothing was saved


def test_missing_names_entirely_is_422(owner: httpx.Client) -> None:
    r = owner.post("/clients", json={"email": "nobody@example.com"})
    assert set(fields_of(r)) & {"name", "last_name", "first_name"}


# ---- operations and metrics ----------------------------------------------------------------


def metrics(c: httpx.Client, cid: int) -> dict:
    r = c.get(f"/clients/{cid}")
    assert r.status_code == 200, r.text
    return r.json()["metrics"]


def assert_metrics(m: dict, count: int, revenue: str, unpaid: str, overdue: str,
                   first: date | None, last: date | None) -> None:
    assert m["operations_count"] == count, m
    assert Decimal(m["revenue_total"]) == Decimal(revenue), m
    assert Decimal(m["unpaid_total"]) == Decimal(unpaid), m
    assert Decimal(m["overdue_total"]) == Decimal(overdue), m
    assert m["first_operation_on"] == (first.isoformat() if first else None), m
    assert m["last_operation_on"] == (last.isoformat() if last else None), m


def test_operations_keep_metrics_current(owner: httpx.Client) -> None:
    cid = create(owner)["id"]
    d = lambda n: TODAY - timedelta(days=n)
    s1 = add_op(owner, cid, kind="sale", amount="1000.00", occurred_on=d(100).isoformat(),
                due_on=d(10).isoformat())
    assert s1["amount"] == "1000.00" and s1["kind"] == "sale" and s1["client_id"] == cid
    assert s1["due_on"] == d(10).isoformat() and s1["paid_on"] is None
    s2 = add_op(owner, cid, kind="service", amount="500.50", occurred_on=d(50).isoformat(),
                paid_on=d(40).isoformat())
    r3 = add_op(owner, cid, kind="return", amount="200.25", occurred_on=d(20).isoformat())
    s4 = add_op(owner, cid, kind="sale", amount="300", occurred_on=d(5).isoformat(),
                due_on=(TODAY + timedelta(days=30)).isoformat())
    assert s4["amount"] == "300.00"
    assert_metrics(metrics(owner, cid), 3, "1600.25", "1300.00", "1000.00", d(100), d(5))

    listed = owner.get(f"/clients/{cid}/operations")
    assert listed.status_code == 200
    assert {o["id"] for o in listed.json()} == {s1["id"], s2["id"], r3["id"], s4["id"]}

    r = owner.patch(f"/operations/{s1['id']}", json={"paid_on": TODAY.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["paid_on"] == TODAY.isoformat() and r.json()["amount"] == "1000.00"
    assert_metrics(metrics(owner, cid), 3, "1600.25", "300.00", "0", d(100), d(5))

    assert owner.patch(f"/operations/{r3['id']}", json={"amount": "250.25"}).status_code == 200
    assert_metrics(metrics(owner, cid), 3, "1550.25", "300.00", "0", d(100), d(5))

    assert owner.patch(f"/operations/{s4['id']}", json={"kind": "return"}).status_code == 200
    assert_metrics(metrics(owner, cid), 2, "950.25", "0", "0", d(100), d(5))

    assert owner.delete(f"/operations/{s1['id']}").status_code == 204
    assert_metrics(metrics(owner, cid), 1, "-49.75", "0", "0", d(50), d(5))

    assert owner.patch(f"/operations/{s2['id']}", json={"paid_on": "", "due_on": d(1).isoformat()}).status_code == 200
    assert_metrics(metrics(owner, cid), 1, "-49.75", "500.50", "500.50", d(50), d(5))

    for op in (s2, r3, s4):
        assert owner.delete(f"/operations/{op['id']}").status_code == 204
    assert_metrics(metrics(owner, cid), 0, "0", "0", "0", None, None)
    assert owner.get(f"/clients/{cid}/operations").json() == []
    assert owner.delete(f"/operations/{s2['id']}").status_code == 404


BAD_OPS = {
    "negative amount": ({"amount": "-5.00"}, "amount"),
    "zero amount": ({"amount": "0"}, "amount"),
    "zero with decimals": ({"amount": "0.00"}, "amount"),
    "not a number": ({"amount": "abc"}, "amount"),
    "bad date": ({"occurred_on": "2024-02-30"}, "occurred_on"),
    "not a date": ({"occurred_on": "yesterday"}, "occurred_on"),
    "future date": ({"occurred_on": (TODAY + timedelta(days=1)).isoformat()}, "occurred_on"),
    "bad kind": ({"kind": "gift"}, "kind"),
    "future payment": ({"paid_on": (TODAY + timedelta(days=3)).isoformat()}, "paid_on"),
}


def test_concurrent_writes_on_one_client_keep_its_metrics(base_url: str, tenant: str, owner: httpx.Client) -> None:
    """Forty writers at once on one card: each recount waits for the others and sees them."""
    cid, secret = create(owner)["id"], token(tenant, "owner")

    def write(i: int) -> str:
        with api(base_url, secret) as c:
            r = c.post(f"/clients/{cid}/operations", json={"kind": "sale", "amount": f"{i + 1}.00",
                                                           "occurred_on": TODAY.isoformat()})
            assert r.status_code == 201, r.text
            return r.json()["amount"]

    with ThreadPoolExecutor(max_workers=40) as pool:
        amounts = list(pool.map(write, range(120)))
    got = metrics(owner, cid)
    assert got["operations_count"] == len(amounts) == 120
    assert Decimal(got["revenue_total"]) == sum(Decimal(a) for a in amounts) == Decimal(120 * 121 // 2)


@pytest.mark.parametrize("case", list(BAD_OPS))
def test_invalid_operation_is_422_naming_the_field(case: str, owner: httpx.Client) -> None:
    cid = create(owner)["id"]
    payload, field = BAD_OPS[case]
    r = owner.post(f"/clients/{cid}/operations",
                   json={"kind": "sale", "occurred_on": TODAY.isoformat(), "amount": "10.00", **payload})
    assert field in fields_of(r)
    assert owner.get(f"/clients/{cid}/operations").json() == []
    assert metrics(owner, cid)["operations_count"] == 0


@pytest.mark.parametrize(("language", "expected"), [
    ("en", "The operation date {} is after today ({})."),
    ("ru", "Дата операции {} позже сегодняшнего дня ({})."),
])
def test_a_future_operation_date_is_refused_naming_it(language: str, expected: str, owner: httpx.Client) -> None:
    """The same rule as the import's (saas.clients.rules.future_operation_date), in the request's
    language, on create and on edit; a due date in the future stays allowed."""
    cid = create(owner)["id"]
    tomorrow = (TODAY + timedelta(days=1)).strftime("%d.%m.%Y")
    headers = {"Accept-Language": language}
    r = owner.post(f"/clients/{cid}/operations", headers=headers,
                   json={"kind": "sale", "occurred_on": tomorrow, "amount": "10.00"})
    assert fields_of(r)["occurred_on"] == expected.format(tomorrow, TODAY.isoformat())
    op = add_op(owner, cid, due_on=(TODAY + timedelta(days=60)).isoformat())
    later = (TODAY + timedelta(days=365)).isoformat()
    r = owner.patch(f"/operations/{op['id']}", headers=headers, json={"occurred_on": later})
    assert fields_of(r)["occurred_on"] == expected.format(later, TODAY.isoformat())
    assert [o["occurred_on"] for o in owner.get(f"/clients/{cid}/operations").json()] == [TODAY.isoformat()]
    assert metrics(owner, cid)["last_operation_on"] == TODAY.isoformat()


def test_invalid_operation_edit_is_422_and_keeps_the_operation(owner: httpx.Client) -> None:
    cid = create(owner)["id"]
    op = add_op(owner, cid, amount="42.00")
    r = owner.patch(f"/operations/{op['id']}", json={"amount": "-1"})
    assert "amount" in fields_of(r)
    assert owner.get(f"/clients/{cid}/operations").json()[0]["amount"] == "42.00"
    assert Decimal(metrics(owner, cid)["revenue_total"]) == Decimal("42.00")


def test_large_operations_never_cause_a_server_error(owner: httpx.Client) -> None:
    """Each amount is within the allowed maximum; their sum must not crash the metrics update."""
    cid = create(owner)["id"]
    big = "600000000000.00"
    add_op(owner, cid, amount=big)
    r = owner.post(f"/clients/{cid}/operations", json={"occurred_on": TODAY.isoformat(), "amount": big})
    assert r.status_code in (201, 422), (r.status_code, r.text)
    ops = owner.get(f"/clients/{cid}/operations").json()
    assert Decimal(metrics(owner, cid)["revenue_total"]) == sum(Decimal(o["amount"]) for o in ops)


def test_unknown_product_group_on_an_operation_is_422(owner: httpx.Client) -> None:
    cid = create(owner)["id"]
    r = owner.post(f"/clients/{cid}/operations", json={"kind": "sale", "occurred_on": TODAY.isoformat(),
                                                       "amount": "10", "product_group": "Nope"})
    assert r.status_code == 422, r.text
    assert owner.get(f"/clients/{cid}/operations").json() == []


# ---- archive -------------------------------------------------------------------------------


def test_delete_archives_the_client(owner: httpx.Client) -> None:
    marker = tag()
    cid = create(owner, tags=[marker])["id"]
    keep = create(owner, tags=[marker])["id"]
    assert owner.delete(f"/clients/{cid}").status_code == 204
    assert list_ids(owner, tag=marker) == [keep]
    assert sorted(list_ids(owner, tag=marker, archived="all")) == sorted([cid, keep])
    assert list_ids(owner, tag=marker, archived="yes") == [cid]
    got = owner.get(f"/clients/{cid}")
    assert got.status_code == 200 and got.json()["archived"] is True


# ---- list: search, filters, sorts, pages ---------------------------------------------------


@pytest.fixture(scope="module")
def search_set(owner: httpx.Client) -> dict[str, Any]:
    marker = tag()
    target = create(owner, last_name="Шестаковский", first_name="Анатолий", phone="8 916 123-45-67",
                    email="Zorro.Unique@Example.com", passport={"series": "4510", "number": "123456"},
                    tags=[marker])["id"]
    other = create(owner, last_name="Petrov", first_name="Ivan", phone="+7 903 765-43-21",
                   email="petrov@example.org", passport={"series": "4511", "number": "654321"},
                   tags=[marker])["id"]
    return {"tag": marker, "target": [target], "other": [other], "none": []}


SEARCHES = [
    ("Шестак", "target"),              # last name prefix (Cyrillic, capitalised)
    ("шестаковский анат", "target"),   # two words, lower case
    ("Petr", "other"),                 # Latin last name prefix
    ("8916123", "target"),             # phone typed with the trunk 8, partially
    ("8 916 123-45-67", "target"),     # phone typed in full with the trunk 8
    ("+7 916 123", "target"),          # phone with +7, partially
    ("9161234567", "target"),          # ten digits without the country code
    ("zorro.unique@exa", "target"),    # email prefix
    ("ZORRO.UNIQUE@", "target"),       # email prefix, upper case
    ("petrov@", "other"),
    ("4510 123456", "target"),         # exact passport: blind index
    ("4510123456", "target"),
    ("4511 654321", "other"),
    ("4510 1234", "none"),             # a partial passport finds nothing
    ("123456", "none"),                # the number alone finds nothing
    ("Несуществующий", "none"),
]


@pytest.mark.parametrize(("q", "expected"), SEARCHES)
def test_search(q: str, expected: str, owner: httpx.Client, search_set: dict[str, Any]) -> None:
    assert list_ids(owner, q=q, tag=search_set["tag"]) == search_set[expected]


def test_filters(owner: httpx.Client) -> None:
    marker = tag()
    d = lambda n: (TODAY - timedelta(days=n)).isoformat()
    rich = create(owner, last_name="Богатый", tags=[marker, "gold"])["id"]
    add_op(owner, rich, amount="5000.00", occurred_on=d(10), paid_on=d(10))
    middle = create(owner, last_name="Средний", tags=[marker])["id"]
    add_op(owner, middle, amount="1000.00", occurred_on=d(200), due_on=d(100))  # overdue
    debtor = create(owner, last_name="Должник", tags=[marker])["id"]
    add_op(owner, debtor, amount="300.00", occurred_on=d(30), due_on=(TODAY + timedelta(days=10)).isoformat())
    add_op(owner, debtor, kind="return", amount="100.00", occurred_on=d(20))
    none = create(owner, last_name="Пустой", tags=[marker])["id"]

    assert list_ids(owner, tag="gold", q="Богатый") == [rich]
    assert sorted(list_ids(owner, tag=marker, revenue_min="500")) == sorted([rich, middle])
    assert sorted(list_ids(owner, tag=marker, revenue_max="1000")) == sorted([middle, debtor, none])
    assert sorted(list_ids(owner, tag=marker, revenue_min="150", revenue_max="1000")) == sorted([middle, debtor])
    assert sorted(list_ids(owner, tag=marker, last_op_from=d(40))) == sorted([rich, debtor])
    assert sorted(list_ids(owner, tag=marker, last_op_to=d(40))) == [middle]
    assert sorted(list_ids(owner, tag=marker, last_op_from=d(25), last_op_to=d(15))) == [debtor]
    assert list_ids(owner, tag=marker, debt="overdue") == [middle]
    assert sorted(list_ids(owner, tag=marker, debt="unpaid")) == sorted([middle, debtor])
    assert list_ids(owner, tag=marker, sort="revenue") == [rich, middle, debtor, none]

    items = {i["id"]: i for i in owner.get("/clients", params={"tag": marker}).json()["items"]}
    assert Decimal(items[middle]["metrics"]["overdue_total"]) == Decimal("1000.00")
    assert Decimal(items[debtor]["metrics"]["overdue_total"]) == 0
    assert Decimal(items[debtor]["metrics"]["revenue_total"]) == Decimal("200.00")


@pytest.mark.parametrize("sort", ["name", "revenue", "recent", "new"])
def test_keyset_pages_return_every_client_once(sort: str, owner: httpx.Client) -> None:
    marker = tag()
    names = [("Алексеев", "Б"), ("алексеев", "б"), ("Алексеев", "Б"), ("Яковлев", "А"), ("Borisov", "C")]
    ids = []
    for i, (last, first) in enumerate(names):
        cid = create(owner, last_name=last, first_name=first, tags=[marker])["id"]
        if i % 2 == 0:  # ties on revenue and on the last operation date for the others
            add_op(owner, cid, amount="100.00", occurred_on=(TODAY - timedelta(days=3)).isoformat())
        ids.append(cid)
    seen: list[int] = []
    cursor = None
    for _page in range(10):
        params = {"tag": marker, "limit": 2, "sort": sort, **({"after": cursor} if cursor else {})}
        r = owner.get("/clients", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5, seen
    assert seen == list_ids(owner, tag=marker, sort=sort)  # same order as one big page


# ---- roles and tenants ---------------------------------------------------------------------


def test_viewer_cannot_write(owner: httpx.Client, viewer: httpx.Client) -> None:
    marker = tag()
    assert viewer.post("/clients", json={"last_name": "Нельзя", "tags": [marker]}).status_code == 403
    assert list_ids(owner, tag=marker, archived="all") == []
    cid = create(owner, note="keep")["id"]
    op = add_op(owner, cid)
    assert viewer.patch(f"/clients/{cid}", json={"note": "changed"}).status_code == 403
    assert viewer.delete(f"/clients/{cid}").status_code == 403
    assert viewer.post(f"/clients/{cid}/operations",
                       json={"occurred_on": TODAY.isoformat(), "amount": "1"}).status_code == 403
    assert viewer.patch(f"/operations/{op['id']}", json={"amount": "2"}).status_code == 403
    assert viewer.delete(f"/operations/{op['id']}").status_code == 403
    c = owner.get(f"/clients/{cid}").json()
    assert c["note"] == "keep" and c["archived"] is False and c["metrics"]["operations_count"] == 1
    assert viewer.get(f"/clients/{cid}").status_code == 200
    assert viewer.get(f"/clients/{cid}/operations").status_code == 200


def test_marketer_can_write(marketer: httpx.Client) -> None:
    cid = create(marketer)["id"]
    assert marketer.patch(f"/clients/{cid}", json={"note": "m"}).json()["note"] == "m"
    add_op(marketer, cid)


def test_another_tenants_token_sees_nothing(base_url: str, owner: httpx.Client) -> None:
    cid = owner.post("/clients", json=FULL).json()["id"]
    op = add_op(owner, cid, amount="77.00")
    with Browser(base_url) as b:
        other_slug = b.signup("Other Tenant Co")
    with api(base_url, token(other_slug, "owner")) as other:
        assert other.get("/clients").json()["items"] == []
        assert other.get(f"/clients/{cid}").status_code == 404
        assert other.get(f"/clients/{cid}", params={"reveal": "passport"}).status_code == 404
        assert other.patch(f"/clients/{cid}", json={"note": "hacked"}).status_code == 404
        assert other.delete(f"/clients/{cid}").status_code == 404
        assert other.get(f"/clients/{cid}/operations").status_code == 404
        assert other.post(f"/clients/{cid}/operations",
                          json={"occurred_on": TODAY.isoformat(), "amount": "1"}).status_code == 404
        assert other.patch(f"/operations/{op['id']}", json={"amount": "1.00"}).status_code == 404
        assert other.delete(f"/operations/{op['id']}").status_code == 404
        assert other.get("/clients", params={"q": "4510 123456"}).json()["items"] == []
    c = owner.get(f"/clients/{cid}").json()
    assert c["note"] == "Постоянный клиент" and c["archived"] is False
    assert [o["amount"] for o in owner.get(f"/clients/{cid}/operations").json()] == ["77.00"]


# ---- personal data at rest -----------------------------------------------------------------


def test_passport_is_not_stored_in_clear(base_url: str, db_url: str) -> None:
    with Browser(base_url) as b:
        slug = b.signup("At Rest Co")
    schema = schema_of(db_url, slug)
    with api(base_url, token(slug, "owner")) as c:
        r = c.post("/clients", json={
            "last_name": "Сохранов", "first_name": "Пётр", "phone": "+7 903 765-43-21", "email": "keep@example.com",
            "passport": {"series": "4510", "number": "123456", "issued_by": "ОВД", "issued_on": "2015-06-01",
                         "division_code": "770-001"}})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        add_op(c, cid, note="op note")
        c.get(f"/clients/{cid}", params={"reveal": "passport"})  # writes an audit event
        c.patch(f"/clients/{cid}", json={"note": "changed"})
    columns = sql(db_url, """
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = :s AND data_type IN ('text', 'character varying', 'character', 'bytea', 'jsonb',
                                                  'json', 'ARRAY', 'tsvector', 'USER-DEFINED')
    """, {"s": schema})
    assert ("clients", "passport_enc", "bytea") in columns
    scanned = 0
    for table, column, data_type in columns:
        rows = sql(db_url, f'SELECT "{column}"{"" if data_type == "bytea" else "::text"} '
                           f'FROM "{schema}"."{table}" WHERE "{column}" IS NOT NULL')
        for (value,) in rows:
            scanned += 1
            if isinstance(value, bytes | memoryview):
                raw = bytes(value)
                assert b"123456" not in raw and b"4510123456" not in raw, (table, column)
            else:
                assert "123456" not in value and "4510123456" not in value, (table, column, value)
    assert scanned > 5
    enc, bidx, mask = sql(db_url, f'SELECT passport_enc, passport_bidx, passport_mask FROM "{schema}".clients '
                                  "WHERE id = :i", {"i": cid})[0]
    assert enc is not None and len(bytes(enc)) > 16
    assert bidx is not None and re.fullmatch(r"[0-9a-f]{64}", bidx)
    assert mask and "123456" not in mask and mask.endswith("56")


def test_an_archived_groups_name_still_answers(owner: httpx.Client, tenant: str, db_url: str) -> None:
    """The card reads every group's and direction's name with the client (one statement), archived
    ones too: a client or an operation made under a group archived since still names it."""
    schema, name = schema_of(db_url, tenant), f"Старая линейка {tag()}"
    sql(db_url, f'INSERT INTO "{schema}".product_groups (name) VALUES (:n)', {"n": name})
    cid = owner.post("/clients", json={"last_name": "Архивов", "product_groups": [name]}).json()["id"]
    op = owner.post(f"/clients/{cid}/operations", json={"kind": "sale", "amount": "10.00", "product_group": name,
                                                        "occurred_on": TODAY.isoformat()})
    assert op.status_code == 201 and op.json()["product_group"] == name
    sql(db_url, f'UPDATE "{schema}".product_groups SET archived_at = now() WHERE name = :n', {"n": name})
    assert owner.get(f"/clients/{cid}").json()["product_groups"] == [name]
    assert [o["product_group"] for o in owner.get(f"/clients/{cid}/operations").json()] == [name]
