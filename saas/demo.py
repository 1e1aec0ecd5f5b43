"""The demo company: a small home-goods shop with a repair service, with years of history.

`saas demo`, the landing page's "Try the demo", tests and benchmarks call `create_demo`, at any size.
All randomness comes from one numpy Generator and one Faker('ru_RU'), both seeded with the seed and
used in a fixed order: a seed gives the same company (only passport ciphertexts differ: random nonces).
The history runs from 1 January `years` years before this year to today, so the growth chart's first
year is a whole one (a first "year" cut in November would show one month against the next twelve).

The generative process (time in days):
1. Acquisition: a client's first purchase falls on day t with density ∝ e^(g·t) (45 % more newcomers
   each year: the yearly growth chart rises), thinned by a seasonal weight w(month) that peaks in
   November–December and in spring.
2. Buy till you die (Pareto/NBD): a client is heavy (10 %), regular (40 %) or rare/one-time (50 %).
   The segment sets a purchase rate λ ~ Γ per year and a dropout rate μ ~ Γ(1.5, mean 1 / the
   segment's mean lifetime); the client buys until join + τ, τ ~ Exp(μ), then is gone (churn).
   Repeat purchases: a Poisson process at λ / mean(w) on that span, thinned by w(month) (seasonality
   keeping the mean rate λ). 3 % of cards never bought anything.
3. A purchase is a service ("Ремонт и сервис": 40 % for the quarter of clients who use the workshop,
   5 % for the others) or a sale in the client's direction (retail, online, or wholesale for clients
   tagged "опт"), mostly in the favourite product group. Sales ~ Γ(2.5, ν/2.5) around the client's
   own mean ν ~ Γ(3, 1100 ₽) (wholesale ×5); services ~ Γ(3, 900 ₽).
4. Returns: 4 % of sales come back 1–14 days later, in full (70 %) or in part.
5. Payment: 35 % of sales and services are due in 7, 14 or 30 days, the rest paid on the day. 12 % of
   clients pay late (20–90 days after the due date) and leave a quarter of their bills unpaid
   (overdue); the others pay up to a week early. Payments after today have not happened yet.
6. Cards: names with the patronymic of the client's gender, unique +79… phones and Latin e-mails
   (90 %), addresses mostly in the shop's city, birth dates 1950–2005, passports for 30 % (issued
   after the 14th, 20th or 45th birthday) encrypted as the product does, consents (e-mail ≈60 %,
   SMS ≈40 %, calls ≈25 %, source "demo"), tags and interests.
7. Imports: the 1C base and the online shop's contacts came through two finished imports (their
   clients carry the import id); a third, a trade-fair list, was undone (its rows are gone).
Then the kept-current metrics and the analytics (scores, fits, dashboard) are refreshed, all in one
transaction: a failure leaves nothing behind.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from faker import Faker
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from saas.analytics import scoring
from saas.clients.models import Direction, Import, ProductGroup
from saas.clients.operations import refresh_all_metrics
from saas.clients.service import passport_columns
from saas.core import clock
from saas.core.db import Database, bind, ident
from saas.core.text import TRANSLIT, slugify
from saas.accounts import service as accounts
from saas.accounts.models import Membership, User
from saas.core.models import Tenant
from saas.core.web.security import hash_password

DEFAULT_NAME = "Дом и Ремонт"
DOMAIN = "demo.kartoteka.local"  # reserved (.local): never deliverable; signup refuses it, login does not
TEAM = (("owner", "Ольга Сергеевна Миронова"), ("marketer", "Дмитрий Андреевич Котов"),
        ("viewer", "Ирина Павловна Белова"))
GROUPS = ("Мебель", "Текстиль", "Посуда", "Освещение", "Хозтовары", "Декор")
DIRECTIONS = ("Розница", "Интернет-магазин", "Ремонт и сервис", "Опт")
RETAIL, ONLINE, REPAIR, WHOLESALE = range(4)
KINDS = ("sale", "service", "return")
FURNITURE, LIGHTING = 0, 3
SERVICES = ("Перетяжка дивана", "Ремонт стула", "Сборка шкафа", "Установка люстры", "Замена фурнитуры",
            "Реставрация комода", "Ремонт торшера")
#                   Jan   Feb   Mar   Apr   May   Jun   Jul   Aug   Sep   Oct   Nov   Dec
SEASON = np.array([0.50, 0.50, 0.80, 0.85, 0.80, 0.55, 0.50, 0.55, 0.65, 0.70, 0.95, 1.00])
# segment: share, λ ~ Γ(shape, scale) purchases a year, mean lifetime in years
SEGMENTS = np.array([(0.10, 4.0, 2.5, 3.0), (0.40, 2.5, 1.2, 1.5), (0.50, 0.8, 0.5, 0.7)])
HEAVY = 0
# Dropout rates μ ~ Γ(LIFE_SHAPE, …) as the model assumes: with a few fixed lifetimes (μ not gamma) the
# Pareto/NBD fit crawls along a ridge (s → ∞) for half a minute instead of two seconds.
LIFE_SHAPE = 1.5
GROWTH = 1.45  # newcomers per year, relative to the year before
CITY, REGION, REGION_CODE = "Тверь", "Тверской области", 28
MAIL = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru", "rambler.ru")
MAIL_P = (0.30, 0.25, 0.20, 0.08, 0.07, 0.06, 0.04)


@dataclass
class DemoResult:
    slug: str
    name: str
    owner_email: str
    password: str
    members: list[tuple[str, str]]  # (email, role)
    counts: dict[str, int]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    method: str = ""
    statuses: dict[str, int] = field(default_factory=dict)


class DemoError(Exception):
    """The demo cannot be created as asked (e.g. resetting a company that is not a demo)."""


def demo_emails(slug: str) -> list[str]:
    """The team's logins: owner@demo.kartoteka.local for the default demo, owner@<slug>.demo… else."""
    domain = DOMAIN if slug == slugify(DEFAULT_NAME) else f"{slug}.{DOMAIN}"
    return [f"{role}@{domain}" for role, _name in TEAM]


