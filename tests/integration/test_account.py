"""A company's own account: team roles and removal, last-owner protection, invitations, API tokens
through the UI, company settings, and plan limits as clear messages."""
from __future__ import annotations

import json
import re

import httpx

from testkit import Browser
from tests.integration.test_clients_api import sql
from tests.integration.test_clients_web import create_client, member


def user_id(db_url: str, email: str) -> int:
    return sql(db_url, "SELECT id FROM shared.users WHERE email = :e", {"e": email.lower()})[0][0]


def set_limits(db_url: str, slug: str, limits: dict) -> None:
    sql(db_url, "UPDATE shared.tenants SET limits = CAST(:l AS jsonb) WHERE slug = :s",
        {"l": json.dumps(limits), "s": slug})


def test_role_change_removal_and_the_last_owner(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Team Roles Co")
    owner_id = user_id(db_url, http.email)
    mate = member(http, make_http, db_url, slug, "marketer")
    mate_id = sql(db_url, "SELECT user_id FROM shared.memberships m JOIN shared.tenants t ON t.id = m.tenant_id "
                          "WHERE t.slug = :s AND m.role = 'marketer'", {"s": slug})[0][0]

    # The only owner can neither step down nor leave.
    r = http.form(f"/t/{slug}/team/members/{owner_id}/role", {"role": "admin"})
    assert r.status_code == 422 and "last owner" in r.text
    r = http.form(f"/t/{slug}/team/members/{owner_id}/remove")
    assert r.status_code == 422 and "last owner cannot be removed" in r.text

    # Promote the marketer to admin: the team page and their access follow.
    assert mate.get(f"/t/{slug}/team").status_code == 403
    r = http.form(f"/t/{slug}/team/members/{mate_id}/role", {"role": "admin"})
    assert r.status_code == 303
    assert mate.get(f"/t/{slug}/team").status_code == 200
    # An admin cannot touch an owner, nor make anyone an owner.
    r = mate.form(f"/t/{slug}/team/members/{owner_id}/role", {"role": "viewer"})
    assert r.status_code == 422 and "Only an owner" in r.text
    r = mate.form(f"/t/{slug}/team/members/{mate_id}/role", {"role": "owner"})
    assert r.status_code == 422 and "Only an owner" in r.text
    r = mate.form(f"/t/{slug}/team/members/{owner_id}/remove")
    assert r.status_code == 422

    # With a second owner, the first may step down.
    assert http.form(f"/t/{slug}/team/members/{mate_id}/role", {"role": "owner"}).status_code == 303
    assert http.form(f"/t/{slug}/team/members/{owner_id}/role", {"role": "admin"}).status_code == 303
    roles = dict(sql(db_url, "SELECT user_id, role FROM shared.memberships m JOIN shared.tenants t "
                             "ON t.id = m.tenant_id WHERE t.slug = :s", {"s": slug}))
    assert roles == {owner_id: "admin", mate_id: "owner"}

    # The new owner removes the admin, who then finds nothing there.
    r = mate.form(f"/t/{slug}/team/members/{owner_id}/remove")
    assert r.status_code == 303
    assert http.get(f"/t/{slug}/").status_code == 404
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]
    actions = [a for (a,) in sql(db_url, f'SELECT action FROM "{schema}".audit_events ORDER BY id')]
    assert actions.count("member.role_changed") == 3 and "member.removed" in actions


