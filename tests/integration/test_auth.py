"""Accounts: signup, login, logout, throttling, sessions, CSRF, resets and invitations."""
from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from testkit import Browser
from saas.core.db import Database
from saas.core.models import OutboxMail


def latest_mail(db_url: str, to: str) -> OutboxMail:
    async def go() -> OutboxMail:
        db = Database(db_url, pool_size=1)
        try:
            async with db.session() as s:
                return await s.scalar(select(OutboxMail).where(OutboxMail.recipient == to)
                                      .order_by(OutboxMail.id.desc()).limit(1))
        finally:
            await db.dispose()

    return asyncio.run(go())


def link_in(mail: OutboxMail, kind: str) -> str:
    match = re.search(rf"https?://[^/\s]+(/{kind}/[\w-]+)", mail.body)
    assert match, mail.body
    return match.group(1)


def test_signup_lands_in_the_empty_workspace(http: Browser) -> None:
    slug = http.signup("Acme Trading")
    page = http.get(f"/t/{slug}/")
    assert page.status_code == 200
    assert "Acme Trading" in page.text and "Your workspace is ready" in page.text
    assert page.headers["cache-control"] == "private, no-store"


def test_signup_shows_field_errors_and_creates_nothing(http: Browser) -> None:
    r = http.form("/signup", {"company": "", "name": "X", "email": "not-an-email", "password": "short"})
    assert r.status_code == 422
    assert "Enter the company name." in r.text
    assert "Enter a valid email address." in r.text
    assert "at least 8 characters" in r.text
    assert http.get("/companies").status_code == 303  # still not logged in


def test_signup_with_a_taken_email_is_refused(http: Browser, make_http) -> None:
    http.signup("First Co", email="taken@example.com")
    other = make_http()
    r = other.form("/signup", {"company": "Second", "name": "Y", "email": "Taken@Example.com",
                               "password": "long enough 1"})
    assert r.status_code == 422 and "already registered" in r.text


def test_logout_then_login(http: Browser, make_http) -> None:
    slug = http.signup("Login Co")
    assert http.form("/logout").status_code == 303
    assert http.get(f"/t/{slug}/").headers["location"].startswith("/login")
    r = http.form("/login", {"email": http.email, "password": http.password})
    assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/"
    assert http.get(f"/t/{slug}/").status_code == 200


def test_wrong_password_is_refused(http: Browser, make_http) -> None:
    http.signup("Pw Co")
    other = make_http()
    r = other.form("/login", {"email": http.email, "password": "wrong password"})
    assert r.status_code == 401 and "Wrong email or password." in r.text


def test_tenth_wrong_password_in_a_row_is_throttled(http: Browser, make_http) -> None:
    http.signup("Throttle Co")
    attacker = make_http()
    statuses = [attacker.form("/login", {"email": http.email, "password": f"guess {i}"}).status_code
                for i in range(10)]
    assert statuses[:9] == [401] * 9
    assert statuses[9] == 429
    # Even the right password is refused while throttled.
    r = attacker.form("/login", {"email": http.email, "password": http.password})
    assert r.status_code == 429 and "Too many failed attempts" in r.text


def test_session_id_planted_before_login_is_not_valid_after(http: Browser, make_http) -> None:
    http.signup("Fixation Co")
    victim = make_http()
    victim.get("/login")
    victim.form("/lang", {"lang": "en", "next": "/"})  # creates a pre-login session
    planted = victim.cookies.get("kt_session")
    assert planted
    r = victim.form("/login", {"email": http.email, "password": http.password})
    assert r.status_code == 303
    assert victim.cookies.get("kt_session") != planted
    attacker = make_http()
    attacker.cookies.set("kt_session", planted)
    assert attacker.get("/companies").status_code == 303  # the planted id carries no login


def test_post_without_csrf_token_is_refused(http: Browser) -> None:
    http.get("/login")
    r = http.post("/login", data={"email": "a@example.com", "password": "x"})
    assert r.status_code == 403


