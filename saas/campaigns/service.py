"""Campaign operations: save, preview, build (set-based), members, export, launch, results."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from litestar.exceptions import NotFoundException
from sqlalchemy import Float, cast, delete, func, insert, literal, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients.models import ClientScore
from saas.campaigns import criteria as crit
from saas.campaigns.models import CHANNELS, Campaign, CampaignMember, SavedSegment
from saas.campaigns.results import GroupStats, rate_uplift, revenue_uplift
from saas.core.values import formula_safe, xlsx_cells
from saas.clients.models import Client
from saas.clients.service import audit
from saas.core import clock
from saas.accounts.limits import check_limit
from saas.core.errors import FormError
from saas.core.i18n import _

RANKINGS = ("clv", "expected_purchases", "p_alive", "revenue", "recency")
REASONS = ("no_consent", "no_contact", "archived", "recently_contacted", "excluded")
CONSENT_CHANNELS = ("email", "sms", "calls")
DEFAULT_SUPPRESSION = {"frequency_days": 30, "exclude_tag": "stop-list", "exclude_ids": []}
SAMPLE = 10


async def access_campaign(db: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundException()
    return campaign


# ---- validation ------------------------------------------------------------------------------


def check_ranking(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str) or raw is None:
        by = raw or "clv"
        if by not in RANKINGS:
            raise FormError({"ranking": _("Rank by clv, expected_purchases, p_alive, revenue or recency.")})
        return {"by": by}
    if isinstance(raw, dict) and "by" in raw and "weights" not in raw:
        return check_ranking(raw["by"])
    weights = raw.get("weights") if isinstance(raw, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise FormError({"ranking": _("Give a ranking name or {\"weights\": {name: weight}}.")})
    clean = {}
    for key, value in weights.items():
        if key not in RANKINGS:
            raise FormError({"ranking": _("Unknown value: %(v)s", v=key)})
        try:
            clean[key] = float(value)
        except (TypeError, ValueError):
            raise FormError({"ranking": _("Weights are numbers.")}) from None
        if clean[key] < 0:
            raise FormError({"ranking": _("Weights are 0 or more.")})
    if not sum(clean.values()):
        raise FormError({"ranking": _("At least one weight above 0.")})
    return {"weights": clean}


def check_campaign(raw: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    name = str(raw.get("name") or "").strip()
    if not name:
        errors["name"] = _("Name the campaign.")
    out["name"] = name[:200]
    out["goal"] = (str(raw.get("goal") or "").strip() or None)
    channel = str(raw.get("channel") or "none")
    if channel not in CHANNELS:
        errors["channel"] = _("Choose email, SMS, calls, post or none.")
    out["channel"] = channel
    for key in ("starts_on", "ends_on"):
        value = raw.get(key)
        out[key] = None
        if value:
            try:
                out[key] = value if isinstance(value, date) else date.fromisoformat(str(value))
            except ValueError:
                errors[key] = _("A date as YYYY-MM-DD.")
    if out.get("starts_on") and out.get("ends_on") and out["ends_on"] < out["starts_on"]:
        errors["ends_on"] = _("The range ends before it starts.")
    size = raw.get("size")
    out["size"] = None
    if size not in (None, "", 0, "0"):
        try:
            out["size"] = int(size)
            if not 1 <= out["size"] <= crit.MAX_COUNT:  # beyond BIGINT it was a 500
                raise ValueError
        except (TypeError, ValueError):
            errors["size"] = _("A whole number above 0, or empty for everyone.")
    share = raw.get("control_share", 0.1)
    try:
        out["control_share"] = float(share if share not in (None, "") else 0)
        if not 0 <= out["control_share"] <= 0.5:
            raise ValueError
    except (TypeError, ValueError):
        errors["control_share"] = _("Between 0 and 0.5.")
    try:
        out["criteria"] = crit.check(raw.get("criteria"))
    except FormError as exc:
        errors.update(exc.errors)
    try:
        out["ranking"] = check_ranking(raw.get("ranking"))
    except FormError as exc:
        errors.update(exc.errors)
    sup = {**DEFAULT_SUPPRESSION, **(raw.get("suppression") or {})}
    try:
        sup["frequency_days"] = int(sup["frequency_days"])
        sup["exclude_ids"] = [int(i) for i in sup.get("exclude_ids") or []]
        # bounded: a date (timedelta) and BIGINT overflow were 500s
        if not 0 <= sup["frequency_days"] <= crit.MAX_DAYS or not all(0 < i <= crit.MAX_ID for i in sup["exclude_ids"]):
            raise ValueError
    except (TypeError, ValueError):
        errors["suppression"] = _("Frequency cap days and excluded ids are whole numbers.")
    out["suppression"] = sup
    if errors:
        raise FormError(errors)
    return out


async def do_save_campaign(db: AsyncSession, raw: dict[str, Any], actor: str,
                           campaign: Campaign | None = None) -> Campaign:
    values = check_campaign(raw)
    if campaign is None:
        await check_limit(db, None, "campaigns_per_month")
        campaign = Campaign(**values)
        db.add(campaign)
    else:
        for key, value in values.items():
            setattr(campaign, key, value)
    await db.flush()
    await audit(db, actor, "campaign.saved", "campaign", campaign.id)
    return campaign


# ---- the target in SQL -----------------------------------------------------------------------


def _suppressions(campaign: Campaign, source: Any) -> tuple[Any, dict[str, Any]]:
    """One boolean per reason a matched client is left out, and the FROM clause they need."""
    sup = {**DEFAULT_SUPPRESSION, **(campaign.suppression or {})}
    c = Client
    out: dict[str, Any] = {}
    if campaign.channel in CONSENT_CHANNELS:
        out["no_consent"] = ~func.coalesce(c.consent.has_key(campaign.channel), False)
    contact = {"email": c.email, "sms": c.phone, "calls": c.phone, "post": c.address}.get(campaign.channel)
    out["no_contact"] = contact.is_(None) if contact is not None else literal(False)
    out["archived"] = or_(c.archived_at.is_not(None), c.erased_at.is_not(None))
    if sup["frequency_days"] > 0:
        other = Campaign.__table__.alias("other")
        # A join to the distinct recent members, not an IN (subquery) per client: a plain column keeps
        # the count parallel-safe, and PostgreSQL hashes the recent members once.
        recent = (select(CampaignMember.client_id)
                  .select_from(CampaignMember.__table__.join(other, other.c.id == CampaignMember.campaign_id))
                  .where(~CampaignMember.control, other.c.id != (campaign.id or 0),
                         other.c.launched_at >= clock.now() - timedelta(days=sup["frequency_days"]))
                  .distinct().subquery("recent"))
        source = source.outerjoin(recent, recent.c.client_id == c.id)
        out["recently_contacted"] = recent.c.client_id.is_not(None)
    excluded = [c.tags.contains([sup["exclude_tag"]])] if sup.get("exclude_tag") else []
    if sup.get("exclude_ids"):
        excluded.append(c.id.in_(sup["exclude_ids"]))
    out["excluded"] = or_(*excluded) if excluded else literal(False)
    return source, out


def score_expression(ranking: dict[str, Any], partition: Any = None) -> Any:
    """The ranking score. A weighted mix ranks each component among the clients of `partition`."""
    s, c = ClientScore, Client
    components = {
        "clv": func.coalesce(cast(s.clv, Float), 0.0),
        "expected_purchases": func.coalesce(s.expected_purchases, 0.0),
        "p_alive": func.coalesce(s.p_alive, 0.0),
        "revenue": cast(c.revenue_total, Float),
        "recency": -cast(func.coalesce(func.current_date() - c.last_operation_on, 100000), Float),
    }
    if "weights" in ranking:
        # Each component as its percent rank among the eligible, so units do not matter.
        total = sum(ranking["weights"].values())
        return sum(literal(w / total) * func.percent_rank().over(partition_by=partition, order_by=components[k])
                   for k, w in ranking["weights"].items())
    return components[ranking.get("by", "clv")]


def control_expression(campaign_id: int, share: float, client_id: str) -> Any:
    """A stable pseudo-random draw per (campaign, client): the same clients are held out on
    every rebuild, and no other campaign's draw is correlated with it. `client_id`: a column in SQL."""
    threshold = int(round(share * 10000))
    return literal_column(
        f"((('x' || substr(md5('{int(campaign_id)}:' || {client_id}::text), 1, 8))::bit(32)::bigint"
        f" % 10000) < {threshold})")


