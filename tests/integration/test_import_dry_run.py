"""The import's dry run tries every row, not only the first ones shown (issue 19): before the run the
mapping screen says how many rows will be created, updated and rejected, with the first reasons;
the dry run writes nothing, and a new mapping is tried again in the worker."""
from __future__ import annotations

import re

import pytest

from testkit import Browser, company_with_api
from tests.integration.processes import wait_for
from tests.integration.test_imports import sql, upload, wait

LATE_BAD_LINE = 13  # the header is line 1: past the rows the page shows


@pytest.fixture(scope="module")
def company(base_url: str, worker):
    with company_with_api(base_url, "Dry Run Co", "dry") as c:
        yield c


def file_with_a_late_bad_row() -> bytes:
    rows = ["ФИО;Телефон"]
    for n in range(2, 16):  # lines 2..15
        phone = "12345" if n == LATE_BAD_LINE else f"+7916777{n:04d}"
        rows.append(f"Проверкин Клиент{n};{phone}")
    return ("\n".join(rows) + "\n").encode()


def checked(b: Browser, url: str) -> dict[str, int]:
    page = wait_for(lambda: 'data-check="rejected"' in (text := b.get(url).text) and text, 60,
                    "the dry run to finish", every=0.3)
    return {k: int(v) for k, v in re.findall(r'data-check="(\w+)"[^>]*>(\d+)<', page)} | {"page": page}


def test_the_dry_run_counts_a_bad_row_after_the_first_ten(company, db_url) -> None:
    b, slug, api = company
    # one client is there already: the file's row with that phone will update it
    wait(api, upload(api, "ФИО;Телефон\nСтарый Клиент;+79167770005\n".encode(), "first.csv")["id"])
    r = b.post(f"/t/{slug}/imports", data={"kind": "clients", "_csrf_token": b.csrf()},
               files={"file": ("late-bad-row.csv", file_with_a_late_bad_row())})
    assert r.status_code == 303
    url = r.headers["location"]
    found = checked(b, url)
    assert (found["created"], found["updated"], found["skipped"], found["rejected"]) == (12, 1, 0, 1)
    page = found["page"]
    assert "1 row will be rejected" in page
    reasons = page.split('class="table small check-reasons"')[1].split("</table>")[0]
    assert f"<td>{LATE_BAD_LINE}</td>" in reasons and "phone" in reasons.lower()
    # the dry run wrote nothing
    assert sql(db_url, slug, "SELECT count(*) FROM clients WHERE last_name = 'Проверкин'") == [(0,)]
    assert sql(db_url, slug, "SELECT first_name FROM clients WHERE phone = '+79167770005'") == [("Клиент",)]

    # without the phone column, no row is rejected and none matches: every row would be new
    r = b.form(url + "/preview", {"col_0": "full_name", "col_1": "", "match_by": "phone", "on_match": "update",
                                  "mode": "accepted"})
    assert r.status_code == 200 and 'id="import-check"' in r.text
    again = wait_for(lambda: (f := checked(b, url))["rejected"] == 0 and f, 60, "the second dry run", every=0.3)
    assert (again["created"], again["updated"]) == (14, 0)
    assert "No row will be rejected." in again["page"]

    # and the run does what the dry run said
    r = b.form(url + "/start", {"col_0": "full_name", "col_1": "phone", "match_by": "phone", "on_match": "update",
                                "mode": "accepted"})
    assert r.status_code == 303
    page = wait_for(lambda: 'data-count="rejected"' in (text := b.get(url).text) and text, 60, "the import to finish",
                    every=0.3)
    done = {k: int(v) for k, v in re.findall(r'data-count="(\w+)"[^>]*>(\d+)<', page)}
    assert (done["created"], done["updated"], done["rejected"]) == (12, 1, 1)
