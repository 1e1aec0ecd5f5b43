"""The campaign builder's form (issue 19): the control group as a percent, the birthday as day and
month selects, RFM segments as checkboxes, and the stored criteria as before (old campaigns open);
a launched campaign says so instead of "ready"."""
from __future__ import annotations

import re

import httpx
import pytest

from testkit import Browser, cli, sql


def schema_of(db_url: str, slug: str) -> str:
    return sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": slug})[0][0]


@pytest.fixture(scope="module")
def company(base_url: str, db_url: str):
    b = Browser(base_url)
    slug = b.signup("Builder Form Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "bf").stdout.strip()
    api = httpx.Client(base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    yield b, slug, api, schema_of(db_url, slug)
    api.close()
    b.close()


def stored(db_url: str, schema: str, cid: int) -> tuple:
    return sql(db_url, f'SELECT criteria, control_share, status FROM "{schema}".campaigns WHERE id = :i',
               {"i": cid})[0]


def speak(b: Browser, lang: str) -> None:
    """The member's language (a signed-in member's choice wins over Accept-Language)."""
    assert b.form("/lang", {"lang": lang, "next": "/"}).status_code == 303


FORM = {"channel": "email", "groups": "1", "ranking": "clv", "frequency_days": "30"}


def test_percent_birthday_and_segments_are_stored_in_the_criteria_format(company, db_url) -> None:
    b, slug, _api, schema = company
    speak(b, "en")
    r = b.form(f"/t/{slug}/campaigns", {
        **FORM, "name": "Spring birthdays", "control_share_pct": "15",
        "g0_birthday_from_day": "1", "g0_birthday_from_month": "3",
        "g0_birthday_to_month": "4",  # a month alone: to its last day
        "g0_segments": ["champions", "at_risk"]})
    assert r.status_code == 303, r.text
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    criteria, share, _status = stored(db_url, schema, cid)
    assert criteria == {"any": [{"birthday_from": "03-01", "birthday_to": "04-30",
                                 "segments": ["champions", "at_risk"]}]}
    assert share == pytest.approx(0.15)
    page = b.get(f"/t/{slug}/campaigns/{cid}", headers={"Accept-Language": "en"}).text
    # shown again as they were chosen: 15 %, 1 March – 30 April, two segments ticked
    assert re.search(r'name="control_share_pct"[^>]*value="15"', page)
    assert re.search(r'<option value="3" selected>March</option>', page)
    assert re.search(r'<option value="30" selected>30</option>', page)
    assert re.search(r'type="checkbox" name="g0_segments" value="champions" checked', page)
    assert 'select name="g0_segments"' not in page  # no ctrl-click list any more


@pytest.mark.parametrize("lang, message", [
    ("en", "The control group share must be from 0 to 50 %."),
    ("ru", "Доля контрольной группы — от 0 до 50 %."),
])
@pytest.mark.parametrize("pct", ["60", "-5", "ten"])
def test_a_percent_outside_0_to_50_is_refused_in_words(company, lang: str, message: str, pct: str) -> None:
    b, slug, _api, _schema = company
    speak(b, lang)
    r = b.form(f"/t/{slug}/campaigns", {**FORM, "name": "Too many held out", "control_share_pct": pct})
    assert r.status_code == 422
    assert message in r.text and "0.5" not in r.text.split('id="builder"')[1].split("</section>")[0]
    # the live count says the same, not a fraction
    r = b.form(f"/t/{slug}/campaigns/preview", {**FORM, "control_share_pct": pct}, headers={"HX-Request": "true"})
    assert message in r.text and "<code>" not in r.text


def test_a_day_that_does_not_exist_is_refused_on_the_field(company) -> None:
    b, slug, _api, _schema = company
    speak(b, "en")
    r = b.form(f"/t/{slug}/campaigns", {**FORM, "name": "Leap", "g0_birthday_from_day": "30",
                                         "g0_birthday_from_month": "2"}, headers={"Accept-Language": "en"})
    assert r.status_code == 422 and "No such day of the year: 02-30" in r.text
    assert "Birthday from</strong>" in r.text  # named in words, not as any.0.birthday_from


def test_a_campaign_saved_in_the_old_format_still_opens(company, db_url) -> None:
    b, slug, api, schema = company
    speak(b, "en")
    # what the API (and the builder before) stored: "MM-DD" text and a fraction
    cid = api.post("/campaigns", json={"name": "Old style", "channel": "email", "control_share": 0.1, "criteria": {
        "any": [{"birthday_from": "12-20", "birthday_to": "01-10", "segments": ["loyal"]}]}}).json()["id"]
    page = b.get(f"/t/{slug}/campaigns/{cid}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert re.search(r'name="control_share_pct"[^>]*value="10"', page.text)
    assert '<option value="12" selected>December</option>' in page.text
    assert '<option value="20" selected>20</option>' in page.text
    # saved again from the page as it is shown: the same criteria
    r = b.form(f"/t/{slug}/campaigns/{cid}", {
        **FORM, "name": "Old style", "control_share_pct": "10", "g0_segments": "loyal",
        "g0_birthday_from_day": "20", "g0_birthday_from_month": "12",
        "g0_birthday_to_day": "10", "g0_birthday_to_month": "1"})
    assert r.status_code == 303
    assert stored(db_url, schema, cid)[:2] == (
        {"any": [{"birthday_from": "12-20", "birthday_to": "01-10", "segments": ["loyal"]}]}, pytest.approx(0.1))


@pytest.mark.parametrize("lang, ready, launched", [("en", "ready", "launched"), ("ru", "готова", "запущена")])
def test_a_launched_campaign_no_longer_says_ready(company, db_url, lang: str, ready: str, launched: str) -> None:
    b, slug, api, schema = company
    cid = api.post("/campaigns", json={"name": f"Launch {lang}", "channel": "email"}).json()["id"]
    sql(db_url, f'UPDATE "{schema}".campaigns SET status = \'ready\', built_at = now() WHERE id = :i RETURNING 1',
        {"i": cid})
    speak(b, lang)
    headers = {"Accept-Language": lang}
    badge = re.compile(r'<span class="badge\s+badge-\w+\s*">([^<]+)</span>')
    assert ready in badge.findall(b.get(f"/t/{slug}/campaigns/{cid}", headers=headers).text)
    assert b.form(f"/t/{slug}/campaigns/{cid}/launch").status_code == 303
    for path in (f"/t/{slug}/campaigns/{cid}", f"/t/{slug}/campaigns"):
        page = b.get(path, headers=headers).text
        row = page if path.endswith(str(cid)) else page.split(f"Launch {lang}</a>")[1].split("</tr>")[0]
        labels = badge.findall(row)
        assert launched in labels and ready not in labels, (path, labels)


def test_a_refused_edit_leaves_the_stored_campaign_as_it_was(company, db_url) -> None:
    b, slug, api, schema = company
    speak(b, "en")
    cid = api.post("/campaigns", json={"name": "Kept", "channel": "email", "control_share": 0.2}).json()["id"]
    r = b.form(f"/t/{slug}/campaigns/{cid}", {**FORM, "name": "", "control_share_pct": "ten"})
    assert r.status_code == 422 and "The control group share must be from 0 to 50 %." in r.text
    assert re.search(r'name="control_share_pct"[^>]*value="ten"', r.text)  # shown as typed, to be corrected
    assert sql(db_url, f'SELECT name, control_share FROM "{schema}".campaigns WHERE id = :i', {"i": cid}) == [
        ("Kept", pytest.approx(0.2))]