async def create_demo(db: Database, *, clients: int = 5000, years: int = 3, seed: int = 42,
                      name: str | None = None, reset: bool = False, today: date | None = None) -> DemoResult:
    """Create a demo company (is_demo) with `clients` clients and `years` years of history to today."""
    marks = [("start", time.perf_counter())]
    today = today or clock.today()
    rng = np.random.default_rng(seed)
    fake = Faker("ru_RU")
    fake.seed_instance(seed)
    first_day = date(today.year - years, 1, 1)  # a whole first year: the growth chart's rates mean something
    days = (today - first_day).days + 1
    start = np.datetime64(first_day, "D")
    h = _history(rng, clients, days, start)
    cards = _cards(fake, rng, h, start, today)
    marks.append(("generate", time.perf_counter()))
    password = f"demo-{seed}-pass"
    async with db.session() as s:
        name = await _claim(s, name or DEFAULT_NAME, reset)
        tenant = await accounts.do_create_tenant(s, name, None, locale="ru", is_demo=True)
        members, owner_id = await _team(s, tenant, password)
        await bind(s, tenant.schema_name)
        counts = await _write(s, tenant.schema_name, rng, h, cards, start, f"user:{owner_id}")
        marks.append(("write", time.perf_counter()))
        await refresh_all_metrics(s)
        await s.execute(text("ANALYZE clients, operations"))  # fresh tables: give the planner statistics
        marks.append(("metrics", time.perf_counter()))
        scores = await scoring.refresh(s, today=today)
        marks.append(("analytics", time.perf_counter()))
        counts["operations"] += await add_demo_campaigns(s, tenant, rng, today)
    marks.append(("commit", time.perf_counter()))
    timings = {n: round(t - marks[i - 1][1], 2) for i, (n, t) in enumerate(marks) if i}
    return DemoResult(tenant.slug, name, members[0][0], password, members,
                      {**counts, "members": len(members)}, round(marks[-1][1] - marks[0][1], 2), timings,
                      scores.method, scores.status_counts)


