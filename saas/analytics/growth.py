"""Client base growth per year and month, year to date, the average annual growth rate, and cohorts.

A client is *active* in a period if they made a purchase in it (a sale or service with a positive
amount: returns are never activity). Per period: *new* made their first purchase ever (over the
whole history, not only the window shown); *retained* were active in the previous period too;
*reactivated* came back after a gap (retained + reactivated = *returning*); *lost* were active in
the previous period but not in this one. Net growth = active − previous active = new +
reactivated − lost.

Only whole periods are compared:
- The yearly series starts at the first *complete* year: the year the history starts in, if it
  starts in January, else the next one (a history imported from November would otherwise compare
  two months with twelve). Its first year has no rate (there is nothing whole to compare with).
- The running year is partial: it has no rate in the series; instead it is compared year to date
  with the same dates of last year (1 January – today against 1 January – today a year ago), when
  last year is complete.
- The monthly series holds complete months only (the running month is left out), at most the last
  36, and never the history's first month (it could not tell new clients from old ones).
- CAGR = (active in the last complete year / active in the first complete year) ^ (1 / years
  between) − 1, and the mean of the yearly rates (active / previous active − 1) over the same
  years; both need two complete years and state the years they cover.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date


@dataclass
class Period:
    key: int  # a year, or year * 12 + month - 1
    active: int
    new: int
    retained: int
    reactivated: int
    returning: int = 0
    lost: int | None = 0
    net: int | None = 0
    rate: float | None = None
    partial: bool = False


def periods(rows: list[tuple[int, int, int, int, int]]) -> list[Period]:
    """rows: (key, active, new, retained, reactivated), sorted by key; gaps are filled with zeros."""
    if not rows:
        return []
    by_key = {r[0]: r for r in rows}
    out: list[Period] = []
    for key in range(rows[0][0], rows[-1][0] + 1):
        _k, active, new, retained, reactivated = by_key.get(key, (key, 0, 0, 0, 0))
        p = Period(key, active, new, retained, reactivated, returning=retained + reactivated)
        if out:
            prev = out[-1]
            p.lost = prev.active - retained
            p.net = active - prev.active
            p.rate = (active / prev.active - 1) if prev.active else None
        else:
            p.net = active
        out.append(p)
    return out


def first_complete_year(history_start: date) -> int:
    return history_start.year if history_start.month == 1 else history_start.year + 1


def month_key(d: date) -> int:
    return d.year * 12 + d.month - 1


def _not_compared(p: Period) -> None:
    p.lost = p.net = p.rate = None


def yearly(rows: list[tuple[int, int, int, int, int]], history_start: date, today: date) -> list[Period]:
    """Complete years from the first complete one, then the running year (partial, no rate)."""
    start = first_complete_year(history_start)
    out = [p for p in periods(rows) if p.key >= start]
    if out and out[0].key == start:
        _not_compared(out[0])  # the year before it is partial or missing
    for p in out:
        if p.key >= today.year:
            p.partial = True
            _not_compared(p)
    return out


def monthly(rows: list[tuple[int, int, int, int, int]], history_start: date, today: date,
            count: int = 36) -> list[Period]:
    """Complete months only, the last `count`, never the history's first month. `rows` should
    start a month before the window, so the window's first month has its lost clients."""
    last = month_key(today) - 1
    first = max(last - count + 1, month_key(history_start) + 1)
    return [p for p in periods(rows) if first <= p.key <= last]


def months_window(today: date, count: int = 36) -> int:
    """The first month key the SQL must return for `monthly` (one before the window)."""
    return month_key(today) - 1 - count


@dataclass
class GrowthSummary:
    cagr: float | None
    mean_rate: float | None
    first_year: int | None
    last_year: int | None
    first_active: int | None = None
    last_active: int | None = None


def summary(years: list[Period]) -> GrowthSummary:
    """CAGR and mean yearly rate over the complete years of a `yearly` series."""
    complete = [p for p in years if not p.partial]
    if len(complete) < 2 or complete[0].active == 0:
        return GrowthSummary(None, None, None, None)
    first, last = complete[0], complete[-1]
    span = last.key - first.key
    cagr = (last.active / first.active) ** (1 / span) - 1 if last.active > 0 else -1.0
    rates = [p.rate for p in complete[1:] if p.rate is not None]
    return GrowthSummary(cagr, sum(rates) / len(rates) if rates else None, first.key, last.key,
                         first.active, last.active)


def same_day_last_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def year_to_date(active: int, last_year_active: int, history_start: date, today: date) -> dict:
    """This year so far against the same dates last year; no rate when last year is not complete."""
    comparable = first_complete_year(history_start) <= today.year - 1
    rate = (active / last_year_active - 1) if comparable and last_year_active else None
    return {"year": today.year, "through": today.isoformat(), "active": active,
            "last_year_through": same_day_last_year(today).isoformat(),
            "last_year_active": last_year_active if comparable else None, "rate": rate}


def as_dicts(items: list[Period]) -> list[dict]:
    return [asdict(p) for p in items]


def cohort_matrix(rows: list[tuple[int, int, int]]) -> list[tuple[int, int, list[float]]]:
    """rows: (cohort quarter, quarters since, clients). Returns (cohort, size, shares by offset)."""
    sizes = {q0: n for q0, k, n in rows if k == 0}
    out = []
    for q0 in sorted(sizes):
        shares = [0.0] * (max(k for c, k, _n in rows if c == q0) + 1)
        for c, k, n in rows:
            if c == q0:
                shares[k] = n / sizes[q0]
        out.append((q0, sizes[q0], shares))
    return out


def quarter_label(q: int) -> str:
    return f"{q // 4} Q{q % 4 + 1}"