def target(campaign: Campaign, today: date) -> tuple[Any, list[str]]:
    """Every client the criteria match, once, with a flag per suppression reason, `eligible` and
    `score`: the preview counts it and the build ranks it in a single scan of the clients."""
    source = Client.__table__.outerjoin(ClientScore.__table__, ClientScore.client_id == Client.id)
    source, sup = _suppressions(campaign, source)
    eligible = ~or_(*sup.values())
    query = select(Client.id.label("id"), *[v.label(k) for k, v in sup.items()], eligible.label("eligible"),
                   score_expression(campaign.ranking, partition=eligible).label("score")) \
        .select_from(source).where(crit.condition(campaign.criteria, today))
    return query.subquery("target"), list(sup)


async def _plan_for_these_values(db: AsyncSession, jit: bool = False) -> None:
    """A target's selectivity depends on its values (a revenue floor, a product group), so plan each
    query for them: after five runs on a connection PostgreSQL may switch a prepared statement to a
    generic plan, which at a million clients counted 2x slower. JIT compiling costs more than it saves
    on the live count (measured); the build's sort and insert of 100,000 rows gain from it."""
    await db.execute(_CUSTOM_PLAN_NO_JIT if not jit else _CUSTOM_PLAN)  # SET LOCAL, both in one round trip


