"""Operations (sales, services, returns) and the per-client metrics they keep current.

Metrics are recomputed from the client's own operations with one set-based UPDATE in the same
transaction as the write (no triggers: Citus refuses them), so they are right after every edit,
delete and import, and reading them costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import BigInteger, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import events
from saas.clients.models import Operation
from saas.clients.rules import check_operation_row, form_errors
from saas.clients.service import audit, check_dictionary_ids
from saas.core import clock
from saas.core.errors import FormError
from saas.core.i18n import _

KINDS = ("sale", "service", "return")

_RECOUNT = """
    UPDATE clients c SET
        first_operation_on = m.first_on, last_operation_on = m.last_on, operations_count = m.deals,
        revenue_total = m.revenue, unpaid_total = m.unpaid
    FROM (
        SELECT ids.id,
               min(o.occurred_on) AS first_on,
               max(o.occurred_on) AS last_on,
               count(o.id) FILTER (WHERE o.kind <> 'return') AS deals,
               coalesce(sum(CASE WHEN o.kind = 'return' THEN -o.amount ELSE o.amount END), 0) AS revenue,
               coalesce(sum(o.amount) FILTER (WHERE o.kind <> 'return' AND o.paid_on IS NULL), 0) AS unpaid{more}
        FROM unnest({ids}) AS ids(id)
        LEFT JOIN {operations} o ON o.client_id = ids.id
        GROUP BY ids.id
    ) m
    WHERE c.id = m.id{returning}"""
REFRESH_METRICS = text(_RECOUNT.format(ids=":ids", operations="operations", more="", returning="")) \
    .bindparams(bindparam("ids", type_=ARRAY(BigInteger)))

LOCK_CLIENTS = text("SELECT id FROM clients WHERE id = ANY(:ids) ORDER BY id FOR NO KEY UPDATE") \
    .bindparams(bindparam("ids", type_=ARRAY(BigInteger)))


async def refresh_metrics(db: AsyncSession, client_ids: list[int]) -> None:
    """Lock the clients first, in a statement of its own: a write that waited for another one on the
    same client then recounts under a new snapshot that includes it. (One UPDATE … FROM alone would
    wait for the row but keep the totals it computed before, and lose the other write.) NO KEY:
    compatible with the key-share lock the new operation's foreign key takes, so no deadlock.
    (A new operation takes the lock before it writes, and recounts in the same statement as the
    insert: see ADD_OPERATION.)"""
    if client_ids:
        ids = sorted(set(client_ids))
        await db.execute(LOCK_CLIENTS, {"ids": ids})
        await db.execute(REFRESH_METRICS, {"ids": ids})
        await events.operations_changed(db, ids)  # e.g. analytics re-scores them (saas.analytics.live)


LOCK_CLIENT = text("SELECT id, erased_at FROM clients WHERE id = :id FOR NO KEY UPDATE")


async def lock_client(db: AsyncSession, client_id: int) -> Any:
    """The client a new operation goes to (a user-supplied id: scoped to the bound tenant schema),
    read and locked for the write in one statement (then do_add_operation): a row with
    id and erased_at. The same 404 as service.access_client for a missing or erased client."""
    row = (await db.execute(LOCK_CLIENT, {"id": client_id})).first()
    if row is None or row.erased_at is not None:
        raise NotFoundException()
    return row


async def refresh_all_metrics(db: AsyncSession) -> None:
    """Set-based recomputation for a whole tenant (after an import or a merge)."""
    await db.execute(text("""
        UPDATE clients c SET first_operation_on = m.first_on, last_operation_on = m.last_on,
            operations_count = m.deals, revenue_total = m.revenue, unpaid_total = m.unpaid
        FROM (SELECT client_id, min(occurred_on) first_on, max(occurred_on) last_on,
                     count(*) FILTER (WHERE kind <> 'return') deals,
                     sum(CASE WHEN kind = 'return' THEN -amount ELSE amount END) revenue,
                     coalesce(sum(amount) FILTER (WHERE kind <> 'return' AND paid_on IS NULL), 0) unpaid
              FROM operations GROUP BY client_id) m
        WHERE c.id = m.client_id
          -- rewrite only the rows that change: every rewrite touches all of the clients' indexes
          AND (c.first_operation_on, c.last_operation_on, c.operations_count, c.revenue_total, c.unpaid_total)
              IS DISTINCT FROM (m.first_on, m.last_on, m.deals, m.revenue, m.unpaid)
    """))


@dataclass
class OperationInput:
    kind: str
    occurred_on: date
    amount: Decimal
    product_group_id: int | None
    direction_id: int | None
    due_on: date | None
    paid_on: date | None
    note: str | None


async def check_operation(db: AsyncSession, raw: dict[str, Any], *, today: date | None = None,
                          known: dict[str, int] | None = None) -> OperationInput:
    """Validate an operation from a form or the API; every error names its field. The row itself
    goes through the import's rules (`rules.check_operation_row`): a negative amount without a kind
    or with the kind "return" is a return of that amount, a negative sale is refused saying so.
    Only the dictionary ids, which the form sends instead of names, are checked here; `known`: ids
    the caller has just read from their table in this transaction (the API's names), not read again."""
    result = check_operation_row(raw, today=today)
    errors = form_errors(result.errors)
    ids: dict[str, int | None] = {}
    for field, kind_name in (("product_group_id", "product_groups"), ("direction_id", "directions")):
        value = raw.get(field)
        ids[field] = None
        if known and field in known and value == known[field]:
            ids[field] = known[field]
        elif value not in (None, "", 0, "0"):
            try:
                ids[field] = (await check_dictionary_ids(db, kind_name, [int(value)]))[0]
            except (FormError, ValueError):
                errors[field] = _("Choose from the list.")
    if errors:
        raise FormError(errors)
    v = result.values
    return OperationInput(v["kind"], v["occurred_on"], v["amount"], ids["product_group_id"], ids["direction_id"],
                          v.get("due_on"), v.get("paid_on"), v.get("note"))


async def access_operation(db: AsyncSession, operation_id: int, client_id: int | None = None) -> Operation:
    op = await db.get(Operation, operation_id)
    if op is None or (client_id is not None and op.client_id != client_id):
        raise NotFoundException()
    return op


async def client_operations(db: AsyncSession, client_id: int, limit: int = 500) -> list[Operation]:
    return list(await db.scalars(
        select(Operation).where(Operation.client_id == client_id)
        .order_by(Operation.occurred_on.desc(), Operation.id.desc()).limit(limit)
    ))


@dataclass
class AddedOperation(OperationInput):
    """A new operation as written, and its client's row as recounted (see ADD_OPERATION)."""

    id: int
    client_id: int
    client: Any


_NEW_ROW = "id, client_id, kind, occurred_on, amount, due_on, paid_on"
# A new operation of a client locked beforehand: the insert, its audit event (as service.audit
# writes it) and the client's recount, in one statement (the hot path of every form and API write).
# The lock was taken by an earlier statement (lock_client), so this statement's
# snapshot holds every operation committed by the writers that held it before (refresh_metrics'
# argument). On PostgreSQL the statement cannot see its own insert, so the recount adds that row
# (RETURNING) to the rows it reads, less that row should it see it (Citus): the same sums as a
# recount in a statement of its own. It returns what the card shows of the client after the write:
# its metrics, and its overdue sum today (as overdue_amounts: NULL, no row there, when none is
# overdue).
_ADD_RECOUNT = _RECOUNT.format(
    ids="ARRAY[CAST(:client_id AS bigint)]",
    # (NOT IN: on Citus a modifying CTE runs first, as a statement of its own, so the rest does see it)
    operations=f"(SELECT {_NEW_ROW} FROM operations WHERE client_id = :client_id "  # noqa: S608 - our constants
               f"AND id NOT IN (SELECT id FROM op) UNION ALL SELECT {_NEW_ROW} FROM op)",
    more=",\n               sum(o.amount) FILTER (WHERE o.kind <> 'return' AND o.paid_on IS NULL"
         " AND o.due_on < :today) AS overdue",
    returning="\n    RETURNING c.id, c.erased_at, c.first_operation_on, c.last_operation_on, c.operations_count, "
              "c.revenue_total, c.unpaid_total, m.overdue")
ADD_OPERATION = text(f"""
    WITH op AS (
        INSERT INTO operations (client_id, kind, occurred_on, amount, product_group_id, direction_id, due_on,
                                paid_on, note)
        VALUES (:client_id, :kind, :occurred_on, :amount, :product_group_id, :direction_id, :due_on, :paid_on, :note)
        RETURNING {_NEW_ROW}
    ), audit AS (
        INSERT INTO audit_events (actor, action, object_type, object_id, details)
        SELECT :actor, 'operation.created', 'operation', id, jsonb_build_object('client_id', client_id) FROM op
    ), recount AS ({_ADD_RECOUNT}
    )
    SELECT op.id AS operation_id, recount.* FROM op, recount""")  # noqa: S608 - our constants


async def do_add_operation(db: AsyncSession, client: Any, raw: dict[str, Any], actor: str, *,
                           known: dict[str, int] | None = None) -> AddedOperation:
    """`client`: lock_client's row (its lock held: see ADD_OPERATION; an erased card never gets this
    far, lock_client answers 404); `known`: see check_operation."""
    data = await check_operation(db, raw, known=known)
    row = (await db.execute(ADD_OPERATION, {"client_id": client.id, "actor": actor, "today": clock.today(),
                                            **data.__dict__})).one()
    await events.operations_changed(db, [client.id])  # e.g. analytics re-scores them (saas.analytics.live)
    return AddedOperation(**data.__dict__, id=row.operation_id, client_id=client.id, client=row)


async def do_update_operation(db: AsyncSession, op: Operation, raw: dict[str, Any], actor: str) -> Operation:
    merged = {
        "kind": op.kind, "occurred_on": op.occurred_on.isoformat(), "amount": str(op.amount),
        "product_group_id": op.product_group_id, "direction_id": op.direction_id,
        "due_on": op.due_on.isoformat() if op.due_on else "", "paid_on": op.paid_on.isoformat() if op.paid_on else "",
        "note": op.note or "", **raw,
    }
    data = await check_operation(db, merged)
    for key, value in data.__dict__.items():
        setattr(op, key, value)
    await db.flush()
    await refresh_metrics(db, [op.client_id])
    await audit(db, actor, "operation.updated", "operation", op.id, client_id=op.client_id)
    return op


async def do_delete_operation(db: AsyncSession, op: Operation, actor: str) -> None:
    client_id = op.client_id
    await db.delete(op)
    await db.flush()
    await refresh_metrics(db, [client_id])
    await audit(db, actor, "operation.deleted", "operation", op.id, client_id=client_id)


async def overdue_amounts(db: AsyncSession, client_ids: list[int], today: date | None = None) -> dict[int, Decimal]:
    """Unpaid sales and services past their due date: depends on today, so computed on read."""
    if not client_ids:
        return {}
    rows = await db.execute(
        select(Operation.client_id, func.sum(Operation.amount))
        .where(Operation.client_id.in_(client_ids), Operation.kind != "return", Operation.paid_on.is_(None),
               Operation.due_on < (today or clock.today()))
        .group_by(Operation.client_id)
    )
    return dict(rows.tuples().all())
