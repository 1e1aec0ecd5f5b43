"""Erasure of one person (152-FZ): every place the company holds them, in one transaction.

`PLACES` is the list of every tenant column that can hold a client's personal data and how an
erasure reaches it; `NOT_PERSONAL` is every other text, JSON, binary or array column, with the
reason. docs/architecture.md ("Where personal data lives") says the same in prose, and
tests/integration/test_personal_data.py walks both lists: a new column must be classified, and
after an erasure none of the person's values is found anywhere in the schema or a stored file.

Packages above clients (campaign lists, saved company exports) are reached through
`events.client_erased`, which they subscribe to at startup.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import case, delete, func, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from saas.clients import events
from saas.clients.models import Client, Import, ImportUndo, Operation
from saas.core import clock
from saas.core.errors import FormError
from saas.core.i18n import _

PLACES: dict[tuple[str, str], str] = {
    ("clients", "last_name"): "replaced by the word 'Erased'",
    ("clients", "first_name"): "replaced by '#<id>'",
    ("clients", "middle_name"): "emptied",
    ("clients", "birth_date"): "emptied",
    ("clients", "phone"): "emptied",
    ("clients", "email"): "emptied",
    ("clients", "address"): "emptied",
    ("clients", "note"): "emptied",
    ("clients", "passport_enc"): "emptied (with passport_key_id, passport_bidx and passport_mask)",
    ("clients", "passport_bidx"): "emptied",
    ("clients", "passport_mask"): "emptied",
    ("clients", "consent"): "emptied",
    ("clients", "tags"): "emptied",
    ("clients", "custom"): "emptied",
    ("clients", "search"): "generated from the names, e-mail and phone: follows them",
    ("operations", "note"): "emptied on every operation of the client (amounts and dates stay)",
    ("import_undo", "before"): "the client's snapshots deleted; undo skips erased clients",
    ("imports", "payload"): "every stored file not being applied is dropped (file_removed = 'erasure')",
    ("imports", "sample"): "dropped with the file",
    ("imports", "rejected"): "the cells of every rejected row that matches the person are blanked",
    ("jobs", "payload"): "saved company exports and restore uploads are dropped (result.removed = 'erasure')",
    ("saved_views", "params"): "a saved search naming the person (their e-mail, phone, a text of theirs or "
                               "their last name) loses its search words; filters and sort stay",
    ("campaign_members", "client_id"): "removed from every list not yet launched (launched lists keep the "
                                       "id of the anonymised card: their measured results need it)",
}

NOT_PERSONAL: dict[tuple[str, str], str] = {
    ("audit_events", "actor"): "user:<id>, token:<id>, job:<id>",
    ("audit_events", "action"): "a verb",
    ("audit_events", "object_type"): "a noun",
    ("audit_events", "details"): "counts, formats and ids by convention (service.audit)",
    ("campaign_members", "reason"): "a ranking reason code",
    ("campaigns", "name"): "the company's words", ("campaigns", "goal"): "the company's words",
    ("campaigns", "channel"): "a code", ("campaigns", "criteria"): "conditions and client ids",
    ("campaigns", "ranking"): "a code", ("campaigns", "suppression"): "options and client ids",
    ("campaigns", "status"): "a code", ("campaigns", "error"): "a message", ("campaigns", "excluded"): "counts",
    ("client_scores", "status"): "a code", ("client_scores", "segment"): "a code",
    ("client_scores", "risk_group"): "a code", ("client_scores", "risk_factors"): "numbers",
    ("client_scores", "method"): "a code",
    ("clients", "passport_key_id"): "the key's id", ("clients", "product_group_ids"): "dictionary ids",
    ("clients", "direction_ids"): "dictionary ids",
    ("custom_fields", "key"): "a field's name", ("custom_fields", "label_ru"): "a field's name",
    ("custom_fields", "label_en"): "a field's name", ("custom_fields", "type"): "a code",
    ("custom_fields", "options"): "the field's choices",
    ("directions", "name"): "the company's dictionary", ("product_groups", "name"): "the company's dictionary",
    ("imports", "kind"): "a code", ("imports", "status"): "a code", ("imports", "filename"): "the file's name",
    ("imports", "file_type"): "a code", ("imports", "encoding"): "a code", ("imports", "delimiter"): "a character",
    ("imports", "headers"): "column titles", ("imports", "mapping"): "column -> field",
    ("imports", "options"): "the user's choices", ("imports", "error"): "a message without row values",
    ("imports", "created_by"): "user:<id>", ("imports", "file_removed"): "a code",
    ("jobs", "kind"): "a code", ("jobs", "status"): "a code", ("jobs", "error"): "a message",
    ("jobs", "result"): "counts, keys and dates",
    ("operations", "kind"): "a code",
    ("model_fits", "model"): "a code", ("model_fits", "params"): "numbers", ("model_fits", "quality"): "numbers",
    ("saved_segments", "name"): "the company's words", ("saved_segments", "criteria"): "conditions",
    ("saved_views", "name"): "the user's words",
    ("settings", "key"): "a code", ("settings", "value"): "aggregates and thresholds",
}


def _identifiers(client: Client, passport: dict[str, Any] | None) -> tuple[list[str], list[str], list[str]]:
    """(whole cell texts, digit strings, name parts) by which a raw import cell names this person.
    Lower-cased and stripped; digits are compared on their last ten (a phone written 8 916 … or
    +7 916 … is the same number)."""
    names = [n.strip().lower() for n in (client.last_name, client.first_name) if n and n.strip()]
    full = [" ".join(p for p in parts if p) for parts in (
        (client.last_name, client.first_name, client.middle_name), (client.last_name, client.first_name),
        (client.first_name, client.last_name), (client.first_name, client.middle_name, client.last_name))]
    texts = [*full, client.email, client.phone, client.address, client.note]
    texts += [v for v in (client.custom or {}).values() if isinstance(v, str) and len(v.strip()) >= 4]
    digits = [re.sub(r"\D", "", client.phone or "")[-10:]]
    if passport:
        texts += [passport.get("issued_by"), passport.get("number")]
        series = re.sub(r"\D", "", passport.get("series") or "")
        number = re.sub(r"\D", "", passport.get("number") or "")
        digits += [series + number, number]
    return ([t.strip().lower() for t in texts if t and t.strip()],
            [d for d in digits if len(d) >= 6], names if len(set(names)) == 2 else [])


# A rejected row names the person when one of its cells is one of their whole texts, ends in the
# digits of their phone or passport (separators dropped by translate(), far cheaper than a regex
# over every cell), or two cells are their last and first names. One pass over the row's cells.
_MATCH = """coalesce((
    SELECT bool_or(c.t = ANY(CAST(:texts AS text[])) OR right(c.d, 10) = ANY(CAST(:digits AS text[])))
           OR count(DISTINCT c.t) FILTER (WHERE c.t = ANY(CAST(:names AS text[]))) >= 2
    FROM (SELECT lower(btrim(v.value)) AS t, translate(v.value, ' ()-+./\u2116' || chr(9) || chr(160), '') AS d
          FROM jsonb_each_text(coalesce(e.r -> 'values', '{}'::jsonb)) v) c), false)"""

# Every rejected row of every import is read (about 2.4 s for 200,000 rows here); a pre-filter on
# each import's JSON text was slower still (lower() and position() over the whole text).
_BLANK_REJECTED = text(f"""
UPDATE imports i SET rejected = (
    SELECT jsonb_agg(CASE WHEN {_MATCH}
                          THEN jsonb_build_object('line', e.r -> 'line', 'reason', e.r -> 'reason',
                                                  'values', '{{}}'::jsonb, 'erased', true)
                          ELSE e.r END ORDER BY e.ord)
    FROM jsonb_array_elements(i.rejected) WITH ORDINALITY AS e(r, ord))
