"""One rule for an operation row, whichever way it comes in: the card's form, the API, an imported
file and the restore of a company export give the same result for the same row (saved with the same
values, or refused with the same reasons), over hostile values.

Every path runs for real: the form and the API through the running app, the import and the restore
through the upload pages and the worker. Each case gets its own client on each path, so outcomes are
read back per case from the database and from the import's and the restore's reports.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile

import httpx
import pytest

from saas.backup.service import FORMAT, VERSION
from saas.core.values import formula_safe, joined
from testkit import Browser, cli, sql
from tests.integration.processes import wait_for
from tests.integration.test_clients_web import schema_of


def _joined(messages) -> str:
    """Messages shown one by one, joined as the import and the restore join theirs."""
    return joined(list(messages), lambda message, **params: message)

DAY = "01.06.2024"
FIELDS = ("kind", "occurred_on", "amount", "due_on", "paid_on", "note")
NEGATIVE = "A negative amount means a return"
POSITIVE = "The amount must be a positive number."
NOT_A_NUMBER = "Not a number"
TOO_LARGE = "The amount is too large."
BAD_KIND = "Unknown operation type"
BAD_DATE = "Not a valid date"
FUTURE = "is after today"

# (name, the row's cells, what every path must do: ("saved", kind, amount) or ("refused", a message part))
CASES = [
    ("plain sale", {"amount": "100"}, ("saved", "sale", "100.00")),
    ("minus, no kind", {"amount": "-500"}, ("saved", "return", "500.00")),
    ("minus, kind return", {"kind": "return", "amount": "-500"}, ("saved", "return", "500.00")),
    ("minus, Russian return", {"kind": "Возврат", "amount": "-7,5"}, ("saved", "return", "7.50")),
    ("minus, kind sale", {"kind": "sale", "amount": "-500"}, ("refused", NEGATIVE)),
    ("accountants' minus, service", {"kind": "service", "amount": "(1 200,50)"}, ("refused", NEGATIVE)),
    ("accountants' minus, no kind", {"amount": "(1 200,50)"}, ("saved", "return", "1200.50")),
    ("unicode minus", {"amount": "−100 ₽"}, ("saved", "return", "100.00")),
    ("minus zero", {"amount": "-0"}, ("refused", POSITIVE)),
    ("zero", {"kind": "sale", "amount": "0,00"}, ("refused", POSITIVE)),
    ("rounds to zero", {"amount": "0.004"}, ("refused", POSITIVE)),
    ("exponent", {"amount": "1e5"}, ("refused", NOT_A_NUMBER)),
    ("NaN", {"amount": "NaN"}, ("refused", NOT_A_NUMBER)),
    ("Infinity", {"amount": "-Infinity"}, ("refused", NOT_A_NUMBER)),
    ("formula amount", {"amount": "=1+1"}, ("refused", NOT_A_NUMBER)),
    ("rounds past the column", {"amount": "999999999999.995"}, ("refused", TOO_LARGE)),
    ("forty digits", {"amount": "1" * 40}, ("refused", TOO_LARGE)),
    ("the largest amount", {"amount": "999 999 999 999,99"}, ("saved", "sale", "999999999999.99")),
    ("thousands comma", {"amount": "1,234"}, ("saved", "sale", "1234.00")),
    ("Russian kind in capitals", {"kind": "ПРОДАЖА", "amount": "10"}, ("saved", "sale", "10.00")),
    ("unknown kind", {"kind": "gift", "amount": "-5"}, ("refused", BAD_KIND)),
    ("SQL in the kind", {"kind": "sale'; DROP TABLE operations; --"}, ("refused", BAD_KIND)),
    ("31 February", {"occurred_on": "31.02.2024"}, ("refused", BAD_DATE)),
    ("Excel serial date", {"occurred_on": "45292"}, ("saved", "sale", "100.00")),
    ("serial zero", {"occurred_on": "0"}, ("refused", BAD_DATE)),
    ("far future", {"occurred_on": "01.01.2999"}, ("refused", FUTURE)),
    ("no date", {"occurred_on": ""}, ("refused", "The operation date is required.")),
    ("no amount", {"amount": ""}, ("refused", "The amount is required.")),
    ("paid in the future", {"paid_on": "01.01.2999"}, ("refused", "The payment date cannot be in the future.")),
    ("due in the future", {"due_on": "01.01.2999", "paid_on": "2024-06-02"}, ("saved", "sale", "100.00")),
    ("formula note", {"note": '  =HYPERLINK("http://x","y")  '}, ("saved", "sale", "100.00")),
    ("script note", {"note": "<script>alert(1)</script>"}, ("saved", "sale", "100.00")),
    ("two-line note", {"note": "строка 1\r\nстрока 2"}, ("saved", "sale", "100.00")),
    ("long note", {"note": "д" * 3000}, ("saved", "sale", "100.00")),
    ("everything wrong", {"kind": "?", "occurred_on": "вчера", "amount": "сто", "due_on": "скоро"},
     ("refused", BAD_KIND)),
]


def row_of(cells: dict[str, str]) -> dict[str, str]:
    return {"kind": "", "occurred_on": DAY, "amount": "100", "due_on": "", "paid_on": "", "note": "", **cells}


def saved(db_url: str, schema: str, key: str, where: str, params: dict) -> dict[str, tuple]:
    """The client's `key` -> the one operation on that client, as stored."""
    rows = sql(db_url, f"""
        SELECT {key}, o.kind, o.amount::text, o.occurred_on::text, coalesce(o.due_on::text, ''),
               coalesce(o.paid_on::text, ''), coalesce(o.note, '')
        FROM "{schema}".operations o JOIN "{schema}".clients c ON c.id = o.client_id WHERE {where}""", params)
    out: dict[str, tuple] = {}
    for client_key, *values in rows:
        assert client_key not in out, f"two operations for {client_key}"
        out[client_key] = ("saved", *values)
    return out


