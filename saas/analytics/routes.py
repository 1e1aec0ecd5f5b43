"""The company dashboard (the workspace's overview), the score refresh, and analytics settings."""
from __future__ import annotations

from collections import OrderedDict
from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import charts, dashboard, queries, validation
from saas.analytics import settings as analytics_settings
from saas.analytics.jobs import KIND, do_queue_refresh, running_refresh
from saas.core import clock
from saas.core.jobs import QueueUnavailable
from saas.core.models import Job
from saas.core.errors import FormError
from saas.accounts.deps import TenantCtx
from saas.core.i18n import (
    _,
    fmt_date,
    fmt_money,
    fmt_number,
    fmt_percent,
    get_locale,
)
from saas.core.web.render import flash, is_htmx, redirect, render
from saas.clients.models import STATUSES
from saas.analytics.present import RISK_LABELS, SEGMENT_LABELS, STATUS_LABELS

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MONTHS = {"ru": ["янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"],
          "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]}


def label(mapping: dict[str, str], key: str) -> str:
    return _(mapping[key]) if key in mapping else key


def ytd_label(through: str) -> str:
    """'1 Jan – 30 Jun 2025' in the reader's language."""
    end = date.fromisoformat(through)
    return f"{fmt_date(end.replace(month=1, day=1), 'd MMM')} – {fmt_date(end, 'd MMM y')}"


def signed_percent(rate: float) -> str:
    return ("+" if rate > 0 else "") + fmt_percent(rate, 1)


def growth_notes(cache: dict[str, Any]) -> dict[str, str]:
    """The sentences that say which periods the growth figures compare (see growth.py)."""
    notes: dict[str, str] = {}
    if not cache.get("history_start"):
        return notes
    years = cache.get("years", [])
    running = next((p["key"] for p in years if p.get("partial")), None)
    start = fmt_date(date.fromisoformat(cache["history_start"]))
    if cache["first_complete_year"] >= date.fromisoformat(cache["computed_for"]).year:
        notes["basis"] = _("Your history starts on %(start)s: there is no whole year yet, so years are not compared.",
                           start=start)
    else:
        notes["basis"] = _("Only whole years are compared: your history starts on %(start)s, so the yearly figures "
                           "start with %(year)s, its first complete year.", start=start,
                           year=cache["first_complete_year"])
    if running is not None:
        notes["basis"] += " " + _("%(year)s is still running: it is compared with the same dates of last year.",
                                  year=running)
    s = cache.get("summary") or {}
    if s.get("cagr") is not None:
        notes["cagr"] = _(
            "CAGR covers the complete years %(y1)s–%(y2)s: active clients went from %(a)s to %(b)s, %(rate)s a year "
            "compounded. The mean of the yearly rates (active ÷ active the year before − 1) over the same years: "
            "%(mean)s.", y1=s["first_year"], y2=s["last_year"], a=fmt_number(s.get("first_active")),
            b=fmt_number(s.get("last_active")), rate=signed_percent(s["cagr"]),
            mean=signed_percent(s["mean_rate"]) if s.get("mean_rate") is not None else "—")
    else:
        complete = sum(1 for p in years if not p.get("partial"))
        notes["cagr"] = _("An annual growth rate needs two complete years; your history has %(n)s so far.",
                          n=fmt_number(complete))
    ytd = cache.get("ytd")
    if ytd:
        if ytd.get("rate") is not None:
            notes["ytd"] = _("%(now)s: %(n)s active clients; %(before)s: %(m)s (%(rate)s).",
                             now=ytd_label(ytd["through"]), n=fmt_number(ytd["active"]),
                             before=ytd_label(ytd["last_year_through"]), m=fmt_number(ytd["last_year_active"]),
                             rate=signed_percent(ytd["rate"]))
        else:
            notes["ytd"] = _("%(now)s: %(n)s active clients. Last year is not complete in your history, so there "
                             "is nothing whole to compare with.", now=ytd_label(ytd["through"]),
                             n=fmt_number(ytd["active"]))
    return notes


def quarter_label(q: int) -> str:
    """A cohort's quarter in the reader's words ('2024 Q1', '1 кв. 2024')."""
    return _("%(year)s Q%(quarter)s", year=q // 4, quarter=q % 4 + 1)


def build_charts(data: dict[str, Any], currency: str) -> dict[str, Any]:
    cache = data["cache"] or {}
    out: dict[str, Any] = {}
    years = [p for p in cache.get("years", []) if not p.get("partial")]  # whole years only
    if years:
        out["years"] = charts.bars(
            [str(p["key"]) for p in years],
            {_("new"): [p["new"] for p in years], _("reactivated"): [p["reactivated"] for p in years],
             _("lost"): [p["lost"] or 0 for p in years]},
            {_("new"): charts.COLORS["new"], _("reactivated"): charts.COLORS["reactivated"],
             _("lost"): charts.COLORS["lost"]},
            _("New, reactivated and lost clients per year"), negative=(_("lost"),),
            table=False)  # the card's own table has these and more
        out["active_years"] = charts.bars([str(p["key"]) for p in years],
                                          {_("Active clients"): [p["active"] for p in years]},
                                          {_("Active clients"): charts.COLORS["active"]}, _("Active clients per year"),
                                          height=180, key=_("Year"))
    ytd = cache.get("ytd")
    if ytd and ytd.get("last_year_active") is not None:
        out["ytd"] = charts.hbars(
            [(ytd_label(ytd["last_year_through"]), ytd["last_year_active"]),
             (ytd_label(ytd["through"]), ytd["active"])],
            _("Active clients this year to date and on the same dates last year"), color=charts.COLORS["active"],
            head=_("Active clients"), table=False)  # the sentence under it gives both figures
    # Complete months only (growth.monthly): the running month is left out until it ends, so the
    # lines do not plunge at the end; the page says so under the chart.
    months = cache.get("months", [])[-36:]
    if months:
        names = MONTHS.get(get_locale(), MONTHS["en"])
        labels = [f"{names[p['key'] % 12]} {p['key'] // 12 % 100:02d}" for p in months]
        out["months"] = charts.line(labels, [p["active"] for p in months], _("Active clients per month"),
                                    name=_("Active clients"), key=_("Month"))
        out["months_new"] = charts.bars(labels, {_("new"): [p["new"] for p in months],
                                                 _("lost"): [p["lost"] or 0 for p in months]},
                                        {_("new"): charts.COLORS["new"], _("lost"): charts.COLORS["lost"]},
                                        _("New and lost clients per month"), negative=(_("lost"),), height=180,
                                        key=_("Month"))
    status = data["status"]
    if status:
        out["status"] = charts.stacked([(label(STATUS_LABELS, k), status.get(k, 0), charts.COLORS[k])
                                        for k in STATUSES], _("Status mix"), table=False)  # the legend has them
    segments = sorted(data["segments"].items(), key=lambda kv: -kv[1][0])
    if segments:
        out["segments"] = charts.hbars([(label(SEGMENT_LABELS, k), v[0]) for k, v in segments], _("Segment sizes"),
                                       head=_("Clients"), key=_("Segment"))
        out["segment_revenue"] = charts.hbars(
            [(label(SEGMENT_LABELS, k), v[1]) for k, v in sorted(segments, key=lambda kv: -kv[1][1])],
            _("Revenue by segment"), color=charts.COLORS["new"], value_format=lambda v: fmt_money(v, currency),
            head=_("Revenue"), key=_("Segment"))
    cohorts = cache.get("cohorts", [])
    if cohorts:
        width = max(len(shares) for _q, _n, shares in cohorts)
        out["cohorts"] = charts.heatmap(
            [f"{quarter_label(q)} ({fmt_number(n)})" for q, n, _s in cohorts],
            [shares[1:] + [None] * (width - len(shares)) for _q, _n, shares in cohorts],
            [f"+{k}" for k in range(1, width)], _("Share of each first-purchase quarter still buying, by quarter"),
            key=_("Quarter of the first purchase"))
    return out


async def dashboard_data(db: AsyncSession) -> dict[str, Any]:
    """The page's figures: the refresh's snapshot (one statement), else, before a refresh stored
    one, the live counts the page always showed (a company that has not been scored yet is small)."""
    data = await dashboard.read_snapshot(db)
    if data is None:
        data = await queries.dashboard(db)
        data.update(top_risk=await queries.top_risk(db), as_of=None, stale_since=None)
    return data


# The charts and sentences of a snapshot, per company, snapshot version, language and currency: they
# change only when the snapshot does, and drawing them is most of the page's own work.
_DRAWN: OrderedDict[tuple[Any, ...], tuple[dict[str, Any], dict[str, str]]] = OrderedDict()
_DRAWN_MAX = 256


def drawn(schema: str, data: dict[str, Any], currency: str) -> tuple[dict[str, Any], dict[str, str]]:
    if data.get("as_of") is None:  # counted live (no snapshot yet): nothing to key a cache on
        return build_charts(data, currency), growth_notes(data["cache"] or {})
    key = (schema, data["cache"].get("refreshed_at"), data["as_of"], get_locale(), currency)
    if key not in _DRAWN:
        _DRAWN[key] = (build_charts(data, currency), growth_notes(data["cache"] or {}))
        while len(_DRAWN) > _DRAWN_MAX:
            _DRAWN.popitem(last=False)
    return _DRAWN[key]


@get("/")
async def overview(request: Request, ctx: TenantCtx) -> Any:
    data = await dashboard_data(ctx.db)
    job = await running_refresh(ctx.db)
    cfg = await analytics_settings.load(ctx.db)
    drawn_charts, notes = drawn(ctx.tenant.schema_name, data, ctx.tenant.currency)
    return render(
        request, "analytics/dashboard.html", ctx=ctx, user=ctx.user,
        data=data, charts=drawn_charts, job=job, cfg=cfg,
        growth_notes=notes,
        status_lines=validation.status_lines(data["backtest"]),
        method_sentence=validation.method_sentence(data["scoring"], data["backtest"], cfg),
        top_risk=data["top_risk"], STATUS_LABELS=STATUS_LABELS, SEGMENT_LABELS=SEGMENT_LABELS,
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


@get("/analytics/validation")
async def validation_page(request: Request, ctx: TenantCtx) -> Any:
    """How good are these answers: the backtest, the model choice and its evidence."""
    data = await queries.dashboard(ctx.db)
    return render(request, "analytics/validation.html", ctx=ctx, user=ctx.user,
                  v=validation.page(data, await analytics_settings.load(ctx.db)))


HANDLERS = [overview, refresh, refresh_progress, settings_page, settings_save, validation_page]