_CUSTOM_PLAN = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
_CUSTOM_PLAN_NO_JIT = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                           "set_config('jit', 'off', true)")


@dataclass
class Preview:
    matched: int
    eligible: int
    excluded: dict[str, int]
    sample: list[tuple[Client, float]]


def _counts(t: Any, reasons: list[str]) -> list[Any]:
    return [func.count(), func.count().filter(t.c.eligible), *[func.count().filter(t.c[r]) for r in reasons]]


async def preview(db: AsyncSession, campaign: Campaign, today: date | None = None) -> Preview:
    """The live count: matched, eligible and excluded per reason, in one parallel-safe scan."""
    await _plan_for_these_values(db)
    t, reasons = target(campaign, today or clock.today())
    row = (await db.execute(select(*_counts(t, reasons)))).one()
    return Preview(row[0], row[1], dict(zip(reasons, row[2:], strict=True)), [])


async def sample(db: AsyncSession, campaign: Campaign, today: date | None = None,
                 limit: int = SAMPLE) -> list[tuple[Client, float]]:
    """The top of the ranking, as the list would start. Asked for apart from the count, so the count
    the builder waits on stays one scan (an ordered sample in it would keep PostgreSQL serial)."""
    await _plan_for_these_values(db)
    t, _reasons = target(campaign, today or clock.today())
    top = select(t.c.id, t.c.score).where(t.c.eligible).order_by(t.c.score.desc(), t.c.id).limit(limit).subquery()
    rows = await db.execute(select(Client, top.c.score).join(top, top.c.id == Client.id)
                            .order_by(top.c.score.desc(), Client.id))
    return [(c, score) for c, score in rows]


