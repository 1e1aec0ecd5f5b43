"""Property: after any sequence of operation adds, edits and deletes through the API, each client's
metrics equal a recomputation from its operations (and the operations are exactly what was sent)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saas.core import clock
from testkit import Browser, cli

TODAY = clock.today()
KINDS = ("sale", "service", "return")


@pytest.fixture(scope="module")
def owner(base_url: str) -> httpx.Client:
    with Browser(base_url) as b:
        slug = b.signup("Metrics Property Co")
    r = cli("tokens", "create", "--tenant", slug, "--role", "owner", "--name", f"prop-{secrets.token_hex(3)}")
    assert r.returncode == 0, r.stderr
    with httpx.Client(base_url=base_url + "/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {r.stdout.strip()}"}) as client:
        yield client


# ---- strategies ----------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=1_000_000).map(lambda c: f"{c // 100}.{c % 100:02d}")
past_days = st.integers(min_value=0, max_value=3 * 365).map(lambda n: (TODAY - timedelta(days=n)).isoformat())
due_days = st.integers(min_value=-400, max_value=400).map(lambda n: (TODAY + timedelta(days=n)).isoformat())
# For an edit: leave out (None), clear ("") or set a date.
maybe_due = st.one_of(st.none(), st.just(""), due_days)
maybe_paid = st.one_of(st.none(), st.just(""), past_days)


@st.composite
def new_operation(draw: st.DrawFn) -> dict[str, str]:
    op = {"kind": draw(st.sampled_from(KINDS)), "occurred_on": draw(past_days), "amount": draw(amounts)}
    if draw(st.booleans()):
        op["due_on"] = draw(due_days)
    if draw(st.booleans()):
        op["paid_on"] = draw(past_days)
    return op


@st.composite
def operation_patch(draw: st.DrawFn) -> dict[str, str]:
    patch: dict[str, str] = {}
    if draw(st.booleans()):
        patch["kind"] = draw(st.sampled_from(KINDS))
    if draw(st.booleans()):
        patch["amount"] = draw(amounts)
    if draw(st.booleans()):
        patch["occurred_on"] = draw(past_days)
    for key, strategy in (("due_on", maybe_due), ("paid_on", maybe_paid)):
        value = draw(strategy)
        if value is not None:
            patch[key] = value
    return patch


actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 1), new_operation()),
        st.tuples(st.just("edit"), st.integers(0, 1), st.integers(0, 50), operation_patch()),
        st.tuples(st.just("delete"), st.integers(0, 1), st.integers(0, 50)),
    ),
    min_size=1, max_size=10,
)


# ---- the model -----------------------------------------------------------------------------


@dataclass
class Model:
    """What the operations of one client should be, as sent."""

    ops: dict[int, dict[str, Any]] = field(default_factory=dict)


def normalised(op: dict[str, Any]) -> dict[str, Any]:
    return {"kind": op["kind"], "occurred_on": op["occurred_on"], "amount": Decimal(op["amount"]),
            "due_on": op.get("due_on") or None, "paid_on": op.get("paid_on") or None}


def expected_metrics(ops: list[dict[str, Any]]) -> dict[str, Any]:
    deals = [o for o in ops if o["kind"] != "return"]
    unpaid = [o for o in deals if not o["paid_on"]]
    overdue = [o for o in unpaid if o["due_on"] and date.fromisoformat(o["due_on"]) < TODAY]
    days = [o["occurred_on"] for o in ops]
    return {
        "operations_count": len(deals),
        "revenue_total": sum((-o["amount"] if o["kind"] == "return" else o["amount"] for o in ops), Decimal(0)),
        "unpaid_total": sum((o["amount"] for o in unpaid), Decimal(0)),
        "overdue_total": sum((o["amount"] for o in overdue), Decimal(0)),
        "first_operation_on": min(days) if days else None,
        "last_operation_on": max(days) if days else None,
    }


def actual_metrics(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "operations_count": m["operations_count"],
        "revenue_total": Decimal(m["revenue_total"]),
        "unpaid_total": Decimal(m["unpaid_total"]),
        "overdue_total": Decimal(m["overdue_total"]),
        "first_operation_on": m["first_operation_on"],
        "last_operation_on": m["last_operation_on"],
    }


# ---- the property --------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=actions, two_clients=st.booleans())
def test_metrics_match_a_recomputation(owner: httpx.Client, steps: list[tuple], two_clients: bool) -> None:
    clients = []
    marker = f"p{secrets.token_hex(5)}"
    for i in range(2 if two_clients else 1):
        r = owner.post("/clients", json={"last_name": f"Метрикин {i}", "tags": [marker]})
        assert r.status_code == 201, r.text
        clients.append(r.json()["id"])
    models = {cid: Model() for cid in clients}

    for step in steps:
        cid = clients[step[1] % len(clients)]
        model = models[cid]
        if step[0] == "add":
            r = owner.post(f"/clients/{cid}/operations", json=step[2])
            assert r.status_code == 201, (step, r.text)
            model.ops[r.json()["id"]] = normalised(step[2])
        elif not model.ops:
            continue
        elif step[0] == "edit":
            op_id = sorted(model.ops)[step[2] % len(model.ops)]
            r = owner.patch(f"/operations/{op_id}", json=step[3])
            assert r.status_code == 200, (step, r.text)
            current = {**model.ops[op_id], **step[3]}
            model.ops[op_id] = normalised(current)
        else:
            op_id = sorted(model.ops)[step[2] % len(model.ops)]
            assert owner.delete(f"/operations/{op_id}").status_code == 204
            del model.ops[op_id]

    for cid in clients:
        listed = owner.get(f"/clients/{cid}/operations")
        assert listed.status_code == 200
        served = {o["id"]: normalised(o) for o in listed.json()}
        assert served == models[cid].ops  # the API kept exactly what was sent
        card = owner.get(f"/clients/{cid}")
        assert card.status_code == 200
        assert actual_metrics(card.json()["metrics"]) == expected_metrics(list(served.values())), (cid, steps)
        # The list shows the same figures as the card.
        items = owner.get("/clients", params={"tag": marker, "sort": "new"}).json()["items"]
        row = next(i for i in items if i["id"] == cid)
        assert actual_metrics(row["metrics"]) == actual_metrics(card.json()["metrics"])