WHERE jsonb_typeof(i.rejected) = 'array' AND jsonb_array_length(i.rejected) > 0
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(i.rejected) AS e(r) WHERE {_MATCH})""")  # noqa: S608 - constants; values are bound


_FORGET_SEARCHES = text("""
UPDATE saved_views SET params = params - 'q'
WHERE params ? 'q' AND btrim(params ->> 'q') <> '' AND (
      lower(btrim(params ->> 'q')) = ANY(CAST(:texts AS text[]))
   OR right(regexp_replace(params ->> 'q', '\\D', '', 'g'), 10) = ANY(CAST(:digits AS text[]))
   OR (:last <> '' AND :last = ANY(regexp_split_to_array(lower(params ->> 'q'), '[\\s,;]+')))
   OR EXISTS (SELECT 1 FROM unnest(CAST(:texts AS text[])) t WHERE t LIKE '%@%'
              AND position(t IN lower(params ->> 'q')) > 0))""")


async def erase(db: AsyncSession, client: Client, actor: str, passport: dict[str, Any] | None) -> dict[str, int]:
    """Erase `client` everywhere; `passport` is their decrypted record (needed to find their raw
    cells). Returns what was reached, for the audit log (counts only)."""
    if await db.scalar(select(Import.id).where(Import.status == "running").limit(1)) is not None:
        # A running import read its file before the erasure and could write the person back.
        raise FormError({"client": _("An import is running. Erase the client when it has finished.")})
    texts, digits, names = _identifiers(client, passport)
    last = (client.last_name or "").strip().lower()
    client.last_name, client.first_name, client.middle_name = _("Erased"), f"#{client.id}", ""
    client.birth_date = client.phone = client.email = client.address = client.note = None
    client.passport_enc = client.passport_key_id = client.passport_bidx = client.passport_mask = None
    client.consent, client.tags, client.custom = {}, [], {}
    client.erased_at = client.archived_at = clock.now()
    await db.execute(update(Operation).where(Operation.client_id == client.id).values(note=None))
    undo = await db.execute(delete(ImportUndo).where(ImportUndo.client_id == client.id))
    rejected = await db.execute(_BLANK_REJECTED, {"texts": texts, "digits": digits, "names": names})
    searches = await db.execute(_FORGET_SEARCHES, {"texts": texts, "digits": digits, "last": last})
    # Which stored file holds the person cannot be told without reading them all: every file not
    # being applied goes, and its page says why (upload it again to import it).
    files = await db.execute(update(Import).where(
        # (a sample cleared by the ORM is JSON null, not SQL NULL: that one holds nothing)
        Import.payload.is_not(None) | (func.coalesce(func.jsonb_typeof(Import.sample), "null") != "null"),
        Import.status != "running").values(
        payload=None, sample=null(), file_removed="erasure",
        status=case((Import.status == "queued", "failed"), else_=Import.status)))
    reached = {"undo_snapshots": undo.rowcount, "imports_rejected_rows": rejected.rowcount,
               "import_files": files.rowcount, "saved_searches": searches.rowcount}
    reached.update(await events.client_erased(db, client.id))
    await db.flush()
    return reached