async def build(db: AsyncSession, campaign: Campaign, today: date | None = None) -> int:
    """Replace the member snapshot in the caller's transaction, with one statement: it reads the
    target once, inserts the ranked top, and counts the exclusions per reason."""
    t, reasons = target(campaign, today or clock.today())
    matched = select(t).cte("matched").prefix_with("MATERIALIZED")
    chosen = select(matched.c.id, matched.c.score).where(matched.c.eligible) \
        .order_by(matched.c.score.desc(), matched.c.id)
    if campaign.size:
        chosen = chosen.limit(campaign.size)
    chosen = chosen.subquery("chosen")
    rank = func.row_number().over(order_by=(chosen.c.score.desc(), chosen.c.id))
    control = control_expression(campaign.id, campaign.control_share or 0, client_id="chosen.id")
    inserted = insert(CampaignMember).from_select(
        ["campaign_id", "rank", "client_id", "score", "control"],
        select(literal(campaign.id), rank, chosen.c.id, chosen.c.score, control)
    ).returning(CampaignMember.control).cte("inserted")
    await db.execute(delete(CampaignMember).where(CampaignMember.campaign_id == campaign.id))
    row = (await db.execute(select(*[func.count().filter(matched.c[r]) for r in reasons],
                                   select(func.count()).select_from(inserted).scalar_subquery(),
                                   select(func.count()).select_from(inserted).where(inserted.c.control)
                                   .scalar_subquery()).select_from(matched))).one()
    campaign.members_count, campaign.control_count = row[-2], row[-1]
    campaign.excluded = dict(zip(reasons, row[:-2], strict=True))
    campaign.status, campaign.error, campaign.built_at = "ready", None, clock.now()
    return row[-2]


async def members(db: AsyncSession, campaign: Campaign, *, after: int = 0,
                  limit: int = 100) -> list[tuple[CampaignMember, Client]]:
    rows = await db.execute(
        select(CampaignMember, Client).join(Client, Client.id == CampaignMember.client_id)
        .where(CampaignMember.campaign_id == campaign.id, CampaignMember.rank > after)
        .order_by(CampaignMember.rank).limit(limit))
    return [(m, c) for m, c in rows]


async def positions(db: AsyncSession, campaign: Campaign, rows: list[tuple[CampaignMember, Client]],
                    after: int = 0) -> list[int]:
    """Each row's place in its own group, from 1: the sent list and the control group are numbered
    separately (the stored rank counts both, so the sent list would skip the control's numbers)."""
    seen = {False: 0, True: 0}
    if after:
        seen.update(dict((await db.execute(
            select(CampaignMember.control, func.count()).where(CampaignMember.campaign_id == campaign.id,
                                                               CampaignMember.rank <= after)
            .group_by(CampaignMember.control))).tuples().all()))
    places = []
    for m, _c in rows:
        seen[bool(m.control)] += 1
        places.append(seen[bool(m.control)])
    return places


EXPORT_COLUMNS = {
    "email": [("email", "Email")], "sms": [("phone", "Phone")], "calls": [("phone", "Phone")],
    "post": [("address", "Address")], "none": [("phone", "Phone"), ("email", "Email")],
}


async def export(db: AsyncSession, campaign: Campaign, fmt: str, actor: str) -> bytes:
    """The list for the channel, control group left out, numbered 1…n, formula-safe (CSV) or typed
    (XLSX: text cells, so phones keep their plus); written to the audit log."""
    cols = [("rank", "Rank"), ("last_name", "Last name"), ("first_name", "First name"),
            ("middle_name", "Patronymic"), *EXPORT_COLUMNS[campaign.channel], ("score", "Score")]
    rows = await db.execute(
        select(CampaignMember, Client).join(Client, Client.id == CampaignMember.client_id)
        .where(CampaignMember.campaign_id == campaign.id, ~CampaignMember.control, Client.erased_at.is_(None))
        .order_by(CampaignMember.rank))
    data = [[place if k == "rank" else round(m.score or 0, 4) if k == "score" else getattr(c, k)
             for k, _label in cols] for place, (m, c) in enumerate(rows, start=1)]
    await audit(db, actor, "campaign.exported", "campaign", campaign.id, format=fmt, rows=len(data))
    if fmt == "xlsx":
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet("list")
        ws.append([_(label) for _k, label in cols])
        for row in data:
            ws.append(xlsx_cells(ws, [v if isinstance(v, int | float) else str(v or "") for v in row]))
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";")
    writer.writerow([_(label) for _k, label in cols])
    for row in data:
        writer.writerow([formula_safe("" if v is None else str(v)) for v in row])
    return buf.getvalue().encode("utf-8-sig")


