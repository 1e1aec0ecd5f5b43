"""Likely duplicates and merging two cards into one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import crypto, service
from saas.clients.models import Client, Operation
from saas.clients.operations import refresh_metrics
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _
from saas.core.web.render import flash, redirect, render

GROUPS = text("""
    SELECT reason, ids FROM (
        SELECT 'phone' AS reason, array_agg(id ORDER BY id) AS ids FROM clients
        WHERE erased_at IS NULL AND phone IS NOT NULL GROUP BY phone HAVING count(*) > 1
        UNION ALL
        SELECT 'email', array_agg(id ORDER BY id) FROM clients
        WHERE erased_at IS NULL AND email IS NOT NULL GROUP BY email HAVING count(*) > 1
        UNION ALL
        SELECT 'passport', array_agg(id ORDER BY id) FROM clients
        WHERE erased_at IS NULL AND passport_bidx IS NOT NULL GROUP BY passport_bidx HAVING count(*) > 1
        UNION ALL
        SELECT 'name', array_agg(id ORDER BY id) FROM clients
        WHERE erased_at IS NULL AND birth_date IS NOT NULL
        GROUP BY translate(lower(last_name), 'ё', 'е'), translate(lower(first_name), 'ё', 'е'), birth_date
        HAVING count(*) > 1
    ) g ORDER BY ids[1] LIMIT :limit
""")


@dataclass
class DuplicateGroup:
    reason: str
    clients: list[Client]


async def find_duplicates(db: AsyncSession, limit: int = 100) -> list[DuplicateGroup]:
    rows = (await db.execute(GROUPS, {"limit": limit})).all()
    ids = {i for _reason, group in rows for i in group}
    clients = {c.id: c for c in await db.scalars(select(Client).where(Client.id.in_(ids)))} if ids else {}
    return [DuplicateGroup(reason, [clients[i] for i in group if i in clients]) for reason, group in rows]


async def do_merge(db: AsyncSession, keep: Client, other: Client, actor: str) -> Client:
    """Fold `other` into `keep`: every operation moves, empty fields are filled, lists are united."""
    if keep.id == other.id:
        raise FormError({"other": _("Choose two different clients.")})
    moved = (await db.execute(update(Operation).where(Operation.client_id == other.id)
                              .values(client_id=keep.id))).rowcount
    for field in ("middle_name", "birth_date", "phone", "email", "address"):
        if not getattr(keep, field) and getattr(other, field):
            setattr(keep, field, getattr(other, field))
    if keep.passport_enc is None and other.passport_enc is not None:  # sealed to `other`: resealed to `keep`
        service.move_passport(other, keep, crypto.company_of(db))
    keep.note = "\n".join(n for n in (keep.note, other.note) if n) or None
    keep.tags = list(dict.fromkeys([*keep.tags, *other.tags]))
    keep.product_group_ids = list(dict.fromkeys([*keep.product_group_ids, *other.product_group_ids]))
    keep.direction_ids = list(dict.fromkeys([*keep.direction_ids, *other.direction_ids]))
    keep.consent = {**(other.consent or {}), **(keep.consent or {})}
    keep.custom = {**(other.custom or {}), **(keep.custom or {})}
    other_id = other.id
    await db.delete(other)
    await db.flush()
    await refresh_metrics(db, [keep.id])
    await service.audit(db, actor, "client.merged", "client", keep.id, merged=other_id, operations=moved)
    return keep


@get("/clients/duplicates")
async def duplicates_page(request: Request, ctx: TenantCtx) -> object:
    groups = await find_duplicates(ctx.db)
    return render(request, "clients/duplicates.html", ctx=ctx, user=ctx.user, groups=groups)


@post("/clients/merge")
async def merge(request: Request, ctx: TenantCtx,
                data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]) -> object:
    try:
        keep = await service.access_client(ctx.db, int(data.get("keep_id", 0)))
        other = await service.access_client(ctx.db, int(data.get("other_id", 0)))
        await do_merge(ctx.db, keep, other, ctx.actor)
    except (FormError, ValueError) as exc:
        flash(request, " ".join(exc.errors.values()) if isinstance(exc, FormError) else str(exc), "error")
        return redirect(request, f"{ctx.base}/clients/duplicates")
    flash(request, _("Merged: all operations now belong to this card."))
    return redirect(request, f"{ctx.base}/clients/{keep.id}")


HANDLERS = [duplicates_page, merge]
