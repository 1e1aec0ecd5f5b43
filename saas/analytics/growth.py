"""Client base growth per year (and month), the average annual growth rate, and cohorts.

A client is *active* in a period if they bought in it. Per period: *new* bought for the first
time; *retained* were active in the previous period too; *reactivated* came back after a gap;
*lost* were active in the previous period but not in this one. Net growth = active − previous
active = new + reactivated − lost.

The average annual growth rate is shown two ways, over complete years only:
- CAGR: (active in the last complete year / active in the first) ^ (1 / years between) − 1;
- the arithmetic mean of the yearly rates (active / previous active − 1).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Period:
    key: int  # a year, or year * 12 + month - 1
    active: int
    new: int
    retained: int
    reactivated: int
    lost: int = 0
    net: int = 0
    rate: float | None = None


def periods(rows: list[tuple[int, int, int, int, int]]) -> list[Period]:
    """rows: (key, active, new, retained, reactivated), sorted by key; gaps are filled with zeros."""
    if not rows:
        return []
    by_key = {r[0]: r for r in rows}
    out: list[Period] = []
    for key in range(rows[0][0], rows[-1][0] + 1):
        _k, active, new, retained, reactivated = by_key.get(key, (key, 0, 0, 0, 0))
        p = Period(key, active, new, retained, reactivated)
        if out:
            prev = out[-1]
            p.lost = prev.active - retained
            p.net = active - prev.active
            p.rate = (active / prev.active - 1) if prev.active else None
        else:
            p.net = active
        out.append(p)
    return out


@dataclass
class GrowthSummary:
    cagr: float | None
    mean_rate: float | None
    first_year: int | None
    last_year: int | None


def summary(years: list[Period], current_year: int) -> GrowthSummary:
    """CAGR and mean yearly rate over complete years (the current year is still running)."""
    complete = [p for p in years if p.key < current_year]
    if len(complete) < 2 or complete[0].active == 0:
        return GrowthSummary(None, None, None, None)
    first, last = complete[0], complete[-1]
    span = last.key - first.key
    cagr = (last.active / first.active) ** (1 / span) - 1 if last.active > 0 else -1.0
    rates = [p.rate for p in complete[1:] if p.rate is not None]
    return GrowthSummary(cagr, sum(rates) / len(rates) if rates else None, first.key, last.key)


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
