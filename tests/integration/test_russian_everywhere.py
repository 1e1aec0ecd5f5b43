"""Every page a Russian user reaches is in Russian: no English UI words, no catalog msgid left in
English, no raw codes, and numbers, dates and phones in the Russian formats.

The walk starts at the workspace's main pages of a demo company (and the console for a platform
admin), follows every link and htmx fragment inside it, a few of each kind, and reads what a person
sees: the text, and the placeholder/title/aria-label/alt and pre-filled values of inputs.
"""
from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from saas.demo import DemoResult, create_demo
from testkit import Browser, platform_admin, with_database
from tests.integration.processes import wait_for

ADMIN_PASSWORD = "console pass 456"
PER_KIND = 3  # pages visited per path shape (/clients/N counts as one shape)
MAX_PAGES = 160

# Words of an English interface. A Russian page may show Latin names (CSV, XLSX, SMS, RFM, CLV, ID),
# never these.
ENGLISH = set(re.findall(r"\w+", """
the of and or to for from with without in on at by not no yes is are was were be been has have had
this that these those it its all any each every some none only more less than out late overdue
payment payments deals returns return days day months month weeks week years year ago today
new active lost risk reliable watch unknown history enough judge average terms on time
save cancel delete edit add remove search filter filters next previous back close open show hide
name names phone address note notes tags tag group groups status score scores segment segments
client clients customer customers company companies user users team role roles owner admin viewer
marketer import imports export exports file files row rows column columns value values error errors
number numbers amount amounts date dates sale sales service services refund kind type source
campaign campaigns list lists target control channel channels ranking weight weights expected purchases
ready draft building failed done running queued waiting uploaded undone cancelled
free idle suspended deleted purged plan usage storage tenant tenants health queue workers jobs job
settings profile password email login logout sign signup submit apply reset build launch duplicate
rejected accepted skipped created updated merged matched unmatched mapping preview dry run start
waiting handler consent consents passport issued division series birth first last middle patronymic
"""))
# Codes the application stores: a person sees their label instead.
RAW_CODES = {"calls", "sms", "email", "post", "clv", "expected_purchases", "p_alive", "recency", "revenue",
             "sale", "service", "form", "free", "idle", "tenant.suspended", "tenant_id", "at_risk",
             "need_attention", "about_to_sleep", "cant_lose", "potential_loyalists", "MB", "KB", "GB", "kB"}
ALLOWED = {"CSV", "XLSX", "ID", "SMS", "RFM", "CLV", "API", "BG", "NBD", "MBG", "Pareto", "Kartoteka", "JSON",
           "UTF", "cp", "Excel", "HTTP", "PostgreSQL", "Redis", "RQ", "ZIP", "P", "MAPE", "RUB", "USD", "EUR"}

LATIN_WORD = re.compile(r"(?<![\w@.-])[A-Za-z][A-Za-z_]*(?:\.[a-z_]+)*(?![\w@-])")
DECIMAL_POINT = re.compile(r"(?<![\d.,])[-+−]?\d+\.\d+(?![\d.])")
SCIENTIFIC = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?e[+-]\d+")
RAW_PHONE = re.compile(r"\+\d{11}\b")
EMAIL_OR_URL = re.compile(r"\S+@\S+|\S*/\S*|\S+\.(?:local|ru|com|org)\b")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
SKIP = re.compile(r"/(export|rejected\.csv|data\.json|logout)\b|\.(csv|xlsx|zip)\b|/dev/")


