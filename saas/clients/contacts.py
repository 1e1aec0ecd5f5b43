"""Phones and e-mails in the one stored form, for matching: E.164 and lower-case.

`phonenumbers` and `email-validator` decide. They cost about 0.1 ms a value, which is most of the
time of a million-row import, so the overwhelmingly common shapes (a Russian mobile in any usual
spelling, a plain ASCII address) take a precompiled shortcut first. A shortcut only ever accepts
what the library would accept and returns the library's own answer; anything else goes to the
library (tests/unit/test_contacts.py checks both on generated input).
"""
from __future__ import annotations

import functools
import re

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import EMAIL_MAX_LENGTH, LOCAL_PART_MAX_LENGTH

_SEPARATORS = re.compile(r"[\s()\-.]+")
# ASCII only (re.ASCII): other scripts' digits and letters go to the libraries, and the bulk import's
# SQL (saas/clients/imports/bulk.py) mirrors these patterns exactly.
_RU_SHAPE = re.compile(r"(?:\+7|8|7)?(9\d{9})", re.ASCII)
# The library's own pattern of Russian mobile numbers: a number that matches it is valid (MOBILE).
RU_MOBILE_PATTERN = phonenumbers.PhoneMetadata.metadata_for_region("RU").mobile.national_number_pattern
_RU_MOBILE = re.compile(RU_MOBILE_PATTERN, re.ASCII)

_LOCAL = r"[a-z0-9_+]+(?:[.-][a-z0-9_+]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}[a-z0-9]|[a-z0-9]"
_PLAIN_EMAIL = re.compile(rf"({_LOCAL})@((?:(?:{_LABEL})\.)+[a-z]{{2,63}})", re.IGNORECASE | re.ASCII)
SPECIAL_DOMAINS = tuple(SPECIAL_USE_DOMAIN_NAMES)


def _phone_shortcut(value: str, region: str) -> str | None:
    if region != "RU":
        return None
    found = _RU_SHAPE.fullmatch(_SEPARATORS.sub("", value))
    if found is None or not _RU_MOBILE.fullmatch(found[1]):
        return None
    return "+7" + found[1]


def normalise_phone(value: str, region: str = "RU") -> str:
    """E.164, so the same number typed as '8 (916)…' and '+7 916…' matches one client."""
    value = (value or "").strip()
    quick = _phone_shortcut(value, region)
    if quick is not None:
        return quick
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("Not a valid phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email_shortcut(value: str) -> str | None:
    found = _PLAIN_EMAIL.fullmatch(value)
    if found is None or len(value) > EMAIL_MAX_LENGTH or len(found[1]) > LOCAL_PART_MAX_LENGTH:
        return None
    domain = found[2].lower()
    if any(domain == d or domain.endswith("." + d) for d in SPECIAL_DOMAINS):
        return None
    return value.lower()


def normalise_email(value: str) -> str:
    """Syntax only (no DNS: an import must not wait on the network), lower-cased for matching."""
    value = (value or "").strip()
    quick = _email_shortcut(value)
    if quick is not None:
        return quick
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise ValueError("Not a valid email address.") from None


_E164_RU_MOBILE = re.compile(r"\+7(9\d{2})(\d{3})(\d{2})(\d{2})", re.ASCII)


def display_phone(value: str | None) -> str:
    """The stored E.164 as people read it, in the international format ('+7 916 123-45-67').
    Russian mobiles, nearly every phone here, by a pattern (a list page shows hundreds); others
    through phonenumbers; what neither reads is shown as stored."""
    if not value:
        return ""
    found = _E164_RU_MOBILE.fullmatch(value)
    if found:
        return "+7 {} {}-{}-{}".format(*found.groups())
    return _display_other(value)


@functools.lru_cache(maxsize=4096)
def _display_other(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None if value.startswith("+") else "RU")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
