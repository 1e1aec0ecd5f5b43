"""The one gate for every redirect target: a same-origin path, rebuilt by the server.

Browsers "repair" what they are given before they follow it: they drop tabs and newlines, read a
backslash as a slash, and treat `//host` as another site. So `/\tevil.example` or `/\\evil.example`
would leave our origin although they start with one slash. We refuse any control character or
backslash outright, refuse anything with a scheme or a host, and send back a re-encoded path that
no browser can read as another origin (the header then also stays plain ASCII).
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

# What may stay literal in each part; everything else is percent-encoded ("%" stays, so an
# already encoded path is not encoded twice).
_PATH_SAFE = "/%-._~!$&'()*+,;=:@"
_QUERY_SAFE = _PATH_SAFE + "?"


def safe_path(value: object, default: str = "/") -> str:
    """`value` as a local path ("/…"), or `default` when it is anything else."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return default
    if "\\" in value or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//"):
        return default
    path = quote(parts.path, safe=_PATH_SAFE)
    if not path.startswith("/") or path.startswith("//"):
        return default
    rebuilt = urlunsplit(("", "", path, quote(parts.query, safe=_QUERY_SAFE), quote(parts.fragment, safe=_QUERY_SAFE)))
    return rebuilt if urlsplit(rebuilt).netloc == "" else default