class _Visible(HTMLParser):
    """What a person reads on the page, and the links and fragments it reaches."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.values: list[str] = []  # pre-filled inputs: a person sees them too
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style", "template"):
            self._hidden += 1
        for key in ("href", "hx-get"):
            if a.get(key, "").startswith("/"):
                self.links.append(a[key])
        for key in ("placeholder", "title", "aria-label", "alt"):
            if a.get(key):
                self.text.append(a[key])
        if tag == "input" and a.get("type", "text") in ("text", "search", "") and a.get("value"):
            self.values.append(a["value"])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.text.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.text.append(data.strip())


def _catalog() -> list[tuple[str, re.Pattern[str]]]:
    """English msgids with a different Russian text, as patterns (a parameter matches any short text).
    Single words only when long enough not to be a name or an allowed Latin word."""
    path = Path(__file__).resolve().parents[2] / "saas/locale/ru/LC_MESSAGES/messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    found = []
    for m in catalog:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        texts = m.string if isinstance(m.string, tuple) else (m.string,)
        for msgid in ids:
            if not msgid or not any(texts) or msgid in texts:
                continue
            literal = re.sub(r"%\(\w+\)[sd]", " ", msgid)
            if len(re.findall(r"[A-Za-z]{2,}", literal)) < (1 if "%(" not in msgid else 2):
                continue
            if " " not in msgid.strip() and (len(msgid) < 4 or msgid in ALLOWED):
                continue
            parts = [re.escape(p) for p in re.split(r"%\(\w+\)[sd]", msgid)]
            found.append((msgid, re.compile(r"(?<![\w-])" + ".{1,40}?".join(parts) + r"(?![\w-])")))
    return found


CATALOG = _catalog()


def _around(text: str, word: str) -> str:
    at = re.search(r"(?<![\w@./:-])" + re.escape(word) + r"(?![\w@/:-])", text)
    return text[max(0, at.start() - 30):at.end() + 30].replace("\n", " | ") if at else word


def problems(html: str, quoting_file: bool = False, data: tuple[str, ...] = ()) -> list[str]:
    """What a Russian reader should not see on the page. `data`: names people typed (companies, users),
    shown as typed: the suite's other tests name their companies in English."""
    page = _Visible()
    page.feed(html)
    text = EMAIL_OR_URL.sub(" ", "\n".join(page.text))  # addresses are data, not words
    for name in data:
        text = text.replace(name, " ")
    shown = text + "\n" + "\n".join(page.values)
    found: list[str] = []
    words = [w for w in LATIN_WORD.findall(shown) if w not in ALLOWED]
    english = sorted({w for w in words if w.lower() in ENGLISH})
    found += [f"English word {w!r} in {_around(shown, w)!r}" for w in english]
    found += [f"raw code {w!r}" for w in sorted({w for w in words if w in RAW_CODES})]
    found += [f"msgid {msgid!r}" for msgid, pattern in CATALOG if pattern.search(text)]
    found += [f"decimal point {m!r}" for m in sorted(set(DECIMAL_POINT.findall(text)))]
    found += [f"scientific notation {m!r}" for m in sorted(set(SCIENTIFIC.findall(text)))]
    if not quoting_file:  # an import's pages quote the file's cells and show phones as they will be stored
        found += [f"unformatted phone {m!r}" for m in sorted(set(RAW_PHONE.findall(text)))]
    found += [f"ISO date {m!r}" for m in sorted(set(ISO_DATE.findall(text)))]
    return found


def links(html: str) -> list[str]:
    page = _Visible()
    page.feed(html)
    return page.links


def shape(url: str) -> str:
    return re.sub(r"\d+", "N", url.split("?")[0])


def walk(b: Browser, starts: list[str], inside: str, data: tuple[str, ...] = ()) -> tuple[dict[str, list[str]], int]:
    """Breadth-first over the pages reachable from `starts` under `inside`: {url: problems}."""
    queue, seen, kinds, report, visited = list(starts), set(starts), Counter(), {}, 0
    while queue and visited < MAX_PAGES:
        url = queue.pop(0)
        r = b.get(url, headers={"HX-Request": "true"} if "/progress" in url or "/status" in url else {})
        visited += 1
        assert r.status_code in (200, 286), (url, r.status_code, r.text[:300])
        found = problems(r.text, quoting_file=bool(re.search(r"/imports/\d+", url)), data=data)
        if found:
            report[url] = found
        for link in links(r.text):
            link = link.split("#")[0]
            if not link.startswith(inside) or link in seen or SKIP.search(link):
                continue
            seen.add(link)
            if kinds[shape(link)] < PER_KIND:
                kinds[shape(link)] += 1
                queue.append(link)
    return report, visited


@pytest.fixture(scope="module")
def demo(db_url: str) -> DemoResult:
    return with_database(db_url, lambda db: create_demo(db, clients=150, years=2, seed=19, name="Проверка языка"))


def _login(make_http, email: str, password: str) -> Browser:
    b = make_http()
    b.headers["Accept-Language"] = "ru"
    r = b.form("/login", {"email": email, "password": password})
    assert r.status_code == 303, r.text
    return b


def _upload(b: Browser, base: str, name: str, body: str, kind: str) -> str:
    r = b.post(f"{base}/imports", data={"kind": kind, "_csrf_token": b.csrf()},
               files={"file": (name, body.encode("utf-8"), "text/csv")})
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"]


def test_the_checker_sees_what_the_issue_saw() -> None:
    """The check itself: each thing a tester reported is caught; Russian pages pass."""
    bad = ("<p>1 of the last 2 payments were more than 30 days late</p><td>calls</td><td>2.938e+05</td>"
           "<span>+79161234567</span><span>0.3</span><input type=text value=form><p>Not a number: abc</p>"
           "<p>Returns: 2; purchases: 5</p>")
    found = " ".join(problems(bad))
    for expected in ("'payments'", "raw code 'calls'", "'2.938e+05'", "'+79161234567'", "'0.3'", "raw code 'form'",
                     "msgid 'Returns: %(returns)s; purchases: %(deals)s'", "English word 'Not'"):
        assert expected in found, (expected, found)
    good = ("<p>Просрочено 1 из 2 платежей</p><td>звонки</td><td>293 800</td><span>+7 916 123-45-67</span>"
            "<span>0,3</span><p>Выгрузка в CSV и XLSX</p><p>4 дек. 2026 г., 04.12.2026</p><a href=mailto:x>a@b.ru</a>")
    assert problems(good) == []


