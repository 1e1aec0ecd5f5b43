"""Per-client payment sums for the reliability score (reliability.FIELDS): SQL fragments of the
statistics pass (statistics.py), so operations are read once for every figure of the refresh.

Each due payment's amount a, days beyond terms d and recency weight w = 0.5 ^ (days since due /
half-life) are computed once per operation row (ROW_COLUMNS, then WEIGHT over them) and summed per
client (AGGREGATES), so Python only divides (see reliability.py for the formula). `$1` is today.
"""
from __future__ import annotations

from saas.analytics.reliability import HALF_LIFE_DAYS, TERMS_FULL_DAYS

# Per operation. a, d and age are computed only where there is a due date (the cast of a numeric
# amount to float8 is the costly part of a row).
ROW_COLUMNS = """
    kind <> 'return' AND due_on IS NOT NULL AND (paid_on IS NOT NULL OR due_on < $1::date) AS due,
    paid_on IS NULL AS unpaid,
    CASE WHEN due_on IS NOT NULL THEN greatest(amount, 0)::float8 END AS a,
    CASE WHEN due_on IS NOT NULL
         THEN greatest(least(coalesce(paid_on, $1::date), $1::date) - due_on, 0)::float8 END AS d,
    CASE WHEN due_on IS NOT NULL THEN greatest($1::date - due_on, 0)::float8 END AS age"""
WEIGHT = f"CASE WHEN due THEN power(0.5, age / {HALF_LIFE_DAYS!r}::float8) END AS w"
_CAP = f"{TERMS_FULL_DAYS!r}::float8"
# Per client, in reliability.FIELDS order: (name, aggregate, SQL type of the output column).
AGGREGATES = (
    ("payments", "count(*) FILTER (WHERE due)", "int4"),
    ("late", "count(*) FILTER (WHERE due AND d > 0)", "int4"),
    ("wa", "sum(w * a) FILTER (WHERE due)", "float8"),
    ("wa_terms", f"sum(w * a * least(d, {_CAP})) FILTER (WHERE due)", "float8"),
    ("wa_days", "sum(w * a * d) FILTER (WHERE due)", "float8"),
    ("w", "sum(w) FILTER (WHERE due)", "float8"),
    ("w_terms", f"sum(w * least(d, {_CAP})) FILTER (WHERE due)", "float8"),
    ("w_days", "sum(w * d) FILTER (WHERE due)", "float8"),
    ("due_amount", "sum(a) FILTER (WHERE due)", "float8"),
    ("overdue", "sum(a) FILTER (WHERE due AND unpaid)", "float8"),
    ("overdue_days", "sum(a * age) FILTER (WHERE due AND unpaid)", "float8"),
    ("overdue_items", "count(*) FILTER (WHERE due AND unpaid)", "int4"),
    ("returns", "count(*) FILTER (WHERE returned)", "int4"),
    ("deals", "count(*) FILTER (WHERE bought)", "int4"),
)
