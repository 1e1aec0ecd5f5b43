"""Simulated companies with a known buying process, written into a tenant as operations rows.

`pareto_company` draws each client's history from the Pareto/NBD process (Schmittlein et al.):
purchase rate λ ~ Gamma(r, α) per week, lifetime τ ~ Exp(μ) with μ ~ Gamma(s, β), purchases a
Poisson process while alive, the first purchase at a uniform day of the history; spends from the
Gamma-Gamma process. So the truth is known, and the backtest can be judged against it.
The degenerate companies are the cases a model must refuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from saas.clients.operations import refresh_all_metrics
from saas.core.db import Database


@dataclass
class Company:
    """Operations as parallel arrays: client index (0-based), day offset before today, amount, kind."""

    clients: int
    client: np.ndarray
    days_ago: np.ndarray
    amount: np.ndarray
    kind: np.ndarray


def pareto_company(n: int, *, r: float = 0.8, alpha: float = 8.0, s: float = 0.6, beta: float = 30.0,
                   history_days: int = 3 * 365, seed: int = 1, returns: float = 0.0) -> Company:
    rng = np.random.default_rng(seed)
    first_ago = rng.integers(0, history_days, n)
    lam = rng.gamma(r, 1 / alpha, n) / 7  # per day
    mu = rng.gamma(s, 1 / beta, n) / 7
    alive_days = np.minimum(rng.exponential(1 / mu), first_ago)  # observed while alive, up to today
    repeats = rng.poisson(lam * alive_days)
    client = np.repeat(np.arange(n), repeats + 1)
    first = np.r_[True, client[1:] != client[:-1]]
    offset = np.where(first, 0.0, rng.random(len(client)) * alive_days[client])
    days_ago = first_ago[client] - np.floor(offset).astype(int)
    nu = rng.gamma(3.0, 1 / 600.0, n)  # Gamma-Gamma: mean spend 3p/(q-1)-ish around 1 500
    amount = np.round(rng.gamma(4.0, 1 / nu[client]), 2) + 1
    kind = np.where(rng.random(len(client)) < 0.15, "service", "sale").astype(object)
    if returns:
        back = rng.random(len(client)) < returns
        client = np.r_[client, client[back]]
        days_ago = np.r_[days_ago, np.maximum(days_ago[back] - 3, 0)]
        amount = np.r_[amount, np.round(amount[back] / 2, 2)]
        kind = np.r_[kind, np.full(back.sum(), "return", dtype=object)]
    return Company(n, client, days_ago, amount, kind)


def rows_company(n: int, rows: list[tuple[int, int, float, str]]) -> Company:
    """A hand-written company: (client index, days ago, amount, kind) rows."""
    a = np.array(rows, dtype=object).reshape(-1, 4)
    return Company(n, a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2].astype(float), a[:, 3])


async def write(db: Database, schema: str, company: Company, today: date) -> list[int]:
    """Insert the clients and their operations (COPY), then the kept-current metrics."""
    async with db.session(schema) as s:
        raw = (await (await s.connection()).get_raw_connection()).driver_connection
        ids = [r["id"] for r in await raw.fetch(
            "INSERT INTO clients (last_name, first_name) SELECT 'Sim', g::text FROM generate_series(1, $1) g "
            "RETURNING id", company.clients)]
        ids.sort()
        cal = {d: today - timedelta(days=int(d)) for d in np.unique(company.days_ago).tolist()}
        records = [(ids[c], k, cal[d], float(a))
                   for c, d, a, k in zip(company.client.tolist(), company.days_ago.tolist(), company.amount.tolist(),
                                         company.kind.tolist(), strict=True)]
        await raw.copy_records_to_table("operations", records=records, schema_name=schema,
                                        columns=["client_id", "kind", "occurred_on", "amount"])
        await refresh_all_metrics(s)
    return ids