async def add_demo_campaigns(session: AsyncSession, tenant: Tenant, rng: np.random.Generator,
                             today: date | None = None) -> int:
    """Three campaigns: one finished (launched two months ago, with a measured uplift: its target
    group bought more often in the response window than its control group), one built and ready,
    one draft. The response is simulated on top of the organic purchases already generated."""
    from sqlalchemy import select

    from saas.campaigns import service as campaigns
    from saas.campaigns.models import CampaignMember
    from saas.clients.operations import refresh_metrics

    today = today or clock.today()
    actor = "system:demo"
    finished = await campaigns.do_save_campaign(session, {
        "name": "Осенняя распродажа",
        "goal": "Вернуть клиентов под угрозой ухода и потерянных, напомнить о себе активным",
        "channel": "email", "criteria": {"any": [{"status": ["active", "at_risk", "lost"]}]}, "ranking": "clv",
        "size": 1200, "control_share": 0.2, "starts_on": today - timedelta(days=60),
        "ends_on": today - timedelta(days=30)}, actor)
    await campaigns.build(session, finished)
    start_day = today - timedelta(days=60)
    launched = datetime(start_day.year, start_day.month, start_day.day, 10, tzinfo=UTC)
    finished.launched_at = launched
    rows = (await session.execute(select(CampaignMember.client_id, CampaignMember.control)
                                  .where(CampaignMember.campaign_id == finished.id))).all()
    extra, touched = [], []
    for client_id, control in rows:
        if rng.random() < (0.10 if control else 0.24):
            day = launched.date() + timedelta(days=int(rng.integers(1, 30)))
            extra.append({"client_id": client_id, "kind": "sale", "occurred_on": day,
                          "amount": Decimal(str(round(float(rng.gamma(3.0, 900.0)) + 300, 2)))})
            touched.append(client_id)
    if extra:
        from sqlalchemy import insert

        from saas.clients.models import Operation

        await session.execute(insert(Operation), extra)
        await refresh_metrics(session, touched)
    ready = await campaigns.do_save_campaign(session, {
        "name": "Новогодние подарки", "goal": "Предложить декор и текстиль к праздникам", "channel": "sms",
        "criteria": {"any": [{"deals_min": 2, "status": ["active", "new"]}, {"segments": ["champions", "loyal"]}]},
        "ranking": {"weights": {"clv": 0.6, "p_alive": 0.4}}, "size": 500, "control_share": 0.1}, actor)
    await campaigns.build(session, ready)
    await campaigns.do_save_campaign(session, {
        "name": "Поздравление с днём рождения", "channel": "calls",
        "criteria": {"any": [{"birthday_from": f"{today:%m-%d}", "birthday_to": f"{today + timedelta(days=30):%m-%d}",
                              "risk_exclude": ["risk"]}]}, "ranking": "p_alive", "control_share": 0.1}, actor)
    return len(extra)


async def _claim(s: AsyncSession, name: str, reset: bool) -> str:
    """The name to create: `name` after deleting its demo (reset), else the first free 'name N'."""
    existing = await accounts.get_tenant_by_slug(s, slugify(name))
    if existing is None:
        return name
    if reset:
        if not existing.is_demo:
            raise DemoError(f"{existing.slug!r} is not a demo company: only demo companies can be reset")
        await _delete(s, existing)
        return name
    n = 2
    while await accounts.get_tenant_by_slug(s, slugify(f"{name} {n}")) is not None:
        n += 1
    return f"{name} {n}"


async def _delete(s: AsyncSession, tenant: Tenant) -> None:
    await s.execute(text(f"DROP SCHEMA IF EXISTS {ident(tenant.schema_name)} CASCADE"))
    await s.execute(delete(Membership).where(Membership.tenant_id == tenant.id))
    await s.execute(delete(User).where(User.email.in_(demo_emails(tenant.slug))))
    await s.execute(delete(Tenant).where(Tenant.id == tenant.id))