# ---- the four paths ----------------------------------------------------------------------------


def through_the_form(owner: Browser, api: httpx.Client, slug: str) -> list[tuple]:
    out = []
    for i, (_name, cells, _expected) in enumerate(CASES):
        cid = api.post("/api/v1/clients", json={"last_name": "Форма", "first_name": str(i)}).json()["id"]
        r = owner.form(f"/t/{slug}/clients/{cid}/operations", row_of(cells))
        if r.status_code == 303:
            out.append(("saved-as", cid))
            continue
        assert r.status_code == 422, (r.status_code, r.text[:500])
        block = re.search(r'op-errors" role="alert">((?:<div>.*?</div>)*)</div>', r.text, re.S)
        assert block, r.text[:2000]
        out.append(("refused", _joined(html.unescape(m) for m in re.findall(r"<div>(.*?)</div>", block[1], re.S))))
    return out


def through_the_api(api: httpx.Client) -> list[tuple]:
    out = []
    for i, (_name, cells, _expected) in enumerate(CASES):
        cid = api.post("/api/v1/clients", json={"last_name": "Апи", "first_name": str(i)}).json()["id"]
        r = api.post(f"/api/v1/clients/{cid}/operations", json=row_of(cells))
        if r.status_code == 201:
            out.append(("saved-as", cid))
            continue
        assert r.status_code == 422, (r.status_code, r.text[:500])
        out.append(("refused", _joined(r.json()["fields"].values())))
    return out


def phone(i: int) -> str:
    return f"+7916300{i:04d}"


def through_an_import(api: httpx.Client) -> dict:
    for i in range(len(CASES)):
        assert api.post("/api/v1/clients", json={"last_name": "Импорт", "phone": phone(i)}).status_code == 201
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    writer.writerow(["Телефон", "Тип", "Дата", "Сумма", "Срок оплаты", "Дата оплаты", "Комментарий"])
    for i, (_name, cells, _expected) in enumerate(CASES):
        writer.writerow([phone(i), *row_of(cells).values()])
    mapping = {str(n): f for n, f in enumerate(("client_phone", *FIELDS))}
    r = api.post("/api/v1/imports", files={"file": ("hostile.csv", buf.getvalue().encode())},
                 data={"kind": "operations", "mapping": json.dumps(mapping)})
    assert r.status_code == 202, r.text

    def finished() -> dict | None:
        body = api.get(f"/api/v1/imports/{r.json()['id']}").json()
        return body if body["status"] in ("done", "failed") else None

    body = wait_for(finished, 90, "the import to finish", every=0.3)
    assert body["status"] == "done", body
    return body


