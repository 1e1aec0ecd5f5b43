"""The one clock of the product: every "now" and "today" in `saas/` comes from here.

Why one place: the analytics, the demo's history, overdue payments, expiry of links and exports
all depend on the date, and a test must be able to run them on any date (a leap day, the last hour
of a year) without patching a dozen modules. `frozen(at)` pins the clock for a block; the
environment variable KARTOTEKA_NOW (ISO 8601) pins it for a whole process and its children, for
servers started by tests. Under `faketime` the real clock is shifted and this follows it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

_pinned: datetime | None = None


def _parse(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def now() -> datetime:
    """The current moment, timezone-aware (UTC)."""
    if _pinned is not None:
        return _pinned
    env = os.environ.get("KARTOTEKA_NOW")
    return _parse(env) if env else datetime.now(UTC)


def today() -> date:
    """Today's date in UTC: the calendar day the product's figures are computed for."""
    return now().date()


def timestamp() -> float:
    """Seconds since the epoch, for session and throttling timers."""
    return now().timestamp()


@contextmanager
def frozen(at: datetime | date | str) -> Iterator[datetime]:
    """Pin the clock to `at` inside the block (a date means its noon, UTC)."""
    global _pinned
    if isinstance(at, str):
        at = _parse(at)
    elif not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day, 12, tzinfo=UTC)
    elif at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    previous, _pinned = _pinned, at
    try:
        yield at
    finally:
        _pinned = previous
