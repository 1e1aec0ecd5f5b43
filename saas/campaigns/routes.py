"""Campaign pages: list, builder with a live count, build with progress, members, export, results."""
from __future__ import annotations

import calendar
from typing import Annotated, Any

from babel.dates import get_month_names
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import select

from saas.analytics.rfm import SEGMENTS
from saas.campaigns import criteria as crit
from saas.campaigns import jobs, service
from saas.campaigns.models import Campaign, SavedSegment
from saas.clients import service as client_service
from saas.core.jobs import QueueUnavailable
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import _, get_locale, lazy
from saas.core.web.render import flash, is_htmx, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MULTI = ("product_groups", "directions", "status", "segments", "risk_include", "risk_exclude")
SINGLE = ("p_alive_min", "p_alive_max", "last_op_from", "last_op_to", "no_purchase_days", "revenue_min",
          "revenue_max", "deals_min", "deals_max", "birthday_from", "birthday_to", "tags")
# The builder's typed conditions (name, label, input type); the birthday has its month and day selects.
CONDITIONS = [
    ("p_alive_min", lazy("P(alive) from"), "number"), ("p_alive_max", lazy("P(alive) to"), "number"),
    ("last_op_from", lazy("Last purchase from"), "date"), ("last_op_to", lazy("Last purchase to"), "date"),
    ("no_purchase_days", lazy("No purchase for N days"), "number"), ("revenue_min", lazy("Revenue from"), "number"),
    ("revenue_max", lazy("Revenue to"), "number"), ("deals_min", lazy("Deals from"), "number"),
    ("deals_max", lazy("Deals to"), "number"), ("tags", lazy("Tags (any)"), "text"),
]
FIELD_LABELS = {
    "name": lazy("Name"), "goal": lazy("Goal"), "channel": lazy("Channel"), "starts_on": lazy("Starts"),
    "ends_on": lazy("Ends"), "size": lazy("List size"), "control_share": lazy("Control group share"),
    "ranking": lazy("Ranking"), "suppression": lazy("Suppression"), "criteria": lazy("Who gets it"),
    "birthday_from": lazy("Birthday from"), "birthday_to": lazy("Birthday to"), "segments": lazy("RFM segments"),
    "status": lazy("Status"), "risk_exclude": lazy("Reliability"), "risk_include": lazy("Reliability"),
    **{key: label for key, label, _type in CONDITIONS},
}
SHARE_MESSAGE = lazy("The control group share must be from 0 to 50 %.")


def _list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    return [str(v) for v in (value if isinstance(value, list) else [value]) if str(v).strip()]


def _day_of_year(data: dict[str, Any], field: str, last: bool) -> str:
    """A birthday bound from the month and day selects as the stored "MM-DD" (a month alone: its
    first day, or its last for the upper bound); the older text field ("MM-DD") is still read."""
    month, day = (str(data.get(f"{field}_{part}") or "").strip() for part in ("month", "day"))
    if not month and not day:
        return str(data.get(field) or "").strip()
    if not month.isdigit() or (day and not day.isdigit()):
        return f"{month or '??'}-{day or '??'}"  # the criteria check refuses it on the field
    if not day:
        day = str(calendar.monthrange(2000, int(month))[1] if last else 1) if 1 <= int(month) <= 12 else "??"
    return f"{int(month):02d}-{int(day):02d}" if day.isdigit() else f"{month}-{day}"


def _control_share(data: dict[str, Any]) -> Any:
    """The builder asks for a percent; older forms (and the API) send the fraction. A percent that
    is not a number is passed on as typed, for the campaign check to refuse."""
    if "control_share_pct" not in data:
        return data.get("control_share")
    typed = str(data.get("control_share_pct") or "").replace("%", "").replace(",", ".").replace(" ", "")
    if not typed:
        return 0
    try:
        return float(typed) / 100
    except ValueError:
        return typed


