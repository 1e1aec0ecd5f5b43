"""A refused sign-up keeps the page it came from (issue 19): a plain post from the landing page gets
the landing page back with the error on the form, /signup gets /signup with its layout, and htmx
swaps only the form, in Russian and in English."""
from __future__ import annotations

import secrets

import pytest

from testkit import Browser

SHORT = {"en": "The password must be at least 8 characters.", "ru": "Пароль должен быть не короче 8 символов."}
TAKEN = {"en": "This email is already registered. Log in instead.",
         "ru": "Этот адрес уже зарегистрирован. Войдите в аккаунт."}
LANDING = {"en": "Know every client. Keep the good ones.", "ru": "Знайте каждого клиента"}


def _browser(base_url: str, lang: str) -> Browser:
    b = Browser(base_url)
    b.headers["Accept-Language"] = lang
    return b


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_short_password_from_the_landing_page_keeps_the_landing_page(base_url: str, lang: str) -> None:
    with _browser(base_url, lang) as b:
        email = f"short-{secrets.token_hex(4)}@example.com"
        r = b.form("/signup", {"company": "Landing Co", "name": "Owner", "email": email, "password": "short",
                               "from": "landing"})
        assert r.status_code == 422
        page = r.text
        assert LANDING[lang] in page and 'class="hero"' in page  # the landing page, not a bare form
        assert 'class="topbar"' in page and "</footer>" in page  # with its layout
        assert SHORT[lang] in page and 'aria-invalid="true" aria-describedby="e-password"' in page
        assert f'value="{email}"' in page and 'value="Landing Co"' in page  # what was typed is kept
        assert 'name="from" value="landing"' in page  # a second try comes back here too


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_taken_email_on_the_signup_page_keeps_the_signup_page(base_url: str, lang: str) -> None:
    with _browser(base_url, lang) as owner:
        owner.signup("Taken Email Co")
        email = owner.email
    with _browser(base_url, lang) as b:
        r = b.form("/signup", {"company": "Second Co", "name": "Other", "email": email, "password": "correct horse 1"})
        assert r.status_code == 422
        assert 'class="auth card"' in r.text and 'class="topbar"' in r.text and "</footer>" in r.text
        assert LANDING[lang] not in r.text
        assert TAKEN[lang] in r.text and 'aria-describedby="e-email"' in r.text


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_htmx_swaps_only_the_form_with_the_error(base_url: str, lang: str) -> None:
    with _browser(base_url, lang) as b:
        r = b.form("/signup", {"company": "Htmx Co", "name": "Owner", "email": "htmx@example.com",
                               "password": "short", "from": "landing"},
                   headers={"HX-Request": "true", "HX-Boosted": "true"})
        assert r.status_code == 422
        # the form goes back where it was, not over the whole body (which left a bare form)
        assert r.headers["HX-Retarget"] == "#signup-form" and r.headers["HX-Reswap"] == "outerHTML"
        assert r.text.lstrip().startswith("<form") and 'id="signup-form"' in r.text
        assert SHORT[lang] in r.text and 'name="from" value="landing"' in r.text
        assert "<body" not in r.text
