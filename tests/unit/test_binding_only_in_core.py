"""Only saas/core binds a company schema or writes a schema name into SQL (issue 20): a hand-made
`set_config('search_path')` elsewhere is how one tenant once read another's rows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from saas.core.db import bind, check_schema, ident, qualified

ROOT = Path(__file__).resolve().parents[2] / "saas"
FORBIDDEN = re.compile(r"set_config\(\s*'search_path'|SET\s+(LOCAL\s+)?search_path"  # binding by hand
                       r"|\"t_[0-9{]|\"\{[a-z_.()]*schema[a-z_.()]*\}\"",  # a schema name written into SQL
                       re.IGNORECASE)


def test_no_module_outside_core_binds_or_names_a_schema() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for path in ROOT.rglob("*.py") if "core" not in path.relative_to(ROOT).parts
                 for n, line in enumerate(path.read_text().splitlines(), 1) if FORBIDDEN.search(line)]
    assert offenders == []


def test_names_are_checked_before_they_reach_sql() -> None:
    assert qualified("t_12", "clients") == '"t_12".clients' and ident("t_ab") == '"t_ab"'
    for bad in ("public", "t_1; DROP", 't_1"', "T_1", "t_"):
        with pytest.raises(ValueError):
            check_schema(bad)
    with pytest.raises(ValueError):
        qualified("t_1", 'clients"; --')


async def test_bind_refuses_a_bad_name_before_any_sql() -> None:
    class Nothing:  # any statement reaching it would fail the test differently
        async def execute(self, *a, **k):
            raise AssertionError("SQL was sent")

    with pytest.raises(ValueError):
        await bind(Nothing(), "public")  # type: ignore[arg-type]
