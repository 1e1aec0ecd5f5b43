"""The phone and e-mail shortcuts never disagree with the libraries they stand in for."""
from __future__ import annotations

import random

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from saas.clients import contacts


def library_phone(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value.strip(), "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def library_email(value: str) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def spellings(rnd: random.Random, digits: str) -> list[str]:
    d = digits
    return [f"+7{d}", f"8{d}", f"7{d}", d, f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}", f"+7 {d[:3]} {d[3:6]} {d[6:]}",
            f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}", f"+7({d[:3]}){d[3:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}",
            f"+7{d}0", f"+7{d[:-1]}", f"9{d}", f"+8{d}", f"7 7{d}", f" +7{d} "]


def test_phone_shortcut_agrees_with_phonenumbers_on_every_mobile_range() -> None:
    rnd = random.Random(7)
    # Every 9xx code and, for the codes the library splits finely (930…), every 4-digit prefix.
    prefixes = [f"9{a:02d}" for a in range(100)] + [f"930{b}" for b in range(10)] + [f"9300{b}" for b in range(10)]
    checked = shortcut = 0
    for prefix in prefixes:
        for _ in range(12):
            digits = prefix + "".join(rnd.choice("0123456789") for _ in range(10 - len(prefix)))
            for value in spellings(rnd, digits):
                quick = contacts._phone_shortcut(value.strip(), "RU")
                truth = library_phone(value)
                if quick is not None:
                    shortcut += 1
                    assert quick == truth, value
                if truth is None:
                    with pytest.raises(ValueError):
                        contacts.normalise_phone(value)
                else:
                    assert contacts.normalise_phone(value) == truth
                checked += 1
    assert shortcut > checked // 3  # the shortcut really carries the common spellings


def test_phone_shortcut_is_only_for_russia() -> None:
    assert contacts._phone_shortcut("+79161234567", "KZ") is None
    assert contacts.normalise_phone("+79161234567", "KZ") == "+79161234567"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="+78 9()-.0123456", max_size=18))
def test_phone_shortcut_never_accepts_what_the_library_refuses(value: str) -> None:
    quick = contacts._phone_shortcut(value.strip(), "RU")
    if quick is not None:
        assert quick == library_phone(value)


EMAIL_ALPHABET = "aZ09._+-@'!#é.-" + "".join(chr(c) for c in (0x0430, 0x2024, 0xFF0E))


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=EMAIL_ALPHABET, max_size=24), st.sampled_from(
    ["example.com", "mail.ru", "a.b.co", "x--y.com", "xn--80ak6aa92e.com", "localhost", "site.test", "a.invalid",
     "-bad.com", "bad-.com", "1.2.3.4", "yandex.ru.", "", "ya.r", "sub.domain-name.org", "host.onion"]))
def test_email_shortcut_never_disagrees_with_email_validator(local: str, domain: str) -> None:
    value = f"{local}@{domain}" if "@" not in local else local
    quick = contacts._email_shortcut(value)
    if quick is not None:
        assert quick == library_email(value), value


@pytest.mark.parametrize("value", [
    "Ivan.Petrov@Example.COM", "a+b_c-d@mail.ru", "x@sub.domain-name.org", "USER.1234@yandex.ru"])
def test_email_shortcut_takes_the_common_addresses(value: str) -> None:
    assert contacts._email_shortcut(value) == library_email(value) == value.lower()


@pytest.mark.parametrize("value", ["a..b@mail.ru", "a@b", "a@mail.test", "a@localhost", ".a@mail.ru", "a.@mail.ru",
                                   "a@ab--c.ru", "a@-mail.ru", "a" * 65 + "@mail.ru", "a@" + "b" * 64 + ".ru"])
def test_email_shortcut_leaves_the_odd_ones_to_the_library(value: str) -> None:
    assert contacts._email_shortcut(value) is None
    truth = library_email(value)
    if truth is None:
        with pytest.raises(ValueError, match="Not a valid email"):
            contacts.normalise_email(value)
    else:
        assert contacts.normalise_email(value) == truth