async def _team(s: AsyncSession, tenant: Tenant, password: str) -> tuple[list[tuple[str, str]], int]:
    password_hash = await hash_password(password)  # one hash: the three share the printed password
    members, ids = [], []
    for (role, full_name), email in zip(TEAM, demo_emails(tenant.slug), strict=True):
        user = await accounts.get_user_by_email(s, email)
        if user is None:  # created directly: the signup check refuses the reserved .local domain
            user = User(email=email, name=full_name, password_hash=password_hash, locale="ru")
            s.add(user)
            await s.flush()
        user.password_hash = password_hash
        s.add(Membership(user_id=user.id, tenant_id=tenant.id, role=role))
        members.append((email, role))
        ids.append(user.id)
    await s.flush()
    return members, ids[0]


# ---- the generative process --------------------------------------------------------------------


def _months(start: np.datetime64, day: np.ndarray) -> np.ndarray:
    return (start + day.astype("timedelta64[D]")).astype("datetime64[M]").astype(int) % 12


def _dates(start: np.datetime64, day: np.ndarray) -> list[date | None]:
    out = (start + np.maximum(day, 0).astype("timedelta64[D]")).astype(object)
    out[day < 0] = None
    return out.tolist()


def _history(rng: np.random.Generator, n: int, days: int, start: np.datetime64) -> dict[str, Any]:
    """Clients (in order of joining) and their operations, as arrays; day numbers, -1 for none."""
    g = np.log(GROWTH) / 365.25
    cand = (np.log1p(rng.random(3 * n + 100) * np.expm1(g * days)) / g).astype(np.int64)
    join = np.sort(cand[rng.random(len(cand)) < SEASON[_months(start, cand)]][:n])
    seg = rng.choice(len(SEGMENTS), n, p=SEGMENTS[:, 0])
    lam = rng.gamma(SEGMENTS[seg, 1], SEGMENTS[seg, 2]) / 365.25
    mu = rng.gamma(LIFE_SHAPE, 1 / (LIFE_SHAPE * SEGMENTS[seg, 3] * 365.25))  # dropout rate, mean 1/lifetime
    span = np.minimum(join + rng.exponential(1 / mu), days) - join
    k = rng.poisson(lam / SEASON.mean() * span)
    owner = np.repeat(np.arange(n), k)
    repeat = (join[owner] + rng.random(len(owner)) * span[owner]).astype(np.int64)
    keep = rng.random(len(repeat)) < SEASON[_months(start, repeat)]
    buyer = rng.random(n) >= 0.03
    client = np.concatenate([np.arange(n), owner[keep]])
    day = np.concatenate([join, repeat[keep]])
    order = np.lexsort((day, client))
    client, day = client[order], day[order]
    client, day = client[buyer[client]], day[buyer[client]]

    wholesale, repair, late = rng.random(n) < 0.04, rng.random(n) < 0.25, rng.random(n) < 0.12
    main = np.where(wholesale, WHOLESALE, np.where(rng.random(n) < 0.3, ONLINE, RETAIL))
    fav = rng.integers(0, len(GROUPS), n)
    nu = rng.gamma(3.0, 1100.0, n) * np.where(wholesale, 5, 1)
    m = len(client)
    service = rng.random(m) < np.where(repair[client], 0.4, 0.05)
    usual = np.where(rng.random(m) < 0.85, main[client], np.where(main[client] == RETAIL, ONLINE, RETAIL))
    direction = np.where(service, REPAIR, usual)
    group = np.where(rng.random(m) < 0.7, fav[client], rng.integers(0, len(GROUPS), m))
    group = np.where(service, rng.choice([FURNITURE, LIGHTING, -1], m, p=[0.5, 0.3, 0.2]), group)
    amount = np.where(service, rng.gamma(3.0, 900.0, m), rng.gamma(2.5, nu[client] / 2.5))
    amount = np.maximum(np.round(amount, -1), 90)

    deferred = rng.random(m) < 0.35
    due = np.where(deferred, day + rng.choice([7, 14, 30], m), -1)
    on_time = np.maximum(due - rng.integers(0, 8, m), day)
    paid = np.where(late[client], due + rng.integers(20, 91, m), on_time)
    unpaid = (late[client] & (rng.random(m) < 0.25)) | (paid > days - 1)
    paid = np.where(deferred, np.where(unpaid, -1, paid), day)

    back = ~service & (rng.random(m) < 0.04)
    back_day = day + rng.integers(1, 15, m)
    back &= back_day <= days - 1
    part = np.maximum(np.round(amount * rng.uniform(0.2, 0.8, m), -1), 10)
    back_amount = np.where(rng.random(m) < 0.7, amount, part)
    none = np.full(back.sum(), -1)
    return {
        "days": days, "join": join, "seg": seg, "wholesale": wholesale, "repair": repair, "main": main, "fav": fav,
        "client": np.concatenate([client, client[back]]), "day": np.concatenate([day, back_day[back]]),
        "kind": np.concatenate([np.where(service, "service", "sale"), np.full(back.sum(), "return")]),
        "direction": np.concatenate([direction, direction[back]]), "group": np.concatenate([group, group[back]]),
        "amount": np.concatenate([amount, back_amount[back]]),
        "due": np.concatenate([due, none]), "paid": np.concatenate([paid, none]),
    }


