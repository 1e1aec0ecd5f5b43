"""The validation page's model details in the reader's language (issue 19): a rejected fit's reason
and its numbers are stored as a code and facts, and the page says them through the catalog in the
Russian number format; records stored before the codes (English words, an English detail line)
read the same; the English page still says it in English.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from saas.analytics import btyd, present, selection, validation
from saas.analytics.models import Setting
from saas.analytics.scoring import refresh
from saas.core.db import Database
from saas.core.i18n import set_locale
from testkit import Browser, sql, with_database
from tests.integration import companies
from tests.integration.test_russian_everywhere import DECIMAL_POINT, _Visible, problems

TODAY = date(2026, 6, 30)
# 150 simulated clients over two years: a model is chosen, and on this history the BG/NBD fit is
# rejected (its a and b are not identified: standard errors of ln a, ln b near 19).
WITH_A_MODEL = companies.pareto_company(150, seed=3, history_days=2 * 365)
# Clockwork buyers who never leave: every model runs to the edge of its range (r ≈ 10¹¹), so rules.
CLOCKWORK = companies.rows_company(200, [(i, d, 100.0, "sale") for i in range(200) for d in range(i % 7, 365, 7)])
# What people typed, shown as typed (the sign-up's name and the companies')
TYPED = ("Test Owner", "Validation RU", "Clockwork RU", "Old Records RU")
ENGLISH_REASON_WORDS = ("Hessian", "likelihood", "gradient", "optimiser", "identified", "SE(log", "parameter")


def _schema(db_url: str, slug: str) -> str:
    return sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


def _refresh(db_url: str, schema: str, company: companies.Company) -> dict[str, Any]:
    async def go(db: Database) -> dict[str, Any]:
        await companies.write(db, schema, company, TODAY)
        async with db.session(schema) as s:
            await refresh(s, today=TODAY)
        async with db.session(schema) as s:
            return {key: (await s.get(Setting, key)).value for key in ("scoring", "backtest")}

    return with_database(db_url, go)


def _company(base_url: str, db_url: str, name: str,
             company: companies.Company | None) -> tuple[Browser, str, str, dict]:
    b = Browser(base_url)
    slug = b.signup(name)
    assert b.get(f"/t/{slug}/").status_code == 200  # the welcome flash (in the sign-up's English) is shown here
    schema = _schema(db_url, slug)
    stored = _refresh(db_url, schema, company) if company is not None else {}
    return b, slug, schema, stored


def _page(b: Browser, slug: str, lang: str) -> str:
    assert b.form("/lang", {"lang": lang, "next": "/"}).status_code == 303
    r = b.get(f"/t/{slug}/analytics/validation")
    assert r.status_code == 200, r.text[:500]
    return r.text


def _models_table(html: str) -> str:
    """The visible text of the table of fitted models."""
    table = re.search(r'<table class="table small models">.*?</table>', html, re.DOTALL)
    assert table, "no table of models on the page"
    seen = _Visible()
    seen.feed(table.group(0))
    return " ".join(seen.text)


def _rejected(stored: dict) -> list[dict]:
    bt = stored["backtest"]
    return [r for r in bt.get("candidates", []) + bt.get("refits", []) if not r["usable"]]


@pytest.fixture(scope="module")
def with_a_model(base_url: str, db_url: str):
    b, slug, _schema_name, stored = _company(base_url, db_url, "Validation RU", WITH_A_MODEL)
    yield b, slug, stored
    b.close()


def test_the_refresh_stores_codes_and_numbers(with_a_model) -> None:
    _b, _slug, stored = with_a_model
    rejected = _rejected(stored)
    assert stored["scoring"]["method"] != "rules" and rejected  # the page under test has both
    for record in rejected:
        assert record["reason"] in selection.REASONS, record  # a code, not words
        assert record["facts"], record
    loose = next(r for r in rejected if r["reason"] == btyd.NOT_IDENTIFIED)
    assert all(isinstance(v, float) and v > btyd.MAX_LOG_SE for v in loose["facts"]["se_log"].values()), loose
    assert stored["scoring"]["spend_note"] in selection.REASONS  # the spend model's reason: a code too


def test_the_russian_page_says_rejections_in_russian_with_decimal_commas(with_a_model) -> None:
    b, slug, stored = with_a_model
    html = _page(b, slug, "ru")
    assert problems(html, data=TYPED) == []  # no English words, msgids, raw codes, decimal points or 1e+19
    table = _models_table(html)
    assert "отклонена" in table
    assert "Правдоподобие плоское по какому-то направлению" in table
    assert "стандартная ошибка ln" in table
    assert not [w for w in ENGLISH_REASON_WORDS if w in table], table
    assert not DECIMAL_POINT.search(table) and re.search(r"\d,\d", table), table  # decimal commas
    record = next(r for r in _rejected(stored) if r["reason"] == btyd.NOT_IDENTIFIED)
    for value in record["facts"]["se_log"].values():
        assert present.significant(value, 3).replace("\xa0", " ") in table.replace("\xa0", " ")
    # the spend model's reason, below the CLV formula
    set_locale("ru")
    try:
        spend = present.fit_reason(stored["scoring"]["spend_note"])
    finally:
        set_locale("en")
    assert spend != selection.REASONS[stored["scoring"]["spend_note"]] and spend in html


def test_the_english_page_still_reads_right(with_a_model) -> None:
    b, slug, stored = with_a_model
    html = _page(b, slug, "en")
    table = _models_table(html)
    assert "rejected" in table
    assert "The likelihood is flat in some direction: the parameters are not identified." in table
    assert re.search(r"standard error of ln a: \d+(\.\d+)?", table), table
    assert not re.search(r"[а-яё]", table, re.IGNORECASE), table
    assert selection.REASONS[stored["scoring"]["spend_note"]] in html
    assert "none_usable" not in html and "not_identified" not in html  # never the codes


def test_a_company_on_rules_says_why_in_russian(base_url: str, db_url: str) -> None:
    b, slug, _schema_name, stored = _company(base_url, db_url, "Clockwork RU", CLOCKWORK)
    assert stored["scoring"]["method"] == "rules" and stored["scoring"]["reason"] == selection.NONE_USABLE
    # Clockwork purchases drive the fits to the edge of their range; where an optimiser stops just
    # short of it depends on the machine's floating point (this machine: one candidate "did not
    # converge"). Either way each is rejected with its reason, which the page gives in Russian.
    reasons = {r["reason"] for r in _rejected(stored)}
    assert btyd.AT_BOUNDARY in reasons and reasons <= {btyd.AT_BOUNDARY, btyd.NOT_CONVERGED}, reasons
    html = _page(b, slug, "ru")
    assert problems(html, data=TYPED) == []
    assert "Причина: Ни одна модель покупок не подходит к этим данным." in html
    table = _models_table(html)
    assert "× 10" in table and not re.search(r"\de[+-]\d", table), table  # r ≈ 1,64 × 10¹¹, never 1.64e+11
    b.close()


def _as_stored_before_codes(stored: dict) -> dict:
    """The same records as an older version kept them: English words for reasons, English detail
    lines and no facts."""
    def old(record: dict) -> dict:
        out = {k: v for k, v in record.items() if k != "facts"}
        out["reason"] = selection.reason_text(record.get("reason"))
        return out

    bt = dict(stored["backtest"])
    bt["candidates"] = [old(r) for r in bt.get("candidates", [])]
    bt["refits"] = [old(r) for r in bt.get("refits", [])]
    scoring = {**stored["scoring"], "spend_note": selection.reason_text(stored["scoring"].get("spend_note")),
               "reason": selection.reason_text(stored["scoring"].get("reason"))}
    return {"backtest": bt, "scoring": scoring}


def test_records_stored_before_the_codes_read_the_same(base_url: str, db_url: str, with_a_model) -> None:
    _b, slug, stored = with_a_model
    b, old_slug, schema, _nothing = _company(base_url, db_url, "Old Records RU", None)
    old = _as_stored_before_codes(stored)
    assert old["backtest"]["candidates"][0].get("facts") is None
    assert any(r["reason"].startswith("The likelihood is flat") for r in _rejected(old))

    async def store(db: Database) -> None:
        async with db.session(schema) as s:
            for key, value in old.items():
                s.add(Setting(key=key, value=value))

    with_database(db_url, store)
    for lang in ("ru", "en"):
        now, before = _models_table(_page(_b, slug, lang)), _models_table(_page(b, old_slug, lang))
        assert before == now, lang
    assert problems(_page(b, old_slug, "ru"), data=TYPED) == []
    b.close()


def test_old_detail_lines_read_back_and_unknown_ones_stay_as_they_are() -> None:
    set_locale("ru")
    try:
        assert validation.fit_detail({"detail": "r = 2.7e+19, alpha = 1e-07"}) == "r = 2,7 × 10¹⁹; α = 1 × 10⁻⁷"
        assert validation.fit_detail({"detail": "q = 0.85"}) == "q = 0,85"
        assert validation.fit_detail({"detail": "LL = nan"}) == "логарифм правдоподобия: не конечное число"
        assert validation.fit_detail({"detail": "gradient 0.0023; ABNORMAL_TERMINATION_IN_LNSRCH"}) == \
            "градиент в точке остановки оптимизатора: 2,3 × 10⁻³"
        assert validation.fit_detail({"detail": "the Hessian is not positive definite"}) == \
            "матрица Гессе не положительно определена"
        assert validation.fit_detail({"detail": "something, else entirely"}) == "something, else entirely"
        # a reason no longer known is shown as it was stored; a known one, old or new, in Russian
        assert present.fit_reason("A reason from a future version.") == "A reason from a future version."
        assert present.fit_reason(btyd.REASONS[btyd.NOT_CONVERGED]) == present.fit_reason(btyd.NOT_CONVERGED) \
            == "Оптимизация не сошлась."
        assert present.fit_reason(None) == ""
    finally:
        set_locale("en")


def test_the_cli_words_stay_english() -> None:
    """Logs and the CLI print the reason's English words, never its code."""
    assert selection.reason_text(selection.NO_REPEAT).startswith("No client has bought a second time")
    assert selection.reason_text(btyd.AT_BOUNDARY) == btyd.REASONS[btyd.AT_BOUNDARY]
    assert selection.reason_text("Words of an older record.") == "Words of an older record."
    assert selection.reason_text(None) is None
