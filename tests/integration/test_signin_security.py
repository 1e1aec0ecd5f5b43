"""Sign-in and sessions (issue 16, items 6, 7, 8, 11), through the live server over HTTP.

Per-IP limits do not count the loopback address outside production, so these tests speak as
distinct clients through X-Forwarded-For (uvicorn trusts it from 127.0.0.1, as from a local proxy).
"""
from __future__ import annotations

import re
import secrets
import time

import httpx
import pytest

from testkit import Browser, sql
from tests.integration.test_auth import latest_mail, link_in


EVIL_NEXT = ["/\t/evil.example/phish", "//evil.example/x", "/\\evil.example",
             "https://evil.example/", "/\n/evil.example", "/\x00/evil.example", " //evil.example"]


def fake_ip() -> str:
    """A client address of its own (not loopback), so each test has fresh per-IP counters."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def session_rows(html: str) -> dict[str, str]:
    """The account page's sessions: public id -> the row's text."""
    return dict(re.findall(r'<tr data-session="(\w+)">(.*?)</tr>', html, re.S))


def client_from(base_url: str, ip: str) -> Browser:
    b = Browser(base_url)
    b.headers["X-Forwarded-For"] = ip
    return b


def logged_in(b: Browser) -> bool:
    return b.get("/companies").status_code == 200


def confirm(b: Browser, db_url: str) -> None:
    path = link_in(latest_mail(db_url, b.email), "confirm")
    r = b.get(path)
    assert r.status_code in (200, 303), r.text


# ---- 6: redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_login_next_never_leaves_our_origin(http: Browser, make_http, htmx: bool) -> None:
    slug = http.signup("Redirect Co")
    for evil in EVIL_NEXT:
        other = make_http()
        page = other.get("/login", params={"next": evil})
        assert page.status_code == 200
        assert "evil.example" not in page.text
        headers = {"HX-Request": "true", "HX-Boosted": "true"} if htmx else {}
        r = other.form("/login", {"email": http.email, "password": http.password, "next": evil}, headers=headers)
        target = r.headers["hx-redirect"] if htmx else r.headers["location"]
        assert target == f"/t/{slug}/", (evil, target)
    # The URL of the report, as typed: %09 is a tab once decoded.
    other = make_http()
    page = other.get("/login?next=/%09/evil.example/phish")
    assert page.status_code == 200 and "evil.example" not in page.text
    # An encoded %09 in a path is just a path on our site, and stays one.
    r = other.form("/login", {"email": http.email, "password": http.password, "next": "/%09/evil.example/phish"},
                   headers={"HX-Request": "true"})
    assert r.headers["hx-redirect"] == "/%09/evil.example/phish"
    # A genuine local path survives, re-encoded.
    other = make_http()
    r = other.form("/login", {"email": http.email, "password": http.password, "next": "/companies?q=a b"},
                   headers={"HX-Request": "true"})
    assert r.headers["hx-redirect"] == "/companies?q=a%20b"


def test_language_switch_refuses_foreign_targets(http: Browser) -> None:
    for evil in ("/\\evil.example", "/\t/evil.example", "//evil.example", "http://evil.example"):
        r = http.form("/lang", {"lang": "en", "next": evil})
        assert r.status_code == 303 and r.headers["location"] == "/", evil
    r = http.form("/lang", {"lang": "en", "next": "/signup"})
    assert r.headers["location"] == "/signup"


# ---- 7: sessions ------------------------------------------------------------------------------


def test_password_reset_ends_every_other_session(http: Browser, make_http, db_url: str) -> None:
    http.signup("Reset Sessions Co")
    laptop = make_http()
    assert laptop.form("/login", {"email": http.email, "password": http.password}).status_code == 303
    assert logged_in(http) and logged_in(laptop)
    resetter = make_http()
    resetter.form("/forgot", {"email": http.email})
    path = link_in(latest_mail(db_url, http.email), "reset")
    assert resetter.form(path, {"password": "brand new pass 7"}).status_code == 303
    assert logged_in(resetter)
    assert not logged_in(http) and not logged_in(laptop)  # both ended at once, not in 24 h


def test_account_lists_sessions_ends_one_and_password_change_ends_the_rest(http: Browser, make_http) -> None:
    http.signup("Account Sessions Co")
    phone = make_http()
    phone.headers["User-Agent"] = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile"
    assert phone.form("/login", {"email": http.email, "password": http.password}).status_code == 303
    page = http.get("/account")
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    rows = session_rows(page.text)
    assert len(rows) == 2 and "this browser" in page.text
    phone_id = next(i for i, row in rows.items() if "Chrome / Android" in row)
    assert "this browser" not in rows[phone_id] and "198.51" not in page.text

    assert http.form(f"/account/sessions/{phone_id}/end").status_code == 303
    assert not logged_in(phone) and logged_in(http)
    assert len(session_rows(http.get("/account").text)) == 1

    assert phone.form("/login", {"email": http.email, "password": http.password}).status_code == 303
    tablet = make_http()
    assert tablet.form("/login", {"email": http.email, "password": http.password}).status_code == 303
    r = http.form("/account/password", {"current": "not it", "password": "another pass 8"})
    assert r.status_code == 422 and logged_in(phone)
    r = http.form("/account/password", {"current": http.password, "password": "another pass 8"})
    assert r.status_code == 303
    assert "signed out everywhere else" in http.get("/account").text
    assert logged_in(http) and not logged_in(phone) and not logged_in(tablet)

    # "Sign out everywhere else" keeps only this browser.
    for b in (phone, tablet):
        assert b.form("/login", {"email": http.email, "password": "another pass 8"}).status_code == 303
    assert http.form("/account/sessions/others/end").status_code == 303
    assert logged_in(http) and not logged_in(phone) and not logged_in(tablet)


def test_a_session_of_another_user_cannot_be_ended(http: Browser, make_http) -> None:
    http.signup("Own Sessions Co")
    other = make_http()
    other.signup("Other Sessions Co")
    their_id = re.search(r'data-session="(\w+)"', other.get("/account").text).group(1)
    assert http.form(f"/account/sessions/{their_id}/end").status_code == 303
    assert logged_in(other)


def invite_and_join(owner: Browser, make_http, db_url: str, slug: str, role: str) -> Browser:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    assert owner.form(f"/t/{slug}/team/invite", {"email": email, "role": role}).status_code == 303
    member = make_http()
    r = member.form(link_in(latest_mail(db_url, email), "invite"), {"name": f"A {role}", "password": "member pass 1"})
    assert r.status_code == 303, r.text
    member.email = email
    return member


def member_id(db_url: str, email: str) -> int:
    return sql(db_url, "SELECT id FROM shared.users WHERE email = :e", {"e": email})[0][0]


def test_removed_member_loses_access_with_the_next_request(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Remove Member Co")
    member = invite_and_join(http, make_http, db_url, slug, "marketer")
    assert member.get(f"/t/{slug}/clients").status_code == 200
    assert http.form(f"/t/{slug}/team/members/{member_id(db_url, member.email)}/remove").status_code == 303
    # Membership is checked on every request (tenant_ctx): the same session is out at once.
    assert member.get(f"/t/{slug}/clients").status_code == 404
    assert member.get(f"/t/{slug}/").status_code == 404


# ---- 11: API tokens ---------------------------------------------------------------------------


def test_member_tokens_die_with_the_membership_or_the_role(http: Browser, make_http, db_url: str,
                                                           base_url: str) -> None:
    slug = http.signup("Token Owner Co")
    admin = invite_and_join(http, make_http, db_url, slug, "admin")
    r = admin.form(f"/t/{slug}/tokens", {"name": "admin's script", "role": "admin"})
    assert r.status_code == 201
    secret = re.search(r'value="(kt_[\w-]+)"', r.text).group(1)
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {secret}"})
    me = api.get("/api/v1/me")
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    assert api.get("/api/v1/tokens").headers["cache-control"] == "no-store"

    uid = member_id(db_url, admin.email)
    assert http.form(f"/t/{slug}/team/members/{uid}/role", {"role": "viewer"}).status_code == 303
    assert api.get("/api/v1/me").status_code == 401  # an admin token of a viewer is refused
    assert http.form(f"/t/{slug}/team/members/{uid}/role", {"role": "admin"}).status_code == 303
    assert api.get("/api/v1/me").status_code == 200

    assert http.form(f"/t/{slug}/team/members/{uid}/remove").status_code == 303
    assert api.get("/api/v1/me").status_code == 401
    revoked = sql(db_url, "SELECT revoked_at IS NOT NULL FROM shared.api_tokens WHERE created_by = :u", {"u": uid})
    assert revoked == [(True,)]
    # The owner's own token is untouched.
    r = http.form(f"/t/{slug}/tokens", {"name": "owner's", "role": "viewer"})
    own = re.search(r'value="(kt_[\w-]+)"', r.text).group(1)
    assert httpx.get(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {own}"}).status_code == 200


# ---- 8: throttles, confirmation, the login delay -----------------------------------------------


def test_signup_is_throttled_by_ip_and_by_address(base_url: str) -> None:
    ip = fake_ip()
    statuses = []
    for i in range(11):
        with client_from(base_url, ip) as b:
            email = f"{secrets.token_hex(5)}@example.com"
            r = b.form("/signup", {"company": f"Flood {i}", "name": "Bot", "email": email, "password": "flood pass 1"})
            statuses.append(r.status_code)
    assert statuses[:10] == [303] * 10 and statuses[10] == 429
    with client_from(base_url, fake_ip()) as b:  # another address is not affected
        email = f"{secrets.token_hex(5)}@example.com"
        tries = [b.form("/signup", {"company": "", "name": "X", "email": email, "password": "x"}).status_code
                 for _ in range(4)]
        assert tries == [422, 422, 422, 429]
        r = b.form("/signup", {"company": "Fine", "name": "X", "email": email, "password": "long enough 1"})
        assert r.status_code == 429 and "Try again in" in r.text and int(r.headers["retry-after"]) > 3000


def test_forgot_password_cannot_flood_a_mailbox(http: Browser, base_url: str, db_url: str) -> None:
    http.signup("Flood Mail Co")
    with client_from(base_url, fake_ip()) as b:
        statuses = [b.form("/forgot", {"email": http.email}).status_code for _ in range(5)]
    assert statuses == [303, 303, 303, 429, 429]
    sent = sql(db_url, "SELECT count(*) FROM shared.outbox WHERE recipient = :r AND subject LIKE 'Reset%'",
               {"r": http.email})[0][0]
    assert sent == 3


def test_new_company_needs_a_confirmed_address_and_is_throttled(http: Browser, db_url: str) -> None:
    http.signup("Confirm First Co")
    r = http.form("/companies", {"company": "Second Co"})
    assert r.status_code == 403 and "Confirm your email address first" in r.text
    assert "not confirmed" in http.get("/account").text
    confirm(http, db_url)
    assert "not confirmed" not in http.get("/account").text
    created = [http.form("/companies", {"company": f"More {i}"}).status_code for i in range(6)]
    assert created == [303] * 5 + [429]


def test_a_forged_confirmation_link_confirms_nothing(http: Browser, db_url: str) -> None:
    http.signup("Forged Confirm Co")
    path = link_in(latest_mail(db_url, http.email), "confirm")
    uid, expires, mac = path.rsplit("/", 1)[1].split("-", 2)
    other = f"/confirm/{int(uid) + 1}-{expires}-{mac}"
    assert http.get(other).status_code == 404
    assert http.get(f"/confirm/{uid}-{int(expires) + 9999}-{mac}").status_code == 404
    assert "not confirmed" in http.get("/account").text


def test_an_invitation_needs_a_confirmed_address_for_an_existing_account(http: Browser, make_http,
                                                                         db_url: str) -> None:
    slug = http.signup("Invite Confirm Co")
    joiner = make_http()
    joiner.signup("Joiner's Own Co")
    http.form(f"/t/{slug}/team/invite", {"email": joiner.email, "role": "viewer"})
    path = link_in(latest_mail(db_url, joiner.email), "invite")
    r = joiner.form(path, {})
    assert r.status_code == 422 and "Confirm your email address first" in r.text
    assert joiner.get(f"/t/{slug}/").status_code == 404
    confirm(joiner, db_url)
    assert joiner.form(path, {}).status_code == 303
    assert joiner.get(f"/t/{slug}/").status_code == 200


def test_invitation_acceptance_is_throttled(http: Browser, base_url: str, db_url: str) -> None:
    slug = http.signup("Invite Flood Co")
    email = f"target-{secrets.token_hex(3)}@example.com"
    http.form(f"/t/{slug}/team/invite", {"email": email, "role": "viewer"})
    path = link_in(latest_mail(db_url, email), "invite")
    with client_from(base_url, fake_ip()) as b:
        statuses = [b.form(path, {"name": "", "password": "x"}).status_code for _ in range(11)]
    assert statuses == [422] * 10 + [429]


def test_login_delay_grows_and_lets_the_owner_in_after_it(http: Browser, make_http, db_url: str) -> None:
    http.signup("Delay Co")
    attacker = make_http()
    statuses = [attacker.form("/login", {"email": http.email, "password": f"guess {i}"}).status_code
                for i in range(9)]
    assert statuses == [401] * 9
    r = attacker.form("/login", {"email": http.email, "password": http.password})
    assert r.status_code == 429 and re.search(r"Try again in 1[0-5] seconds", r.text)
    assert "reset your password" in r.text
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= 15
    time.sleep(wait + 1)
    r = attacker.form("/login", {"email": http.email, "password": "guess 10"})
    assert r.status_code == 401 and "30 seconds" in r.text  # the delay doubles
    # The owner is not locked out for 15 minutes: the reset link ends the delay at once.
    owner = make_http()
    owner.form("/forgot", {"email": http.email})
    owner.form(link_in(latest_mail(db_url, http.email), "reset"), {"password": "owner is back 1"})
    fresh = make_http()
    assert fresh.form("/login", {"email": http.email, "password": "owner is back 1"}).status_code == 303


def test_account_page_and_tokens_page_in_russian(http: Browser) -> None:
    slug = http.signup("Russian Account Co")
    http.form("/lang", {"lang": "ru", "next": "/account"})
    page = http.get("/account").text
    for text in ("Ваша учётная запись", "Где выполнен вход", "Сменить пароль", "этот браузер", "не подтверждён"):
        assert text in page, text
    assert "Кем создан" in http.get(f"/t/{slug}/tokens").text
    r = http.form("/companies", {"company": "Вторая"})
    assert r.status_code == 403 and "Сначала подтвердите адрес электронной почты" in r.text
