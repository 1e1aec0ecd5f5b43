"""The operation form on a card says what a negative amount means: with the kind Sale it is refused
with the sentence that tells how to record a return (the form keeps what was typed); with the kind
Return it is recorded as a return of that amount. The same rule as the import's (saas/clients/rules.py)."""
from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect

from e2e.test_clients import ANNA, add_operation, create_client, shot
from e2e.test_foundation import signup
from saas.core import clock


def test_a_negative_amount_is_a_return_or_is_refused_saying_so(page: Page) -> None:
    signup(page)
    create_client(page, ANNA)
    day = clock.today() - timedelta(days=3)

    add_operation(page, "sale", day, "-500")
    errors = page.locator("#operations .op-errors")
    expect(errors).to_have_text(
        "A negative amount means a return: choose the kind Return, or enter the amount without a minus.")
    form = page.locator("#operations form.op-form").first
    expect(form.get_by_label("Amount")).to_have_value("-500")  # kept, to be corrected
    expect(page.locator("#operations tr.op-sale, #operations tr.op-return")).to_have_count(0)
    shot(page, "operation-form-negative-sale-refused")

    add_operation(page, "return", day, "-500")
    ret = page.locator("#operations tr.op-return")
    expect(ret).to_have_count(1)
    expect(ret.locator("td.num")).to_have_text(re.compile(r"^−RUB500\.00$"))
    expect(page.locator("#operations .op-errors")).to_have_count(0)
    expect(page.locator("[data-metric=deals]")).to_have_text("0")  # a return is not a deal
    expect(page.locator("[data-metric=revenue]")).to_have_text(re.compile(r"^\s*[-−]\s?RUB\s?500\.00\s*$"))
