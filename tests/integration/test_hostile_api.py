"""Schemathesis against the live server's own OpenAPI document, with an owner token.

Every API operation gets generated requests (valid and invalid: schemathesis' positive and negative
modes, its coverage phase of boundary values, then random fuzzing), and every answer must be no 5xx,
a status code the document declares, and a body that matches the declared schema. Path ids are
mapped onto the tenant's real objects for part of the cases, so the happy paths run too, not only
404s. The number of requests is counted, printed and checked at the end of the module.
"""
from __future__ import annotations

import collections

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS

import testkit
from testkit import Browser, cli

MAX_EXAMPLES = 10  # per operation in the fuzzing phase: the module takes about 30 s on two cores
# Every check schemathesis has, but two: positive_data_acceptance expects any schema-valid body to be
# accepted, while a string field may still hold a bad phone or date (a 422 with the field's message);
# allow_header_conformance trips on Litestar's automatic OPTIONS answer, which lists only the methods of
# the first handler on a path (OPTIONS is no part of this API; no browser calls it cross-origin).
EXCLUDED = ["positive_data_acceptance", "allow_header_conformance"]
SENT: collections.Counter[str] = collections.Counter()  # "METHOD /path" -> requests sent by the cases
STATUSES: collections.Counter[int] = collections.Counter()  # every request, the checks' own included
IDS = ("client_id", "operation_id", "campaign_id", "import_id")


@pytest.fixture(scope="module")
def tenant(base_url: str) -> dict:
    """An owner token and one real object of each kind the paths name."""
    b = Browser(base_url)
    slug = b.signup("Fuzz Co")
    token = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", "fuzz").stdout.strip()
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = api.post("/api/v1/clients", json={"last_name": "Real", "first_name": "Client",
                                                "phone": "+79161234567"}).json()
    op = api.post(f"/api/v1/clients/{client['id']}/operations",
                  json={"kind": "sale", "occurred_on": "2024-01-02", "amount": "10.00"}).json()
    campaign = api.post("/api/v1/campaigns", json={"name": "Real campaign"}).json()
    imp = api.post("/api/v1/imports", files={"file": ("c.csv", b"Name;Phone\nIvanov Ivan;+79161112233\n")},
                   data={"kind": "clients"})
    assert imp.status_code == 202, imp.text
    ids = {"client_id": client["id"], "operation_id": op["id"], "campaign_id": campaign["id"],
           "import_id": imp.json()["id"]}
    yield {"token": token, "ids": ids}
    api.close()
    b.close()


def _document() -> dict:
    """The app's OpenAPI document, built at collection time (no server yet); the last test checks
    that the live server serves the same one. (schemathesis' lazy `from_fixture` loader does not work
    with pytest 9.2: it writes a private node attribute that is gone.)"""
    from litestar.serialization import decode_json, encode_json

    from saas.app import create_app

    testkit.prepare()  # the app factory needs the run's settings; testkit prepares them on first use
    return decode_json(encode_json(create_app().app.openapi_schema.to_schema()))


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.update(base_url=f"http://127.0.0.1:{testkit.PORT}")
# Unknown query parameters are ignored, as HTTP APIs do; the document cannot forbid them.
schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_extra_parameters=False)


@schema.hook("after_call")
def _count(context, case, response) -> None:
    STATUSES[response.status_code] += 1


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_within_its_schema(case, tenant: dict) -> None:
    # Even ids become the tenant's real object of that kind, so the happy paths run too.
    for name in IDS:
        value = case.path_parameters.get(name) if case.path_parameters else None
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = tenant["ids"][name]
    response = case.call(headers={"Authorization": f"Bearer {tenant['token']}"})
    SENT[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    case.validate_response(response, excluded_checks=CHECKS.get_by_names(EXCLUDED))


def test_the_fuzzing_reached_every_operation(base_url: str, capsys: pytest.CaptureFixture) -> None:
    assert httpx.get(f"{base_url}/api/openapi.json").json() == DOCUMENT
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()}
    total = sum(STATUSES.values())
    line = (f"schemathesis: {total} requests over {len(SENT)} of {len(operations)} operations; "
            f"statuses {dict(sorted(STATUSES.items()))}")
    with capsys.disabled():
        print(f"\n{line}\n{dict(sorted(SENT.items()))}")
    assert set(SENT) == operations, operations - set(SENT)
    assert all(status < 500 for status in STATUSES)
    assert sum(SENT.values()) >= 10 * len(operations)
