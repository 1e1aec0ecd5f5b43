"""Words and labels for scores, shared by the dashboard, the client card and the list; the labels of
every stored code people see (`CODE_LABELS`) and the number, date and phone formats of the templates.
All are Jinja globals (`register`), so no page shows a code, a decimal point or an E.164 phone."""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from saas.analytics import reliability, rfm, selection
from saas.core.values import joined
from saas.core.i18n import _, fmt_date, fmt_datetime, fmt_money, fmt_number, gettext_, lazy, ngettext_

STATUS_LABELS = {"new": lazy("new"), "active": lazy("active"), "at_risk": lazy("at risk"), "lost": lazy("lost")}
RISK_LABELS = {"reliable": lazy("reliable"), "watch": lazy("watch"), "risk": lazy("risk group"),
               "unknown": lazy("not enough history")}
# The same groups as plural nouns, for a heading over a count ("Активные 29", not "Активный 29").
STATUS_GROUP_LABELS = {"new": lazy("New clients"), "active": lazy("Active clients"), "at_risk": lazy("At risk"),
                       "lost": lazy("Lost")}
RISK_GROUP_LABELS = {"reliable": lazy("Reliable payers"), "watch": lazy("Payers to watch"),
                     "risk": lazy("Risk group"), "unknown": lazy("Not enough history")}
SEGMENT_LABELS = {
    "champions": lazy("Champions"), "loyal": lazy("Loyal"), "potential_loyalists": lazy("Potential loyalists"),
    "new": lazy("New customers"), "promising": lazy("Promising"), "need_attention": lazy("Need attention"),
    "about_to_sleep": lazy("About to sleep"), "cant_lose": lazy("Can't lose them"), "at_risk": lazy("At risk"),
    "hibernating": lazy("Hibernating"), "lost": lazy("Lost"), rfm.NO_PURCHASES: lazy("No purchases yet"),
}
# One line each, shown beside the labels on the card: the status is the client's own forecast,
# the segment a comparison with the company's other buyers, so they can differ.
STATUS_MEANINGS = {
    "new": lazy("First purchase recently, no repeat yet."),
    "active": lazy("Likely to buy again soon, like a typical client of yours who is still with you."),
    "at_risk": lazy("Less likely to buy soon than a typical client of yours: may be leaving."),
    "lost": lazy("Unlikely to buy again without a reason to."),
}
SEGMENT_MEANINGS = {
    "champions": lazy("Among your most recent, most frequent and biggest buyers."),
    "loyal": lazy("Buy often and recently, for average amounts."),
    "potential_loyalists": lazy("Recent buyers with a few purchases: could become loyal."),
    "new": lazy("Among your most recent buyers, with few purchases so far."),
    "promising": lazy("Fairly recent buyers with few purchases so far."),
    "need_attention": lazy("Buy often, but the last purchase is getting old."),
    "about_to_sleep": lazy("Few purchases, the last one neither recent nor old."),
    "cant_lose": lazy("Used to buy often and for the most; not for a long time now."),
    "at_risk": lazy("Used to buy often; not for a long time now."),
    "hibernating": lazy("Few purchases, a long time ago."),
    "lost": lazy("Few purchases, the last one among your oldest."),
    rfm.NO_PURCHASES: lazy("No purchase yet, so not compared with your buyers."),
}