def error_list(errors: dict[str, str], groups: int = 1) -> list[tuple[str, str]]:
    """Errors as (what, message) in words: `any.1.revenue_min` is "Group 2 · Revenue from"."""
    out = []
    for key, message in errors.items():
        parts = key.split(".")
        if parts[0] == "any" and len(parts) == 3 and parts[1].isdigit():
            label = _(FIELD_LABELS.get(parts[2], parts[2]))
            what = _("Group %(n)s · %(field)s", n=int(parts[1]) + 1, field=label) if groups > 1 else label
        elif parts[0] == "any":
            what = _("Who gets it")
        else:
            what = _(FIELD_LABELS.get(key, key))
        out.append((what, message))
    return out


def _share_errors(errors: dict[str, str], data: dict[str, Any]) -> dict[str, str]:
    """The service speaks of fractions (0 to 0.5); the builder's field is a percent."""
    if "control_share" in errors and "control_share_pct" in data:
        errors = {**errors, "control_share": _(SHARE_MESSAGE)}
    return errors


def form_to_raw(data: dict[str, Any]) -> dict[str, Any]:
    """The builder form (fields g<N>_<condition>) as the API's campaign body."""
    groups = []
    count = int(str(data.get("groups") or "1")) if str(data.get("groups") or "1").isdigit() else 1
    for gi in range(min(count, crit.MAX_GROUPS)):
        g: dict[str, Any] = {}
        for key in MULTI:
            g[key] = _list(data, f"g{gi}_{key}")
        for key in SINGLE:
            if key.startswith("birthday_"):
                value = _day_of_year(data, f"g{gi}_{key}", last=key.endswith("_to"))
            else:
                value = str(data.get(f"g{gi}_{key}") or "").strip()
            if value:
                g[key] = [t.strip() for t in value.split(",") if t.strip()] if key == "tags" else value
        if str(data.get(f"g{gi}_remove") or ""):
            continue
        groups.append(g)
    weights = {k: data.get(f"w_{k}") for k in service.RANKINGS if str(data.get(f"w_{k}") or "").strip()}
    by = str(data.get("ranking") or "clv")
    return {
        "name": data.get("name"), "goal": data.get("goal"), "channel": data.get("channel"),
        "starts_on": data.get("starts_on") or None, "ends_on": data.get("ends_on") or None,
        "criteria": {"any": groups}, "size": data.get("size"), "control_share": _control_share(data),
        "ranking": {"weights": weights} if by == "mix" else by,
        "suppression": {"frequency_days": data.get("frequency_days") or 30,
                        "exclude_tag": str(data.get("exclude_tag") or "").strip() or None,
                        "exclude_ids": [i.strip() for i in str(data.get("exclude_ids") or "").replace(";", ",")
                                        .split(",") if i.strip()]},
    }


async def _context(ctx: TenantCtx, campaign: Campaign | None, **extra: Any) -> dict[str, Any]:
    return {"ctx": ctx, "user": ctx.user, "campaign": campaign, "errors": {}, "SEGMENTS": list(SEGMENTS),
            "conditions": [(key, _(label), kind) for key, label, kind in CONDITIONS], "months": _months(),
            "error_list": error_list,
            "product_groups": await client_service.dictionary(ctx.db, "product_groups"),
            "directions": await client_service.dictionary(ctx.db, "directions"),
            "segments_saved": list(await ctx.db.scalars(select(SavedSegment).order_by(SavedSegment.name))),
            **extra}


def _months() -> list[tuple[int, str]]:
    names = get_month_names("wide", context="stand-alone", locale=get_locale())
    return [(m, names[m].capitalize()) for m in range(1, 13)]


@get("/campaigns")
async def campaign_list(request: Request, ctx: TenantCtx) -> Any:
    rows = list(await ctx.db.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(200)))
    return render(request, "campaigns/index.html", **await _context(ctx, None, campaigns=rows))


@get("/campaigns/new")
async def campaign_new(request: Request, ctx: TenantCtx, segment: int | None = None) -> Any:
    draft = Campaign(name="", channel="email", criteria={"any": [{}]}, ranking={"by": "clv"}, control_share=0.1,
                     suppression=dict(service.DEFAULT_SUPPRESSION), status="draft", excluded={})
    if segment:
        saved = await ctx.db.get(SavedSegment, segment)
        if saved is not None:
            draft.criteria = saved.criteria
    return render(request, "campaigns/builder.html", **await _context(ctx, None, draft=draft))


