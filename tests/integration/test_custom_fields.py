"""Custom fields act like built-in ones: form, API, import, filter, sort, export; views keep relative dates."""
from __future__ import annotations

import csv
import io

import httpx
import pytest

from testkit import Browser, cli
from tests.integration.processes import wait_for

# type -> (definition extras, a good value as typed, its stored form, a bad value)
CASES = {
    "text": ({}, "VIN123", "VIN123", "x" * 1001),
    "number": ({}, "42", 42, "forty"),
    "money": ({}, "1 500,50", 1500.5, "lots"),
    "date": ({}, "31.12.2025", "2025-12-31", "31.31.2025"),
    "bool": ({}, "да", True, "maybe"),
    "choice": ({"options": "BMW\nLada\nKia"}, "Lada", "Lada", "Volvo"),
    "multi": ({"options": "red\ngreen\nblue"}, "red, blue", ["red", "blue"], "purple"),
}


@pytest.fixture(scope="module")
def tenant(base_url: str, worker):
    b = Browser(base_url)
    slug = b.signup("Fields Co")
    for kind, (extra, *_rest) in CASES.items():
        r = b.form(f"/t/{slug}/fields", {"label_ru": f"Поле {kind}", "label_en": f"f_{kind}", "type": kind,
                                         "in_list": "1", **extra})
        assert r.status_code == 303, r.text
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "f").stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield b, slug, api
    api.close()
    b.close()


@pytest.mark.parametrize("kind", list(CASES))
def test_every_path_accepts_good_and_refuses_bad_values(tenant, kind) -> None:
    b, slug, api = tenant
    _extra, good, stored, bad = CASES[kind]
    key = f"f_{kind}"
    # API
    r = api.post("/api/v1/clients", json={"last_name": "Api", "first_name": kind, "custom": {key: good}})
    assert r.status_code == 201 and r.json()["custom"][key] == stored, r.text
    r = api.post("/api/v1/clients", json={"last_name": "Api", "first_name": "bad", "custom": {key: bad}})
    assert r.status_code == 422 and f"custom.{key}" in r.json()["fields"]
    # form
    r = b.form(f"/t/{slug}/clients", {"last_name": "Form", "first_name": kind, f"cf_{key}": good})
    assert r.status_code == 303
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    assert api.get(f"/api/v1/clients/{cid}").json()["custom"].get(key) == stored
    if kind != "bool":  # a checkbox cannot carry a wrong value
        r = b.form(f"/t/{slug}/clients", {"last_name": "Form", "first_name": "bad", f"cf_{key}": bad})
        assert r.status_code == 422
    # import (custom:<key> in the mapping)
    content = f"ФИО;Поле\nИмпорт {kind};{good}\nПлохой Ряд;{bad}\n".encode()
    body = api.post("/api/v1/imports", files={"file": ("c.csv", content)},
                    data={"kind": "clients", "mapping": f'{{"ФИО": "full_name", "Поле": "custom:{key}"}}'}).json()
    import_id = body["id"]

    def finished() -> dict | None:
        now = api.get(f"/api/v1/imports/{import_id}").json()
        return now if now["status"] in ("done", "failed") else None

    body = wait_for(finished, 60, "the import to finish", every=0.3)
    assert body["created"] == 1 and body["rejected"] == 1, body
    # filter and sort
    value = stored[0] if isinstance(stored, list) else stored
    probe = {"bool": "yes", "multi": value}.get(kind, good if kind in ("text", "choice") else None)
    if probe is not None:
        found = api.get("/api/v1/clients", params={f"cf_{key}": probe, "limit": 100}).json()["items"]
    else:
        found = api.get("/api/v1/clients", params={f"cf_{key}_min": good, f"cf_{key}_max": good,
                                                    "limit": 100}).json()["items"]
    assert len(found) == 3 and all(c["custom"].get(key) == stored for c in found)
    ordered = api.get("/api/v1/clients", params={"sort": f"cf_{key}", "limit": 500}).json()["items"]
    with_value = [c for c in ordered if key in c["custom"]]
    assert len(with_value) >= 3 and ordered[: len(with_value)] == with_value  # missing values sort last
    # export
    export = b.get(f"/t/{slug}/clients/export?format=csv&cf_{key}={probe or ''}")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig")), delimiter=";"))
    assert f"f_{kind}" in rows[0] or f"Поле {kind}" in rows[0]


def test_required_field_and_unknown_key(tenant) -> None:
    b, slug, api = tenant
    r = api.post("/api/v1/clients", json={"last_name": "X", "custom": {"no_such_field": 1}})
    assert r.status_code == 422 and "custom.no_such_field" in r.json()["fields"]


def test_archived_field_keeps_its_values_and_type_change_lists_failures(tenant) -> None:
    b, slug, api = tenant
    cid = api.post("/api/v1/clients", json={"last_name": "Keep", "custom": {"f_text": "123"}}).json()["id"]
    api.post("/api/v1/clients", json={"last_name": "Keep2", "custom": {"f_text": "abc"}})
    page = b.get(f"/t/{slug}/fields").text
    field_id = int(page.split('name="label_en" value="f_text"')[0].rsplit("/fields/", 1)[1].split('"')[0])
    r = b.form(f"/t/{slug}/fields/{field_id}", {"action": "change_type", "new_type": "number"})
    assert r.status_code == 422 and "cannot be converted" in b.get(f"/t/{slug}/fields").text or r.status_code == 422
    assert api.get(f"/api/v1/clients/{cid}").json()["custom"]["f_text"] == "123"  # nothing changed
    b.form(f"/t/{slug}/fields/{field_id}", {"action": "archive"})
    assert api.get(f"/api/v1/clients/{cid}").json()["custom"]["f_text"] == "123"  # archived, kept


def test_saved_view_keeps_relative_dates_and_default(tenant) -> None:
    b, slug, _api = tenant
    r = b.form(f"/t/{slug}/views", {"name": "Recent Lada", "query": "cf_f_choice=Lada&last_op_from=-30d",
                                    "is_default": "1"})
    assert r.status_code == 303
    page = b.get(f"/t/{slug}/clients", headers={"Accept-Language": "en"}).text  # the default applies
    assert "Recent Lada" in page and 'value="-30d"' in page


def test_views_and_fields_of_another_company_are_invisible(tenant, make_http) -> None:
    b, slug, _api = tenant
    other = make_http()
    other_slug = other.signup("Other Fields Co")
    assert "f_text" not in other.get(f"/t/{other_slug}/fields").text
    b.form(f"/t/{slug}/views", {"name": "Private one", "query": "q=a"})
    assert "Private one" not in other.get(f"/t/{other_slug}/clients").text


def test_campaign_criteria_use_custom_fields(tenant) -> None:
    _b, _slug, api = tenant
    lada = api.get("/api/v1/clients", params={"cf_f_choice": "Lada", "limit": 500}).json()["items"]
    preview = api.post("/api/v1/campaigns/preview",
                       json={"criteria": {"any": [{"custom": {"f_choice": "Lada"}}]}}).json()
    assert preview["count"] == len(lada) > 0
    multi = api.post("/api/v1/campaigns/preview", json={"criteria": {"any": [{"custom": {"f_multi": "red"}}]}})
    assert multi.status_code == 200 and multi.json()["count"] >= 3
