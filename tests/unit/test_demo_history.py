"""The demo's generated history holds for every seed, size and date (a short demo on some dates
has an import that created nobody: that is a valid history, not a crash)."""
from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from saas.demo import _history, _imports

EDGES = [date(2028, 2, 29), date(2027, 12, 31), date(2027, 1, 1), date(2026, 12, 4), date(2026, 3, 1)]


@pytest.mark.parametrize("today", EDGES, ids=str)
@pytest.mark.parametrize("clients,years", [(1, 1), (5, 1), (30, 1), (30, 3)])
def test_every_seed_gives_a_consistent_import_history(today: date, clients: int, years: int) -> None:
    first_day = date(today.year - years, 1, 1)
    days = (today - first_day).days + 1
    start = np.datetime64(first_day, "D")
    empty_seen = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        h = _history(rng, clients, days, start)
        for imp, members in _imports(rng, h, start, "user:1"):
            lines = [row["line"] for row in imp.rejected]
            assert imp.total_rows == imp.created_count + imp.rejected_count + imp.skipped_count
            assert len(set(lines)) == len(lines) and all(2 <= n <= imp.total_rows + 1 for n in lines)
            assert imp.created_at.date() <= today
            if imp.status == "done":
                assert imp.created_count == len(members)
                empty_seen += imp.created_count == 0
    if clients == 1:
        assert empty_seen > 0  # the case that used to crash was exercised