def test_a_member_in_another_company_is_not_found(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Team Scope Co")
    other = make_http()
    other.signup("Other Scope Co")
    stranger = user_id(db_url, other.email)
    assert http.form(f"/t/{slug}/team/members/{stranger}/role", {"role": "viewer"}).status_code == 404
    assert http.form(f"/t/{slug}/team/members/{stranger}/remove").status_code == 404


def test_pending_invitation_can_be_revoked(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Revoke Invite Co")
    http.form(f"/t/{slug}/team/invite", {"email": "late@example.com", "role": "viewer"})
    page = http.get(f"/t/{slug}/team").text
    invitation = int(re.search(r"/team/invitations/(\d+)/revoke", page).group(1))
    body = sql(db_url, "SELECT body FROM shared.outbox WHERE recipient = 'late@example.com' ORDER BY id DESC")[0][0]
    link = re.search(r"https?://[^/\s]+(/invite/[\w-]+)", body).group(1)

    r = http.form(f"/t/{slug}/team/invitations/{invitation}/revoke")
    assert r.status_code == 303
    page = http.get(f"/t/{slug}/team").text
    assert "has been revoked" in page and f"/team/invitations/{invitation}/revoke" not in page
    assert make_http().get(link).status_code == 404

    other = make_http()
    other_slug = other.signup("Foreign Invite Co")
    assert other.form(f"/t/{other_slug}/team/invitations/{invitation}/revoke").status_code == 404


def test_token_created_shown_once_used_and_revoked(http: Browser, base_url: str) -> None:
    slug = http.signup("Token UI Co")
    r = http.form(f"/t/{slug}/tokens", {"name": "website orders", "role": "marketer"})
    assert r.status_code == 201
    secret = re.search(r'value="(kt_[\w-]+)"', r.text).group(1)
    assert "shown only once" in r.text
    page = http.get(f"/t/{slug}/tokens").text
    assert "website orders" in page and secret not in page  # listed by prefix, never again in full

    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {secret}"})
    me = api.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["role"] == "marketer"
    assert "never" not in http.get(f"/t/{slug}/tokens").text.split("website orders")[1].split("</tr>")[0]

    token_id = int(re.search(r"/tokens/(\d+)/revoke", page).group(1))
    assert http.form(f"/t/{slug}/tokens/{token_id}/revoke").status_code == 303
    assert api.get("/api/v1/me").status_code == 401
    assert "revoked" in http.get(f"/t/{slug}/tokens").text


def test_token_role_cannot_exceed_the_creators(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Token Role Co")
    admin = member(http, make_http, db_url, slug, "admin")
    r = admin.form(f"/t/{slug}/tokens", {"name": "too strong", "role": "owner"})
    assert r.status_code == 422 and "higher role" in r.text
    assert admin.form(f"/t/{slug}/tokens", {"name": "fine", "role": "admin"}).status_code == 201
    r = http.form(f"/t/{slug}/tokens", {"name": "", "role": "viewer"})
    assert r.status_code == 422 and "Name the token." in r.text


def test_company_settings_change_the_currency_shown(http: Browser) -> None:
    slug = http.signup("Currency Co")
    client = create_client(http, slug)
    r = http.form(f"/t/{slug}/clients/{client}/operations",
                  {"kind": "sale", "occurred_on": "2024-03-01", "amount": "1500"})
    assert r.status_code in (200, 303), r.text
    assert "$" not in http.get(f"/t/{slug}/clients/{client}").text

    r = http.form(f"/t/{slug}/settings", {"name": "Currency Co Ltd", "currency": "USD",
                                          "timezone": "Asia/Almaty", "locale": "en"})
    assert r.status_code == 303
    card = http.get(f"/t/{slug}/clients/{client}").text
    assert "$1,500.00" in card
    page = http.get(f"/t/{slug}/settings").text
    assert 'value="Currency Co Ltd"' in page and 'value="Asia/Almaty" selected' in page
    assert f"{slug}/analytics/settings" in page

    r = http.form(f"/t/{slug}/settings", {"name": "", "currency": "XXX", "timezone": "Mars/Olympus", "locale": "fr"})
    assert r.status_code == 422
    for message in ("Enter the company name.", "Choose a currency", "Choose a time zone", "Choose a language"):
        assert message in r.text


def test_marketer_cannot_open_the_account_pages(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Marketer Pages Co")
    marketer = member(http, make_http, db_url, slug, "marketer")
    for path in ("/team", "/tokens", "/settings"):
        assert marketer.get(f"/t/{slug}{path}").status_code == 403, path
    assert marketer.form(f"/t/{slug}/tokens", {"name": "x", "role": "viewer"}).status_code == 403
    assert "/settings" not in marketer.get(f"/t/{slug}/").text.split("</nav>")[0]
    assert f"/t/{slug}/settings" in http.get(f"/t/{slug}/").text


def test_plan_limits_give_a_clear_message(http: Browser, make_http, db_url: str, base_url: str) -> None:
    slug = http.signup("Limits Co")
    set_limits(db_url, slug, {"clients": 1, "users": 2, "campaigns_per_month": 1})
    create_client(http, slug)
    r = http.form(f"/t/{slug}/clients", {"last_name": "Second", "first_name": "One"})
    assert r.status_code == 422 and "Your plan allows at most 1 clients" in r.text

    r = http.form(f"/t/{slug}/tokens", {"name": "api", "role": "owner"})
    secret = re.search(r'value="(kt_[\w-]+)"', r.text).group(1)
    api = httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {secret}",
                                                               "Accept-Language": "en"})
    r = api.post("/clients", json={"last_name": "Third", "first_name": "One"})
    assert r.status_code == 422 and "at most 1 clients" in r.json()["fields"]["form"]

    assert api.post("/campaigns", json={"name": "First"}).status_code in (200, 201)
    r = api.post("/campaigns", json={"name": "Second"})
    assert r.status_code == 422 and "new campaigns a month" in r.json()["fields"]["form"]

    assert http.form(f"/t/{slug}/team/invite", {"email": "one@example.com", "role": "viewer"}).status_code == 303
    r = http.form(f"/t/{slug}/team/invite", {"email": "two@example.com", "role": "viewer"})
    assert r.status_code == 422 and "at most 2 users" in r.text

    page = http.get(f"/t/{slug}/settings").text
    assert "New campaigns this month" in page

    # Raising the limit lifts the refusal; editing an existing client never counted.
    set_limits(db_url, slug, {"clients": None})
    r = http.form(f"/t/{slug}/clients", {"last_name": "Second", "first_name": "One"})
    assert r.status_code == 303