def _latin(word: str) -> str:
    return "".join(ch for ch in "".join(TRANSLIT.get(c, c) for c in word.lower()) if "a" <= ch <= "z")


def _cards(fake: Faker, rng: np.random.Generator, h: dict[str, Any], start: np.datetime64,
           today: date) -> list[dict[str, Any]]:
    """Cards of the clients of `h`, in its order (the client with index i gets id i + 1)."""
    n = len(h["join"])
    female = rng.random(n) < 0.56
    birth = _dates(np.datetime64("1950-01-01"), rng.integers(0, (date(2006, 1, 1) - date(1950, 1, 1)).days, n))
    joined = _dates(start, h["join"])
    draws = rng.integers(0, 10**9, 2 * n + 10)
    _u, first_seen = np.unique(draws, return_index=True)
    phones = draws[np.sort(first_seen)][:n]
    has_email, has_address, local = rng.random(n) < 0.9, rng.random(n) < 0.75, rng.random(n) < 0.8
    style, domain, apt = rng.integers(0, 4, n), rng.choice(len(MAIL), n, p=MAIL_P), rng.integers(1, 200, n)
    consent = {"email": has_email & (rng.random(n) < 0.6 / 0.9), "sms": rng.random(n) < 0.4,
               "calls": rng.random(n) < 0.25}
    passport, delay = rng.random(n) < 0.3, [timedelta(days=int(d)) for d in rng.integers(1, 120, n)]
    number, region, division = rng.integers(0, 10**6, n), rng.integers(1, 99, n), rng.integers(0, 10**6, n)
    tags = {"vip": (h["seg"] == HEAVY) & (rng.random(n) < 0.35), "опт": h["wholesale"],
            "дизайнер": rng.random(n) < 0.03, "новосёл": rng.random(n) < 0.06}
    interests, second = rng.random(n) < 0.75, rng.integers(0, len(GROUPS), n)
    taken: set[str] = set()
    cards = []
    for i in range(n):
        sex, b = ("female" if female[i] else "male"), birth[i]
        last, first = getattr(fake, f"last_name_{sex}")(), getattr(fake, f"first_name_{sex}")()
        card = {"last_name": last, "first_name": first, "middle_name": getattr(fake, f"middle_name_{sex}")(),
                "birth_date": b, "phone": f"+79{phones[i]:09d}", "email": None, "address": None, "joined": joined[i]}
        if has_email[i]:
            f, surname = _latin(first) or "client", _latin(last) or "mail"
            name = (f"{f}.{surname}", f"{f[0]}.{surname}", f"{surname}{b.year % 100:02d}", f"{f}{surname}")[style[i]]
            email = f"{name}@{MAIL[domain[i]]}"
            while email in taken:
                email = f"{name}{rng.integers(1, 1000)}@{MAIL[domain[i]]}"
            taken.add(email)
            card["email"] = email
        if has_address[i]:
            card["address"] = f"г. {CITY if local[i] else fake.city_name()}, {fake.street_address()}, кв. {apt[i]}"
        # a passport is replaced at 14, 20 and 45: the last of these birthdays before today
        issued = [d for a in (45, 20, 14) if (d := date(b.year + a, b.month, min(b.day, 28)) + delay[i]) < today]
        card["passport"] = {}  # the form's fields: sealed in `_write`, once the company exists
        if passport[i] and issued:
            card["passport"] = {
                "passport_series": f"{REGION_CODE if local[i] else region[i]:02d}{issued[0].year % 100:02d}",
                "passport_number": f"{number[i]:06d}", "passport_issued_on": issued[0],
                "passport_issued_by": f"УМВД России по {REGION}" if local[i] else f"ГУ МВД России по {fake.region()}",
                "passport_division_code": f"{division[i] // 1000:03d}-{division[i] % 1000:03d}"}
        card["consent"] = {c: {"at": joined[i].isoformat(), "source": "demo"} for c, on in consent.items() if on[i]}
        card["tags"] = [t for t, on in tags.items() if on[i]]
        card["groups"] = sorted({int(h["fav"][i]), int(second[i])}) if interests[i] else []
        card["directions"] = sorted({int(h["main"][i]), *([REPAIR] if h["repair"][i] else [])}) if interests[i] else []
        cards.append(card)
    return cards


