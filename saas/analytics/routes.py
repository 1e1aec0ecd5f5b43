"""The company dashboard (the workspace's overview), the score refresh, and analytics settings."""
from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import select

from saas.analytics import charts, growth, queries
from saas.analytics import settings as analytics_settings
from saas.analytics.jobs import KIND, do_queue_refresh, running_refresh
from saas.core import clock
from saas.jobs import QueueUnavailable
from saas.tenants import service as tenant_service
from saas.tenants.models import Job
from saas.tenants.service import FormError
from saas.web.deps import TenantCtx
from saas.web.i18n import _, fmt_money, get_locale, lazy
from saas.web.render import flash, is_htmx, redirect, render

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
STATUS_LABELS = {"new": lazy("new"), "active": lazy("active"), "at_risk": lazy("at risk"), "lost": lazy("lost")}
RISK_LABELS = {"reliable": lazy("reliable"), "watch": lazy("watch"), "risk": lazy("risk group")}
SEGMENT_LABELS = {
    "champions": lazy("Champions"), "loyal": lazy("Loyal"), "potential_loyalists": lazy("Potential loyalists"),
    "new": lazy("New customers"), "promising": lazy("Promising"), "need_attention": lazy("Need attention"),
    "about_to_sleep": lazy("About to sleep"), "cant_lose": lazy("Can't lose them"), "at_risk": lazy("At risk"),
    "hibernating": lazy("Hibernating"), "lost": lazy("Lost"), "prospects": lazy("No purchases yet"),
}
MONTHS = {"ru": "янв фев мар апр май июн июл авг сен окт ноя дек".split(),
          "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()}


def label(mapping: dict[str, str], key: str) -> str:
    return _(mapping[key]) if key in mapping else key


def build_charts(data: dict[str, Any], currency: str) -> dict[str, Any]:
    cache = data["cache"] or {}
    out: dict[str, Any] = {}
    years = cache.get("years", [])
    if years:
        out["years"] = charts.bars(
            [str(p["key"]) for p in years],
            {_("new"): [p["new"] for p in years], _("reactivated"): [p["reactivated"] for p in years],
             _("lost"): [p["lost"] for p in years]},
            {_("new"): charts.COLORS["new"], _("reactivated"): charts.COLORS["reactivated"],
             _("lost"): charts.COLORS["lost"]},
            _("New, reactivated and lost clients per year"), negative=(_("lost"),))
        out["active_years"] = charts.bars([str(p["key"]) for p in years], {_("active"): [p["active"] for p in years]},
                                          {_("active"): charts.COLORS["active"]}, _("Active clients per year"),
                                          height=180)
    months = cache.get("months", [])[-36:]
    if months:
        names = MONTHS.get(get_locale(), MONTHS["en"])
        labels = [f"{names[p['key'] % 12]} {p['key'] // 12 % 100:02d}" for p in months]
        out["months"] = charts.line(labels, [p["active"] for p in months], _("Active clients per month"))
        out["months_new"] = charts.bars(labels, {_("new"): [p["new"] for p in months],
                                                 _("lost"): [p["lost"] for p in months]},
                                        {_("new"): charts.COLORS["new"], _("lost"): charts.COLORS["lost"]},
                                        _("New and lost clients per month"), negative=(_("lost"),), height=180)
    status = data["status"]
    if status:
        out["status"] = charts.stacked([(label(STATUS_LABELS, k), status.get(k, 0), charts.COLORS[k])
                                        for k in ("new", "active", "at_risk", "lost")], _("Status mix"))
    segments = sorted(data["segments"].items(), key=lambda kv: -kv[1][0])
    if segments:
        out["segments"] = charts.hbars([(label(SEGMENT_LABELS, k), v[0]) for k, v in segments], _("Segment sizes"))
        out["segment_revenue"] = charts.hbars(
            [(label(SEGMENT_LABELS, k), v[1]) for k, v in sorted(segments, key=lambda kv: -kv[1][1])],
            _("Revenue by segment"), color=charts.COLORS["new"], value_format=lambda v: fmt_money(v, currency))
    cohorts = cache.get("cohorts", [])
    if cohorts:
        width = max(len(shares) for _q, _n, shares in cohorts)
        out["cohorts"] = charts.heatmap(
            [f"{growth.quarter_label(q)} ({n})" for q, n, _s in cohorts],
            [shares[1:] + [None] * (width - len(shares)) for _q, _n, shares in cohorts],
            [f"+{k}" for k in range(1, width)], _("Share of each first-purchase quarter still buying, by quarter"))
    return out


@get("/")
async def overview(request: Request, ctx: TenantCtx) -> Any:
    data = await queries.dashboard(ctx.db)
    job = await running_refresh(ctx.db)
    cfg = await analytics_settings.load(ctx.db)
    return render(
        request, "analytics/dashboard.html", ctx=ctx, user=ctx.user,
        memberships=await tenant_service.memberships_of(ctx.db, ctx.user.id),
        data=data, charts=build_charts(data, ctx.tenant.currency), job=job, cfg=cfg,
        top_risk=await queries.top_risk(ctx.db), STATUS_LABELS=STATUS_LABELS, SEGMENT_LABELS=SEGMENT_LABELS,
        RISK_LABELS=RISK_LABELS, label=label, current_year=clock.today().year,
    )


@post("/analytics/refresh")
async def refresh(request: Request, ctx: TenantCtx) -> Any:
    try:
        job = await do_queue_refresh(ctx.db, ctx.tenant)
    except QueueUnavailable:
        if is_htmx(request):
            return render(request, "analytics/_refresh.html", ctx=ctx, job=None,
                          error=_("The queue is unavailable. Nothing was changed; try again in a minute."))
        flash(request, _("The queue is unavailable. Nothing was changed; try again in a minute."), "error")
        return redirect(request, f"{ctx.base}/")
    if is_htmx(request):
        return render(request, "analytics/_refresh.html", ctx=ctx, job=job, error=None)
    return redirect(request, f"{ctx.base}/")


@get("/analytics/refresh/{job_id:int}")
async def refresh_progress(request: Request, ctx: TenantCtx, job_id: int) -> Any:
    job = await ctx.db.scalar(select(Job).where(Job.id == job_id, Job.kind == KIND))
    if job is None:
        from litestar.exceptions import NotFoundException

        raise NotFoundException()
    response = render(request, "analytics/_refresh.html", ctx=ctx, job=job, error=None)
    if job.status == "done" and is_htmx(request):
        response.headers["HX-Refresh"] = "true"  # new numbers everywhere on the page
    return response


@get("/analytics/settings", opt={"role": "admin"})
async def settings_page(request: Request, ctx: TenantCtx) -> Any:
    return render(request, "analytics/settings.html", ctx=ctx, user=ctx.user, cfg=await analytics_settings.load(ctx.db))


@post("/analytics/settings", opt={"role": "admin"})
async def settings_save(request: Request, ctx: TenantCtx, data: Form) -> Any:
    try:
        values = analytics_settings.check(data)
    except FormError as exc:
        return render(request, "analytics/settings.html", status_code=422, ctx=ctx, user=ctx.user,
                      cfg={**await analytics_settings.load(ctx.db)}, errors=exc.errors, form=data)
    await analytics_settings.save(ctx.db, values)
    flash(request, _("Settings saved. They apply from the next refresh."))
    return redirect(request, f"{ctx.base}/analytics/settings")


HANDLERS = [overview, refresh, refresh_progress, settings_page, settings_save]
