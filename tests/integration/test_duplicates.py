"""Likely duplicates are found, and merging keeps every operation and the totals right."""
from __future__ import annotations

import httpx

from testkit import Browser, cli


def test_find_and_merge_duplicates(http: Browser, base_url: str) -> None:
    slug = http.signup("Dup Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "d").stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
    a = api.post("/api/v1/clients", json={"last_name": "Ёлкин", "first_name": "Иван", "phone": "+79165551111",
                                          "tags": ["a"]}).json()
    b = api.post("/api/v1/clients", json={"last_name": "Елкин", "first_name": "Иван", "phone": "+79165551111",
                                          "email": "elkin@example.com", "tags": ["b"]}).json()
    c = api.post("/api/v1/clients", json={"last_name": "Другой", "first_name": "Человек"}).json()
    for cid, amount in ((a["id"], "100.00"), (b["id"], "250.50"), (b["id"], "10.00")):
        api.post(f"/api/v1/clients/{cid}/operations", json={"occurred_on": "2024-05-01", "amount": amount})
    page = http.get(f"/t/{slug}/clients/duplicates").text
    shown = lambda cid: f'muted">#{cid}<' in page
    assert shown(a["id"]) and shown(b["id"]) and not shown(c["id"])
    r = http.form(f"/t/{slug}/clients/merge", {"keep_id": a["id"], "other_id": b["id"]})
    assert r.status_code == 303
    kept = api.get(f"/api/v1/clients/{a['id']}").json()
    assert kept["metrics"]["operations_count"] == 3
    assert kept["metrics"]["revenue_total"] == "360.50"
    assert kept["email"] == "elkin@example.com" and sorted(kept["tags"]) == ["a", "b"]
    assert api.get(f"/api/v1/clients/{b['id']}").status_code == 404
    assert len(api.get(f"/api/v1/clients/{a['id']}/operations").json()) == 3
    assert "No likely duplicates" in http.get(f"/t/{slug}/clients/duplicates",
                                              headers={"Accept-Language": "en"}).text
