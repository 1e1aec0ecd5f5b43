"""The campaigns API. Criteria format: see saas/campaigns/criteria.py (also in the OpenAPI text)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, get, patch, post
from litestar.exceptions import ServiceUnavailableException
from litestar.params import Parameter

from saas.campaigns import criteria as crit
from saas.campaigns import jobs, service
from saas.campaigns.models import Campaign
from saas.core.errors import ERRORS
from saas.core.jobs import QueueUnavailable
from saas.accounts.deps import ApiCtx

CRITERIA_DOC = crit.__doc__


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    goal: str | None = None
    channel: str | None = None
    starts_on: str | None = None
    ends_on: str | None = None
    criteria: dict[str, Any] | None = None
    ranking: str | dict[str, Any] | None = None
    size: int | None = None
    control_share: float | None = None
    suppression: dict[str, Any] | None = None


class CampaignOut(msgspec.Struct):
    id: int
    name: str
    goal: str | None
    channel: str
    starts_on: date | None
    ends_on: date | None
    criteria: dict[str, Any]
    ranking: dict[str, Any]
    size: int | None
    control_share: float
    suppression: dict[str, Any]
    status: str
    progress: int
    members: int
    control: int
    excluded: dict[str, int]
    built_at: datetime | None
    launched_at: datetime | None
    error: str | None


class MemberOut(msgspec.Struct):
    rank: int
    client_id: int
    score: float | None
    control: bool


class PreviewIn(msgspec.Struct):
    criteria: dict[str, Any] | None = None
    channel: str = "none"
    ranking: str | dict[str, Any] | None = None
    suppression: dict[str, Any] | None = None


class PreviewOut(msgspec.Struct):
    count: int
    matched: int
    excluded: dict[str, int]


async def campaign_out(ctx: ApiCtx, c: Campaign) -> CampaignOut:
    job = await jobs.latest_job(ctx.db, c.id)
    return CampaignOut(c.id, c.name, c.goal, c.channel, c.starts_on, c.ends_on, c.criteria, c.ranking, c.size,
                       c.control_share, c.suppression, c.status, job.progress if job else 0, c.members_count,
                       c.control_count, c.excluded, c.built_at, c.launched_at, c.error)


def _raw(data: CampaignIn, current: Campaign | None) -> dict[str, Any]:
    raw = {k: getattr(data, k) for k in CampaignIn.__struct_fields__ if getattr(data, k) is not None}
    if current is not None:  # PATCH: unsent fields keep their values
        base = {k: getattr(current, k) for k in CampaignIn.__struct_fields__}
        raw = {**base, **raw}
    return raw


@get("/campaigns", summary="Campaigns", responses=ERRORS)
async def api_list(ctx: ApiCtx) -> list[CampaignOut]:
    from sqlalchemy import select

    rows = await ctx.db.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(500))
    return [await campaign_out(ctx, c) for c in rows]


@post("/campaigns", summary="Create a campaign", description=CRITERIA_DOC, responses=ERRORS)
async def api_create(ctx: ApiCtx, data: CampaignIn) -> CampaignOut:
    return await campaign_out(ctx, await service.do_save_campaign(ctx.db, _raw(data, None), ctx.actor))


@get("/campaigns/{campaign_id:int}", summary="A campaign: status, progress, size, excluded counts", responses=ERRORS)
async def api_get(ctx: ApiCtx, campaign_id: int) -> CampaignOut:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    await jobs.reconcile(ctx.db, ctx.tenant, campaign)
    return await campaign_out(ctx, campaign)


@patch("/campaigns/{campaign_id:int}", summary="Change a campaign", description=CRITERIA_DOC, responses=ERRORS)
async def api_update(ctx: ApiCtx, campaign_id: int, data: CampaignIn) -> CampaignOut:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    return await campaign_out(ctx, await service.do_save_campaign(ctx.db, _raw(data, campaign), ctx.actor, campaign))


@post("/campaigns/{campaign_id:int}/build", summary="Build the ranked list in the background", status_code=202,
      responses=ERRORS)
async def api_build(ctx: ApiCtx, campaign_id: int) -> CampaignOut:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    try:
        await jobs.do_queue_build(ctx.db, ctx.tenant, campaign)
    except QueueUnavailable:
        raise ServiceUnavailableException("The queue is unavailable, try again.") from None
    return await campaign_out(ctx, campaign)


@get("/campaigns/{campaign_id:int}/members", summary="The ranked list (keyset: after=rank)", responses=ERRORS)
async def api_members(ctx: ApiCtx, campaign_id: int, limit: int = 100,
                      after: Annotated[int, Parameter(ge=0, le=2**31 - 1)] = 0) -> list[MemberOut]:  # rank: int4
    campaign = await service.access_campaign(ctx.db, campaign_id)
    rows = await service.members(ctx.db, campaign, after=after, limit=max(1, min(limit, 10000)))
    return [MemberOut(m.rank, m.client_id, m.score, m.control) for m, _c in rows]


@get("/campaigns/{campaign_id:int}/export", summary="The list for the channel (control excluded)",
     description="Names and contacts: needs the marketer role.", responses=ERRORS, media_type="text/csv",
     opt={"role": "marketer"})
async def api_export(ctx: ApiCtx, campaign_id: int, format: str = "csv") -> Response:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    fmt = "xlsx" if format == "xlsx" else "csv"
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx" \
        else "text/csv; charset=utf-8"
    return Response(await service.export(ctx.db, campaign, fmt, ctx.actor), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}.{fmt}"'})


@post("/campaigns/preview", summary="Count the clients a target matches, and the excluded per reason",
      description=CRITERIA_DOC, responses=ERRORS, status_code=200)
async def api_preview(ctx: ApiCtx, data: PreviewIn) -> PreviewOut:
    values = service.check_campaign({"name": "preview", "channel": data.channel, "criteria": data.criteria,
                                     "ranking": data.ranking, "suppression": data.suppression})
    result = await service.preview(ctx.db, Campaign(**values))
    return PreviewOut(result.eligible, result.matched, result.excluded)


HANDLERS = [api_list, api_create, api_get, api_update, api_build, api_members, api_export, api_preview]