async def do_launch(db: AsyncSession, campaign: Campaign, actor: str) -> None:
    if campaign.status != "ready":
        raise FormError({"status": _("Build the list before launching.")})
    campaign.launched_at = clock.now()
    await audit(db, actor, "campaign.launched", "campaign", campaign.id)


async def do_duplicate(db: AsyncSession, campaign: Campaign, actor: str) -> Campaign:
    copy = Campaign(name=_("%(name)s (copy)", name=campaign.name), goal=campaign.goal, channel=campaign.channel,
                    criteria=campaign.criteria, ranking=campaign.ranking, size=campaign.size,
                    control_share=campaign.control_share, suppression=campaign.suppression,
                    response_days=campaign.response_days)
    db.add(copy)
    await db.flush()
    await audit(db, actor, "campaign.duplicated", "campaign", copy.id, source=campaign.id)
    return copy


async def do_save_segment(db: AsyncSession, name: str, criteria: dict[str, Any]) -> SavedSegment:
    name = (name or "").strip()
    if not name:
        raise FormError({"segment_name": _("Name the segment.")})
    segment = SavedSegment(name=name[:200], criteria=crit.check(criteria))
    db.add(segment)
    await db.flush()
    return segment


RESULTS = text("""
    SELECT m.control, count(*) AS n, count(*) FILTER (WHERE r.buys > 0) AS responders,
           coalesce(sum(r.revenue), 0)::float8 AS revenue, coalesce(sum(r.revenue * r.revenue), 0)::float8 AS revenue_sq
    FROM campaign_members m
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE o.kind <> 'return') AS buys,
               coalesce(sum(CASE WHEN o.kind = 'return' THEN -o.amount ELSE o.amount END), 0) AS revenue
        FROM operations o
        WHERE o.client_id = m.client_id AND o.occurred_on > :start AND o.occurred_on <= :end
    ) r ON true
    WHERE m.campaign_id = :cid
    GROUP BY m.control
""")


async def results(db: AsyncSession, campaign: Campaign) -> dict[str, Any] | None:
    if campaign.launched_at is None:
        return None
    start = campaign.launched_at.date()
    end = start + timedelta(days=campaign.response_days or 30)
    rows = {bool(r[0]): GroupStats(r[1], r[2], r[3], r[4]) for r in
            (await db.execute(RESULTS, {"cid": campaign.id, "start": start, "end": end})).all()}
    target, control = rows.get(False, GroupStats(0, 0, 0, 0)), rows.get(True, GroupStats(0, 0, 0, 0))
    return {"target": target, "control": control, "rate": rate_uplift(target, control),
            "revenue": revenue_uplift(target, control), "window_end": end,
            "finished": clock.today() >= end}




async def forget_erased_client(db: AsyncSession, client_id: int) -> dict[str, int]:
    """A client was erased (`clients.events.client_erased`): out of every list not yet launched
    (those go to a channel). A launched list keeps the id of the anonymised card, which its
    measured results need and which says nothing about the person."""
    gone = (await db.execute(
        delete(CampaignMember).where(CampaignMember.client_id == client_id,
                                     CampaignMember.campaign_id == Campaign.id, Campaign.launched_at.is_(None))
        .returning(CampaignMember.campaign_id, CampaignMember.control))).all()
    for campaign_id, control in gone:
        values = {"members_count": Campaign.members_count - 1}  # members_count includes the control group
        if control:
            values["control_count"] = Campaign.control_count - 1
        await db.execute(Campaign.__table__.update().where(Campaign.id == campaign_id).values(values))
    return {"campaign_lists": len(gone)}