def restore_zip() -> bytes:
    """An export as `saas/backup/service.py` writes it (cells formula-safe, a manifest naming the
    columns), with one client per case and the case's operation on it."""
    def csv_file(columns: list[str], rows: list[list[str]]) -> bytes:
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=";")
        writer.writerow(columns)
        writer.writerows([[formula_safe(cell) for cell in row] for row in rows])
        return buf.getvalue().encode("utf-8-sig")

    op_columns = ["id", "client_id", *FIELDS]
    files = {
        "clients.csv": (["id", "last_name", "first_name"], [[f"9{i}", "Архив", str(i)] for i in range(len(CASES))]),
        "operations.csv": (op_columns, [[str(i + 1), f"9{i}", *row_of(cells).values()]
                                        for i, (_n, cells, _e) in enumerate(CASES)]),
        "product_groups.csv": (["id", "name", "archived_at"], []),
        "directions.csv": (["id", "name", "archived_at"], []),
    }
    manifest = {"format": FORMAT, "version": VERSION, "passport": "full", "delimiter": ";", "encoding": "utf-8-sig",
                "totals": {"clients": len(CASES), "operations": len(CASES), "revenue": "0", "unpaid": "0"},
                "files": {name: {"columns": cols, "rows": len(rows)} for name, (cols, rows) in files.items()}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (cols, rows) in files.items():
            zf.writestr(name, csv_file(cols, rows))
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False))
    return out.getvalue()


def through_a_restore(target: Browser, db_url: str) -> tuple[str, dict]:
    slug = target.signup("Restore Rule Co")
    schema = schema_of(db_url, slug)
    sql(db_url, "UPDATE shared.tenants SET locale = 'en' WHERE slug = :s", {"s": slug})
    r = target.post(f"/t/{slug}/export/restore", files={"file": ("export.zip", restore_zip(), "application/zip")},
                    data={"_csrf_token": target.csrf()})
    assert r.status_code == 303, r.text[:500]

    def finished() -> tuple | None:
        rows = sql(db_url, f"SELECT status, result, error FROM \"{schema}\".jobs WHERE kind = 'restore'")
        return rows[0] if rows and rows[0][0] in ("done", "failed") else None

    status, result, error = wait_for(finished, 90, "the restore to finish", every=0.3)
    assert status == "done", error
    return schema, result


@pytest.fixture(scope="module")
def outcomes(base_url: str, db_url: str, worker) -> dict[str, list[tuple]]:
    with Browser(base_url) as owner, Browser(base_url) as target:
        return _outcomes(base_url, db_url, owner, target)


def _outcomes(base_url: str, db_url: str, owner: Browser, target: Browser) -> dict[str, list[tuple]]:
    slug = owner.signup("Operation Rule Co")
    schema = schema_of(db_url, slug)
    sql(db_url, "UPDATE shared.tenants SET locale = 'en' WHERE slug = :s", {"s": slug})  # the import's reports
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "rule").stdout.strip()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                      timeout=30) as api:
        form, by_api, report = through_the_form(owner, api, slug), through_the_api(api), through_an_import(api)
    stored = saved(db_url, schema, "c.id::text", "c.id::text = ANY(:ids)",
                   {"ids": [str(o[1]) for o in form + by_api if o[0] == "saved-as"]})
    form = [stored.get(str(o[1])) if o[0] == "saved-as" else o for o in form]
    by_api = [stored.get(str(o[1])) if o[0] == "saved-as" else o for o in by_api]

    imported_ops = saved(db_url, schema, "c.phone", "c.phone LIKE '+7916300%'", {})
    refused = {row["values"]["client_phone"]: ("refused", row["reason"]) for row in report["rejected_rows"]}
    imported = [imported_ops.get(phone(i)) or refused.get(phone(i)) for i in range(len(CASES))]

    restored_schema, result = through_a_restore(target, db_url)
    assert sql(db_url, f'SELECT count(*) FROM "{restored_schema}".clients')[0][0] == len(CASES)  # only ops refused
    assert {r["file"] for r in result["rejected_rows"]} <= {"operations.csv"}, result["rejected_rows"]
    restored_refused = {r["line"]: ("refused", r["reason"]) for r in result["rejected_rows"]}  # line: record + 1
    restored_ops = saved(db_url, restored_schema, "c.first_name", "c.last_name = 'Архив'", {})
    restored = [restored_ops.get(str(i)) or restored_refused.get(i + 2) for i in range(len(CASES))]
    return {"form": form, "api": by_api, "import": imported, "restore": restored}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[name for name, _c, _e in CASES])
def test_form_api_import_and_restore_agree(outcomes: dict[str, list[tuple]], index: int) -> None:
    name, cells, expected = CASES[index]
    seen = {path: results[index] for path, results in outcomes.items()}
    assert None not in seen.values(), seen  # every path accounted for the row
    assert len(set(seen.values())) == 1, (name, cells, seen)
    outcome = seen["form"]
    assert outcome[0] == expected[0], (name, outcome)
    if expected[0] == "saved":
        assert outcome[1:3] == expected[1:], (name, outcome)
        if "note" in cells:
            assert outcome[6] == cells["note"].strip()  # kept whole, as typed (a 3,000-letter note too)
    else:
        assert expected[1] in outcome[1], (name, outcome)