async def _save(request: Request, ctx: TenantCtx, data: dict[str, Any], campaign: Campaign | None) -> Any:
    raw = form_to_raw(data)
    try:
        saved = await service.do_save_campaign(ctx.db, raw, ctx.actor, campaign)
    except FormError as exc:
        draft = Campaign(status="draft", excluded={})  # never the stored one: the session would save what was typed
        for key in ("name", "goal", "channel", "size", "control_share"):
            setattr(draft, key, raw.get(key))
        draft.criteria, draft.ranking = raw["criteria"], raw["ranking"] if isinstance(raw["ranking"], dict) \
            else {"by": raw["ranking"]}
        draft.suppression = raw["suppression"]
        return render(request, "campaigns/builder.html", status_code=422,
                      **await _context(ctx, campaign, draft=draft, errors=_share_errors(exc.errors, data)))
    if str(data.get("then") or "") == "build":
        return await _build(request, ctx, saved)
    flash(request, _("Campaign saved."))
    return redirect(request, f"{ctx.base}/campaigns/{saved.id}")


@post("/campaigns")
async def campaign_create(request: Request, ctx: TenantCtx, data: Form) -> Any:
    return await _save(request, ctx, data, None)


@get("/campaigns/{campaign_id:int}")
async def campaign_page(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    await jobs.reconcile(ctx.db, ctx.tenant, campaign)
    return render(request, "campaigns/builder.html", **await _context(
        ctx, campaign, draft=campaign, job=await jobs.latest_job(ctx.db, campaign.id),
        results=await service.results(ctx.db, campaign),
        top=await service.members(ctx.db, campaign, limit=20) if campaign.built_at else []))


@post("/campaigns/{campaign_id:int}")
async def campaign_update(request: Request, ctx: TenantCtx, campaign_id: int, data: Form) -> Any:
    return await _save(request, ctx, data, await service.access_campaign(ctx.db, campaign_id))


def _draft(data: Form) -> Campaign:
    raw = form_to_raw(data)
    raw["name"] = raw.get("name") or "preview"
    values = service.check_campaign(raw)
    return Campaign(id=int(data["campaign_id"]) if str(data.get("campaign_id") or "").isdigit() else None, **values)


@post("/campaigns/preview")
async def campaign_preview(request: Request, ctx: TenantCtx, data: Form) -> Any:
    """The live count: the builder posts here as conditions change (debounced)."""
    try:
        draft = _draft(data)
    except FormError as exc:
        return render(request, "campaigns/_preview.html", ctx=ctx, preview=None,
                      errors=error_list(_share_errors(exc.errors, data), len(form_to_raw(data)["criteria"]["any"])))
    return render(request, "campaigns/_preview.html", ctx=ctx, preview=await service.preview(ctx.db, draft),
                  errors={}, draft=draft)


@post("/campaigns/sample")
async def campaign_sample(request: Request, ctx: TenantCtx, data: Form) -> Any:
    """The best of the matched clients, loaded by the count fragment once it is shown."""
    try:
        draft = _draft(data)
    except FormError:
        return render(request, "campaigns/_sample.html", ctx=ctx, sample=[])
    return render(request, "campaigns/_sample.html", ctx=ctx, sample=await service.sample(ctx.db, draft))


async def _build(request: Request, ctx: TenantCtx, campaign: Campaign) -> Any:
    try:
        await jobs.do_queue_build(ctx.db, ctx.tenant, campaign)
    except QueueUnavailable:
        flash(request, _("The queue is unavailable. Nothing was changed; try again in a minute."), "error")
    return redirect(request, f"{ctx.base}/campaigns/{campaign.id}")


@post("/campaigns/{campaign_id:int}/build")
async def campaign_build(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    return await _build(request, ctx, await service.access_campaign(ctx.db, campaign_id))


@post("/campaigns/{campaign_id:int}/cancel")
async def campaign_cancel(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    await jobs.do_cancel(ctx.db, ctx.tenant, campaign)
    flash(request, _("The build was cancelled; the previous list is kept."))
    return redirect(request, f"{ctx.base}/campaigns/{campaign.id}")


@get("/campaigns/{campaign_id:int}/progress")
async def campaign_progress(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    await jobs.reconcile(ctx.db, ctx.tenant, campaign)
    response = render(request, "campaigns/_progress.html", ctx=ctx, campaign=campaign,
                      job=await jobs.latest_job(ctx.db, campaign.id))
    if campaign.status != "building" and is_htmx(request):
        response.headers["HX-Refresh"] = "true"
    return response


@get("/campaigns/{campaign_id:int}/members")
async def campaign_members(request: Request, ctx: TenantCtx, campaign_id: int, after: int = 0) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    rows = await service.members(ctx.db, campaign, after=after, limit=100)
    places = await service.positions(ctx.db, campaign, rows, after)
    return render(request, "campaigns/members.html", ctx=ctx, user=ctx.user, campaign=campaign,
                  rows=list(zip(places, rows, strict=True)),
                  next_after=rows[-1][0].rank if len(rows) == 100 else None)


@get("/campaigns/{campaign_id:int}/export", opt={"role": "marketer"})  # names and contacts: not for viewers
async def campaign_export(ctx: TenantCtx, campaign_id: int, format: str = "csv") -> Response:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    fmt = "xlsx" if format == "xlsx" else "csv"
    body = await service.export(ctx.db, campaign, fmt, ctx.actor)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if fmt == "xlsx" \
        else "text/csv; charset=utf-8"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="campaign-{campaign.id}.{fmt}"', "Cache-Control": "no-store"})


@post("/campaigns/{campaign_id:int}/launch")
async def campaign_launch(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    try:
        await service.do_launch(ctx.db, campaign, ctx.actor)
        flash(request, _("Marked as launched. Results appear after the response window."))
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
    return redirect(request, f"{ctx.base}/campaigns/{campaign.id}")


@post("/campaigns/{campaign_id:int}/duplicate")
async def campaign_duplicate(request: Request, ctx: TenantCtx, campaign_id: int) -> Any:
    copy = await service.do_duplicate(ctx.db, await service.access_campaign(ctx.db, campaign_id), ctx.actor)
    flash(request, _("Campaign duplicated."))
    return redirect(request, f"{ctx.base}/campaigns/{copy.id}")


@post("/campaigns/{campaign_id:int}/segment")
async def campaign_save_segment(request: Request, ctx: TenantCtx, campaign_id: int, data: Form) -> Any:
    campaign = await service.access_campaign(ctx.db, campaign_id)
    try:
        await service.do_save_segment(ctx.db, str(data.get("segment_name") or ""), campaign.criteria)
        flash(request, _("Target saved as a segment."))
    except FormError as exc:
        flash(request, " ".join(exc.errors.values()), "error")
    return redirect(request, f"{ctx.base}/campaigns/{campaign.id}")


HANDLERS = [campaign_list, campaign_new, campaign_create, campaign_page, campaign_update, campaign_preview,
            campaign_sample, campaign_build, campaign_cancel, campaign_progress, campaign_members, campaign_export,
            campaign_launch, campaign_duplicate, campaign_save_segment]


@post("/campaigns/form")
async def campaign_form(request: Request, ctx: TenantCtx, data: Form) -> Any:
    """Re-render the builder with what was typed (used to add an OR group), saving nothing."""
    raw = form_to_raw(data)
    if data.get("add_group"):
        raw["criteria"]["any"].append({})
    campaign = None
    if str(data.get("campaign_id") or "").isdigit():
        campaign = await service.access_campaign(ctx.db, int(data["campaign_id"]))
    draft = Campaign(name=raw["name"] or "", goal=raw["goal"], channel=raw["channel"] or "email",
                     criteria=raw["criteria"], size=raw["size"] or None, control_share=raw["control_share"],
                     ranking=raw["ranking"] if isinstance(raw["ranking"], dict) else {"by": raw["ranking"]},
                     suppression=raw["suppression"], status="draft", excluded={})
    return render(request, "campaigns/builder.html", **await _context(ctx, campaign, draft=draft))


HANDLERS.append(campaign_form)