# Codes the application stores, as people read them (the one place for these labels; the
# templates call `code_label(table, code)`, which falls back to the code for a value it does not know).
CODE_LABELS: dict[str, dict[str, str]] = {
    "channel": {"email": lazy("Email"), "sms": lazy("SMS"), "calls": lazy("Calls"), "post": lazy("Post"),
                "none": lazy("None")},
    "ranking": {"clv": lazy("expected value (CLV)"), "expected_purchases": lazy("expected purchases"),
                "p_alive": lazy("P(alive)"), "revenue": lazy("revenue"), "recency": lazy("recency"),
                "mix": lazy("a weighted mix")},
    "kind": {"sale": lazy("Sale"), "service": lazy("Service"), "return": lazy("Return")},
    "plan": {"free": lazy("Free"), "standard": lazy("Standard"), "business": lazy("Business")},
    "worker_state": {"idle": lazy("waiting for jobs"), "busy": lazy("busy"), "started": lazy("starting"),
                     "suspended": lazy("paused")},
    "platform_event": {"tenant.suspended": lazy("Company suspended"), "tenant.resumed": lazy("Company resumed"),
                       "tenant.deleted": lazy("Company deleted"), "tenant.restored": lazy("Company restored"),
                       "tenant.destroyed": lazy("Company data destroyed"), "tenant.exported": lazy("Export downloaded"),
                       "tenant.moved": lazy("Company moved"), "tenant.plan_changed": lazy("Plan changed"),
                       "admin.login": lazy("Console login"), "admin.login_failed": lazy("Failed console login"),
                       "job.retried": lazy("Job retried")},
    "event_detail": {"tenant_id": lazy("company no."), "reason": lazy("reason"), "before": lazy("before"),
                     "after": lazy("after"), "plan": lazy("plan"), "limits": lazy("limits"), "slug": lazy("address"),
                     "schema": lazy("schema"), "tables_dropped": lazy("tables dropped"), "job_id": lazy("job"),
                     "queue": lazy("queue"), "ip": lazy("IP address"), "rows": lazy("rows"),
                     "previous_status": lazy("previous status"), "purge_after": lazy("destroyed after"),
                     "deleted_at": lazy("deleted at"), "was_suspended_since": lazy("suspended since"),
                     "status": lazy("status"), "target": lazy("target"), "mode": lazy("mode")},
    "audit_event": {
        "campaign.duplicated": lazy("Campaign duplicated"), "campaign.exported": lazy("Campaign list exported"),
        "campaign.launched": lazy("Campaign launched"), "campaign.saved": lazy("Campaign saved"),
        "client.archived": lazy("Client archived"), "client.created": lazy("Client created"),
        "client.updated": lazy("Client updated"), "client.data_exported": lazy("Client's data exported"),
        "client.erased": lazy("Client erased"), "client.merged": lazy("Clients merged"),
        "clients.exported": lazy("Client list exported"), "company.retention_changed": lazy("Retention changed"),
        "company.exported_by_platform": lazy("Exported by the platform"),
        "company.updated": lazy("Company settings changed"), "export.downloaded": lazy("Export downloaded"),
        "export.built": lazy("Export built"), "export.restored": lazy("Data restored from an export"),
        "import.undone": lazy("Import undone"), "import.uploaded": lazy("File uploaded"),
        "invitation.revoked": lazy("Invitation revoked"), "member.removed": lazy("Member removed"),
        "member.role_changed": lazy("Role changed"), "operation.created": lazy("Operation added"),
        "operation.deleted": lazy("Operation deleted"), "operation.updated": lazy("Operation changed"),
        "passport.exported": lazy("Passports exported"), "passport.revealed": lazy("Passport shown"),
        "token.created": lazy("API token created"), "token.revoked": lazy("API token revoked"),
        "job.retried": lazy("Job retried")},
    "audit_object": {"campaign": lazy("campaign"), "client": lazy("client"), "company": lazy("company"),
                     "import": lazy("import"), "invitation": lazy("invitation"), "user": lazy("member"),
                     "operation": lazy("operation"), "token": lazy("API token"), "export": lazy("export")},
    "audit_detail": {"rows": lazy("rows"), "client_id": lazy("client"), "source": lazy("source"),
                     "operations": lazy("operations"), "clients": lazy("clients"), "merged": lazy("merged"),
                     "kind": lazy("kind"), "format": lazy("format"), "count": lazy("count"),
                     "before": lazy("before"), "after": lazy("after"), "passport": lazy("passport"),
                     "restored": lazy("restored"), "role": lazy("role"), "fields": lazy("fields"),
                     "filename": lazy("file"), "name": lazy("name"), "amount": lazy("amount"),
                     "undo_snapshots": lazy("undo snapshots"), "imports_rejected_rows": lazy("rejected rows"),
                     "import_files": lazy("stored files"), "saved_searches": lazy("saved searches"),
                     "campaign_lists": lazy("campaign lists"), "saved_exports": lazy("saved exports"),
                     "bytes": lazy("bytes"), "users": lazy("users"), "plan": lazy("plan"), "limits": lazy("limits")},
    "audit_value": {"demo": lazy("demo data"), "clients": lazy("clients"), "operations": lazy("operations"),
                    "masked": lazy("masked"), "full": lazy("in full"), "True": lazy("yes"), "False": lazy("no"),
                    "active": lazy("active"), "suspended": lazy("suspended"), "deleted": lazy("deleted"),
                    "free": lazy("Free"), "standard": lazy("Standard"), "business": lazy("Business")},
    "consent_source": {"form": lazy("card form"), "import": lazy("import"), "api": lazy("API"),
                       "demo": lazy("demo data"), "restore": lazy("restore")},
    # why a model fit is not used, or why statuses follow rules (the words live with the codes)
    "fit_reason": selection.REASONS,
}


