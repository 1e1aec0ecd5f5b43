"""An owner adds a "Car model" choice field; it is filled on a card, filters the list, and a saved
view of that filter is there again after logging in anew."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.test_foundation import login, logout, signup, visit


def test_car_model_field_filter_and_saved_view(page: Page) -> None:
    account = signup(page)
    base = f"/t/{account.slug}"
    # the owner defines the field (Settings → Fields)
    visit(page, f"{base}/fields")
    form = page.locator("form[action$='/fields']")
    form.locator("[name=label_ru]").fill("Модель автомобиля")
    form.locator("[name=label_en]").fill("Car model")
    form.locator("[name=type]").select_option("choice")
    form.locator("[name=options]").fill("BMW\nLada\nKia")
    form.get_by_role("button", name="Add the field").click()
    expect(page.locator("code", has_text="car_model")).to_be_visible()

    # two clients; one drives a Lada, filled in on its card's form
    for last, model in (("Petrov", "Lada"), ("Sidorov", "BMW")):
        visit(page, f"{base}/clients/new")
        page.fill("[name=last_name]", last)
        page.fill("[name=first_name]", "Ivan")
        page.select_option("[name=cf_car_model]", model)
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("h1")).to_contain_text(last)
        expect(page.locator(".facts")).to_contain_text(model)

    # filter the list by it
    visit(page, f"{base}/clients")
    page.locator("details.more-filters summary").click()
    page.select_option("select[name=cf_car_model]", "Lada")
    expect(page.locator("#rows a.client-name")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("Petrov")
    expect(page.locator("#rows")).not_to_contain_text("Sidorov")

    # save the view, log out, log in again: the view is there and still filters
    page.reload()
    page.locator("details.save-view summary").click()
    page.fill("details.save-view [name=name]", "Lada drivers")
    page.locator("details.save-view").get_by_role("button", name="Save").click()
    # the save has landed (its link is on the page) before the logout can overtake it
    expect(page.get_by_role("link", name=re.compile("Lada drivers"))).to_be_visible()
    logout(page)
    login(page, account)
    visit(page, f"{base}/clients")
    page.get_by_role("link", name=re.compile("Lada drivers")).click()
    expect(page.locator("#rows a.client-name")).to_have_count(1)
    expect(page.locator("#rows")).to_contain_text("Petrov")