def test_every_workspace_page_is_russian(make_http, demo: DemoResult, worker) -> None:
    b = _login(make_http, demo.owner_email, demo.password)
    base = f"/t/{demo.slug}"
    # An import with mistakes, so that its dry run and reasons are on the walk too.
    ops = "Телефон;Дата;Сумма;Тип\n+79990000001;01.02.2025;abc;продажа\n+79990000002;01.02.2025;100;бартер\n"
    clients = "Фамилия;Имя;Телефон\nИванов;Иван;+79161234567\nПетров;;12\n"
    starts = [base + "/", f"{base}/clients", f"{base}/clients/new", f"{base}/imports", f"{base}/campaigns",
              f"{base}/campaigns/new", f"{base}/analytics/validation", f"{base}/analytics/settings",
              f"{base}/settings", f"{base}/team", f"{base}/tokens", f"{base}/dictionaries", f"{base}/fields",
              f"{base}/audit", f"{base}/clients/duplicates", f"{base}/export",
              _upload(b, base, "операции.csv", ops, "operations"), _upload(b, base, "клиенты.csv", clients, "clients")]
    for start in starts[-2:]:  # the worker reads the files; then the page shows the dry run
        wait_for(lambda s=start: "/progress" not in b.get(s).text or None, 60, f"{start} to be read", every=0.3)
    report, visited = walk(b, starts, base)
    print(f"walked {visited} workspace pages and fragments")
    assert visited >= 30, visited
    assert not report, "\n".join(f"{url}: {'; '.join(found)}" for url, found in sorted(report.items()))


def test_the_console_is_russian(make_http, demo: DemoResult, db_url: str) -> None:
    email = platform_admin(ADMIN_PASSWORD)
    b = _login(make_http, email, ADMIN_PASSWORD)
    r = b.form("/admin/login", {"password": ADMIN_PASSWORD, "next": "/admin/tenants"})
    assert r.status_code == 303, r.text
    from testkit import sql

    typed = {r[0] for r in sql(db_url, "SELECT name FROM shared.tenants UNION SELECT name FROM shared.users"
                                  " UNION SELECT details->>'reason' FROM shared.platform_audit") if r[0]}
    report, visited = walk(b, ["/admin/tenants", "/admin/health", "/admin/audit"], "/admin",
                           data=tuple(sorted(typed, key=len, reverse=True)))
    print(f"walked {visited} console pages")
    assert visited >= 4, visited
    assert not report, "\n".join(f"{url}: {'; '.join(found)}" for url, found in sorted(report.items()))


def test_the_public_pages_are_russian(make_http) -> None:
    b = make_http()
    b.headers["Accept-Language"] = "ru"
    report = {}
    for url in ("/", "/signup", "/login", "/forgot"):
        r = b.get(url)
        assert r.status_code == 200, (url, r.status_code)
        if found := problems(r.text):
            report[url] = found
    assert not report, "\n".join(f"{url}: {'; '.join(found)}" for url, found in sorted(report.items()))


def test_bulk_actions_offer_the_groups_by_name(make_http, demo: DemoResult, db_url: str) -> None:
    """"Add a product group" lists the groups by name; no internal id is typed."""
    from testkit import sql

    b = _login(make_http, demo.owner_email, demo.password)
    base = f"/t/{demo.slug}"
    page = b.get(f"{base}/clients").text
    options = dict(re.findall(r'<option value="product_group:(\d+)">([^<]+)</option>', page))
    assert "Мебель" in options.values() and "(ID)" not in page, options
    group = next(i for i, name in options.items() if name == "Мебель")
    schema = sql(db_url, "SELECT schema_name FROM shared.tenants WHERE slug = :s", {"s": demo.slug})[0][0]
    client = sql(db_url, f'SELECT id FROM "{schema}".clients WHERE NOT (:g = ANY(product_group_ids)) LIMIT 1',
                 {"g": int(group)})[0][0]
    r = b.form(f"{base}/clients/bulk", {"action": f"product_group:{group}", "ids": [str(client)], "back": ""})
    assert r.status_code == 303, r.text
    assert sql(db_url, f'SELECT :g = ANY(product_group_ids) FROM "{schema}".clients WHERE id = :c',
               {"g": int(group), "c": client}) == [(True,)]