def test_cross_site_post_is_refused_even_with_a_token(http: Browser) -> None:
    token = http.csrf()
    r = http.post("/login", data={"email": "a@example.com", "password": "x", "_csrf_token": token},
                     headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = http.post("/login", data={"email": "a@example.com", "password": "x", "_csrf_token": token},
                     headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_password_reset_by_email(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Reset Co")
    stranger = make_http()
    r = stranger.form("/forgot", {"email": http.email})
    assert r.status_code == 303
    path = link_in(latest_mail(db_url, http.email), "reset")
    assert stranger.get(path).status_code == 200
    r = stranger.form(path, {"password": "brand new pass 2"})
    assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/"
    assert stranger.get(path).status_code == 404  # links work once
    fresh = make_http()
    assert fresh.form("/login", {"email": http.email, "password": http.password}).status_code == 401
    assert fresh.form("/login", {"email": http.email, "password": "brand new pass 2"}).status_code == 303


def test_reset_for_unknown_email_says_the_same_and_sends_nothing(http: Browser, db_url: str) -> None:
    r = http.form("/forgot", {"email": "nobody-here@example.com"})
    assert r.status_code == 303
    assert latest_mail(db_url, "nobody-here@example.com") is None


def test_invitation_with_a_role(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Invite Co")
    r = http.form(f"/t/{slug}/team/invite", {"email": "newbie@example.com", "role": "marketer"})
    assert r.status_code == 303
    assert "newbie@example.com" in http.get(f"/t/{slug}/team").text
    path = link_in(latest_mail(db_url, "newbie@example.com"), "invite")
    newbie = make_http()
    assert "Invite Co" in newbie.get(path).text
    r = newbie.form(path, {"name": "New Person", "password": "newbie pass 1"})
    assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/"
    page = newbie.get(f"/t/{slug}/")
    assert page.status_code == 200 and "marketer" in page.text
    assert newbie.get(f"/t/{slug}/team").status_code == 403  # a marketer cannot manage the team
    assert newbie.get(path).status_code == 404  # used once


def test_invitation_for_another_address_cannot_be_taken(http: Browser, make_http, db_url: str) -> None:
    slug = http.signup("Bound Invite Co")
    http.form(f"/t/{slug}/team/invite", {"email": "intended@example.com", "role": "viewer"})
    path = link_in(latest_mail(db_url, "intended@example.com"), "invite")
    intruder = make_http()
    intruder.signup("Intruder Co")
    r = intruder.form(path, {})
    assert r.status_code == 422 and "another email address" in r.text
    assert intruder.get(f"/t/{slug}/").status_code == 404


def test_user_with_several_companies_sees_a_switcher(http: Browser, db_url: str) -> None:
    first = http.signup("Alpha Co")
    http.get(link_in(latest_mail(db_url, http.email), "confirm"))  # a second company needs a confirmed address
    r = http.form("/companies", {"company": "Beta Co"})
    second = r.headers["location"].split("/")[2]
    page = http.get(f"/t/{first}/").text
    assert f"/t/{second}/" in page and "Beta Co" in page


def test_only_local_next_after_login(http: Browser, make_http) -> None:
    http.signup("Next Co")
    other = make_http()
    r = other.form("/login", {"email": http.email, "password": http.password, "next": "//evil.example/x"})
    assert r.status_code == 303 and not r.headers["location"].startswith("//")


def test_a_password_hashed_with_other_parameters_is_rehashed_at_sign_in(http: Browser, db_url: str) -> None:
    """Hashes from before the parameters changed (argon2-cffi's defaults) still sign in, and are
    replaced by one with today's parameters; a wrong password changes nothing."""
    from argon2 import PasswordHasher

    from saas.core.web.security import ARGON2
    from testkit import sql

    slug = http.signup("Rehash Co")
    http.form("/logout")
    old = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash(http.password)
    sql(db_url, "UPDATE shared.users SET password_hash = :h WHERE email = :e", {"h": old, "e": http.email})

    assert http.form("/login", {"email": http.email, "password": "wrong horse 2"}).status_code != 303
    assert sql(db_url, "SELECT password_hash FROM shared.users WHERE email = :e", {"e": http.email})[0][0] == old

    r = http.form("/login", {"email": http.email, "password": http.password})
    assert r.status_code == 303 and r.headers["location"] == f"/t/{slug}/"
    stored = sql(db_url, "SELECT password_hash FROM shared.users WHERE email = :e", {"e": http.email})[0][0]
    assert stored != old
    assert f"$m={ARGON2['memory_cost']},t={ARGON2['time_cost']},p={ARGON2['parallelism']}$" in stored
    assert PasswordHasher().verify(stored, http.password)  # the same password, new parameters