def label(table: str, code: Any) -> str:
    """A stored code in the reader's language; an unknown code is shown as it is."""
    text = CODE_LABELS.get(table, {}).get(str(code))
    return _(text) if text else ("" if code is None else str(code))


def fit_reason(stored: str | None) -> str:
    """Why a model is not used, in the reader's language: a stored reason code, or an older record's
    English words (taken as their code; words no longer known are shown as they are)."""
    return label("fit_reason", selection.reason_code(stored))


def actor_label(actor: str) -> str:
    """Who did it, for an audit row that no person did: the demo, a background job, the API."""
    kind = (actor or "").partition(":")[0]
    if actor == "system:demo":
        return _("demo data")
    if kind == "job":
        return _("background job")
    if kind in ("api", "token"):
        return _("API")
    if kind in ("system", "cli"):
        return _("system")
    return actor


def audit_details(details: Any, keys: str = "audit_detail") -> str:
    """An audit row's details as 'label: value' pairs in the reader's language (nested ones too);
    `keys` names the labels of the top level (the platform log's own: "event_detail")."""
    if isinstance(details, dict):
        if keys == "rows" and all(isinstance(v, int) for v in details.values()):  # rows per table: the total
            return fmt_number(sum(details.values()))
        return ", ".join(f"{label(keys, k) if keys != 'rows' else label('audit_detail', k)}: "
                         f"{audit_details(v, 'rows' if k == 'rows' else 'audit_detail')}" for k, v in details.items())
    if isinstance(details, list):
        return ", ".join(audit_details(v) for v in details)
    if details is None:
        return "—"
    if isinstance(details, (int, float)) and not isinstance(details, bool):
        return fmt_number(details)
    if isinstance(details, str) and _ISO_TIME.match(details):
        try:
            return fmt_datetime(datetime.fromisoformat(details))
        except ValueError:
            return details
    return label("audit_value", details)


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def decimal(value: Any, digits: int = 2) -> str:
    """A fraction in the reader's number format, rounded to `digits` places ('0,35', '1 234,5')."""
    if value is None:
        return "—"
    return fmt_number(round(float(value), digits))


def signed(value: Any, digits: int = 1) -> str:
    """A change with its sign, in the reader's number format ('+11,8', '−2,5')."""
    if value is None:
        return "—"
    rounded = round(float(value), digits)
    return ("+" if rounded > 0 else "−" if rounded < 0 else "") + fmt_number(abs(rounded))