# ---- writing -----------------------------------------------------------------------------------

CLIENT_COLUMNS = ("id", "last_name", "first_name", "middle_name", "birth_date", "phone", "email", "address",
                  "passport_enc", "passport_key_id", "passport_bidx", "passport_mask", "consent", "tags",
                  "product_group_ids", "direction_ids", "import_id", "created_at", "updated_at")
OPERATION_COLUMNS = ("client_id", "kind", "occurred_on", "amount", "product_group_id", "direction_id", "due_on",
                     "paid_on", "note")


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def _write(s: AsyncSession, schema: str, rng: np.random.Generator, h: dict[str, Any],
                 cards: list[dict[str, Any]], start: np.datetime64, actor: str) -> dict[str, int]:
    """Dictionaries and imports through the ORM, clients and operations with COPY."""
    groups, directions = [ProductGroup(name=g) for g in GROUPS], [Direction(name=d) for d in DIRECTIONS]
    imports = _imports(rng, h, start, actor)
    s.add_all([*groups, *directions, *(imp for imp, _members in imports)])
    await s.flush()
    group_ids, direction_ids = [g.id for g in groups], [d.id for d in directions]
    import_of = {int(i): imp for imp, members in imports for i in members}
    raw = (await (await s.connection()).get_raw_connection()).driver_connection
    rows = []
    for i, c in enumerate(cards):
        c.update(passport_columns(c.pop("passport"), schema, i + 1))  # sealed to the company and the id
        imp = import_of.get(i)
        created = imp.created_at if imp is not None else _at(c["joined"], 9 + i % 10)
        rows.append((i + 1, *(c[k] for k in CLIENT_COLUMNS[1:12]), json.dumps(c["consent"], ensure_ascii=False),
                     c["tags"], [group_ids[g] for g in c["groups"]], [direction_ids[d] for d in c["directions"]],
                     imp and imp.id, created, created))
    await raw.copy_records_to_table("clients", schema_name=schema, records=rows, columns=CLIENT_COLUMNS)
    await s.execute(text("SELECT setval(pg_get_serial_sequence('clients', 'id'), :n)"), {"n": max(len(cards), 1)})
    kind = h["kind"]
    notes = np.array(SERVICES, dtype=object)[rng.integers(0, len(SERVICES), len(kind))]
    ops = list(zip((h["client"] + 1).tolist(), kind.tolist(), _dates(start, h["day"]),
                   [Decimal(int(a)) for a in h["amount"]], [group_ids[g] if g >= 0 else None for g in h["group"]],
                   [direction_ids[d] for d in h["direction"]], _dates(start, h["due"]), _dates(start, h["paid"]),
                   np.where(kind == "service", notes, None).tolist(), strict=True))
    await raw.copy_records_to_table("operations", schema_name=schema, records=ops, columns=OPERATION_COLUMNS)
    return {"clients": len(cards), "operations": len(ops), **{f"{k}s": int((kind == k).sum()) for k in KINDS},
            "passports": sum(c["passport_enc"] is not None for c in cards), "imports": len(imports),
            "imported_clients": len(import_of), "product_groups": len(groups), "directions": len(directions)}