def size(value: Any) -> str:
    """Bytes as megabytes in the reader's number format ('1,6 МБ')."""
    if value is None:
        return "—"
    return _("%(mb)s MB", mb=fmt_number(round(float(value) / 1048576, 1)))


def stored_date(value: Any) -> str:
    """A date kept as ISO text (passport issue, consent given at) in the reader's format."""
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            return value
    return fmt_date(value)


def messages_text(messages: Any) -> str:
    """A row's messages (rules' msgids or Messages) as one sentence in the reader's language."""
    return joined(messages, gettext_)


def stored_reason(text: str | None) -> str:
    """A reason stored as text: the job wrote it in the company's language; older rows (and the
    demo's) kept the English msgids, translated here part by part."""
    return "; ".join(gettext_(part) for part in (text or "").split("; "))


def preview_value(field: str, value: Any) -> str:
    """A normalised import value as the dry run shows it: dates, amounts and kinds as people read
    them (the phone and e-mail as they will be stored)."""
    if value is None or value == "":
        return "—"
    if field == "kind":
        return label("kind", value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, date | datetime):
        return fmt_date(value)
    if isinstance(value, Decimal | float):
        return fmt_number(round(Decimal(value), 2))
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    return str(value)


def significant(value: Any, digits: int = 4) -> str:
    """A model figure to `digits` significant digits in the reader's number format (no '2.3e+03')."""
    if value is None:
        return "—"
    return fmt_number(float(f"{float(value):.{digits}g}"))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(value: Any, digits: int = 3) -> str:
    """A model figure that may be huge or tiny (a parameter run to the edge, a gradient): `digits`
    significant digits in the reader's number format, powers of ten written out ('2,7 × 10¹⁹')."""
    number = None if value is None else float(value)
    if number is None or not math.isfinite(number):
        return "—"
    if number == 0 or 1e-2 <= abs(number) < 1e6:
        return significant(number, digits)
    mantissa, exponent = f"{number:.{digits - 1}e}".split("e")
    return f"{fmt_number(float(mantissa))} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def score_text(value: Any) -> str:
    """A campaign score: big ones (money) whole, small ones (probabilities, counts) to 3 places;
    never in scientific notation."""
    number = float(value or 0)
    return fmt_number(round(number) if abs(number) >= 100 else round(number, 3))


def reliability_reason(score: Any, currency: str = "RUB") -> str:
    """Why the reliability score is what it is, in the reader's language and number formats."""
    if score is None:
        return ""
    return reliability.reason(score.risk_factors or {}, score.risk_group, money=lambda v: fmt_money(v, currency),
                              number=fmt_number, translate=gettext_, plural=ngettext_)


def returns_note(score: Any) -> str:
    """Returns, a separate signal beside the reliability score (not part of it)."""
    if score is None:
        return ""
    return reliability.returns_note(score.risk_factors or {}, number=fmt_number, translate=gettext_)


def score_labels() -> dict[str, dict[str, str]]:
    """Every label table in the reader's language, for the templates (a Jinja global)."""
    return {name: {k: _(v) for k, v in table.items()}
            for name, table in (("status", STATUS_LABELS), ("segment", SEGMENT_LABELS), ("risk", RISK_LABELS),
                                ("status_meaning", STATUS_MEANINGS), ("status_group", STATUS_GROUP_LABELS),
                                ("risk_group", RISK_GROUP_LABELS), ("segment_meaning", SEGMENT_MEANINGS))}


def register() -> None:
    """Give the templates the score labels and reasons (called once at startup by saas.wiring)."""
    from saas.core.web.render import register_globals

    from saas.clients.contacts import display_phone

    register_globals(reliability_reason=reliability_reason, returns_note=returns_note, score_labels=score_labels,
                     code_label=label, actor_label=actor_label, audit_details=audit_details, decimal=decimal,
                     signed=signed, score_text=score_text, phone=display_phone, stored_date=stored_date,
                     messages_text=messages_text, stored_reason=stored_reason, preview_value=preview_value,
                     size=size)