REJECTED = ({"reason": "Not a valid phone number.", "values": {"full_name": "Петров", "phone": "8-900-12"}},
            {"reason": "A client needs at least a last or first name.", "values": {"full_name": ""}},
            {"reason": "Not a valid email address.", "values": {"full_name": "Ким Олег", "email": "oleg@"}})


def _imports(rng: np.random.Generator, h: dict[str, Any], start: np.datetime64,
             actor: str) -> list[tuple[Import, np.ndarray]]:
    """The 1C base and the online shop's contacts (done, with their clients), a trade-fair list (undone)."""
    join, days = h["join"], h["days"]
    first, second, third = (int(days * f) for f in (0.30, 0.62, 0.85))
    base = np.flatnonzero((join < first) & (rng.random(len(join)) < 0.9))
    online = np.flatnonzero((join >= first) & (join < second) & (h["main"] == ONLINE) & (rng.random(len(join)) < 0.8))
    plans = (("клиенты_1С_{y}.csv", "csv", "cp1251", first, base, "done"),
             ("контакты_интернет-магазин_{y}.xlsx", "xlsx", None, second, online, "done"),
             ("выставка_Уют_{y}.csv", "csv", "utf-8", third, np.arange(0), "undone"))
    out = []
    for filename, file_type, encoding, day, members, status in plans:
        when = _at(_dates(start, np.array([day]))[0], 11)
        # A file that created nobody is a real history too (a short demo may have no one joining
        # before the import's day): its rejected and skipped rows still make its report.
        created = len(members) if status == "done" else int(rng.integers(150, 300))  # undone: its rows are gone
        reasons = REJECTED[:int(rng.integers(1, 4))]
        skipped = int(rng.integers(0, 12))
        total = created + len(reasons) + skipped
        lines = np.sort(rng.choice(np.arange(2, total + 2), size=len(reasons), replace=False))
        bad = [{"line": int(line), **r} for line, r in zip(lines, reasons, strict=True)]
        out.append((Import(
            kind="clients", status=status, filename=filename.format(y=when.year), file_type=file_type,
            encoding=encoding, delimiter=";" if file_type == "csv" else None,
            headers=["ФИО", "Телефон", "Email", "Дата рождения"],
            mapping={"0": "full_name", "1": "phone", "2": "email", "3": "birth_date"},
            options={"match_by": ["phone", "email", "passport"], "on_match": "update", "mode": "accepted"},
            total_rows=total, processed_rows=total, created_count=created, skipped_count=skipped,
            rejected_count=len(bad), rejected=bad, created_by=actor, created_at=when,
            finished_at=when + timedelta(seconds=int(rng.integers(3, 40))),
            undone_at=when + timedelta(hours=2) if status == "undone" else None), members))
    return out


def demo_job(clients: int = 5000, years: int = 3, seed: int = 42) -> dict[str, Any]:
    """RQ entry for the landing page's "Try the demo" (development only)."""
    import asyncio

    from saas.core.config import get_settings

    async def main() -> dict[str, Any]:
        db = Database(get_settings().database_url, pool_size=2)
        try:
            existing = await _existing_default(db)
            if existing:
                return existing
            result = await create_demo(db, clients=clients, years=years, seed=seed)
            print(f"[demo] {result.name}: log in as {result.owner_email} / {result.password}", flush=True)
            return {"slug": result.slug, "owner_email": result.owner_email, "password": result.password}
        finally:
            await db.dispose()

    return asyncio.run(main())


async def _existing_default(db: Database) -> dict[str, Any] | None:
    async with db.session() as s:
        tenant = await accounts.get_tenant_by_slug(s, slugify(DEFAULT_NAME))
    if tenant is None or not tenant.is_demo:
        return None
    return {"slug": tenant.slug, "owner_email": demo_emails(tenant.slug)[0], "password": "demo-42-pass"}
