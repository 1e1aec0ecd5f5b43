"""`saas passports rekey`: a company's passports sealed the current way, under the current DATA_KEY
(after a rotation) and bound to the company and the client (rows of the first, unbound scheme, see
crypto.py), each blind index recomputed under the company's own index key.

Until it has run everywhere the old key stays configured as DATA_KEY_<ID>; meanwhile reads open
either scheme and a passport search asks for every index a row may carry. Resumable: a row's stored
key id says whether it is done ("<current key>:v2"), and each batch commits on its own, so a run
stopped anywhere (or cut short with `limit`) goes on from there the next time."""
from __future__ import annotations

from sqlalchemy import select, update

from saas.clients import crypto
from saas.clients.models import Client
from saas.clients.service import audit
from saas.core.db import Database

BATCH = 500


async def rekey_passports(db: Database, schema: str, *, limit: int | None = None) -> int:
    """Reseal one company's passports, BATCH rows per transaction, at most `limit` of them; returns
    how many."""
    target, done = crypto.sealed_key_id(), 0
    try:
        while True:
            size = BATCH if limit is None else max(0, min(BATCH, limit - done))
            async with db.session(schema) as s:
                rows = (await s.execute(
                    select(Client.id, Client.passport_enc, Client.passport_key_id)
                    .where(Client.passport_enc.is_not(None), Client.passport_key_id != target)
                    .order_by(Client.id).limit(size).with_for_update())).all() if size else []
                for client_id, blob, stored in rows:
                    record = crypto.decrypt(blob, stored, company=schema, client_id=client_id)
                    sealed, key_id = crypto.encrypt(record, company=schema, client_id=client_id)
                    digits = crypto.passport_digits(record.get("series"), record.get("number"))
                    await s.execute(update(Client).where(Client.id == client_id).values(
                        passport_enc=sealed, passport_key_id=key_id,
                        passport_bidx=crypto.blind_index(digits, company=schema) if digits else None))
            done += len(rows)  # committed
            if len(rows) < size or size == 0 or (limit is not None and done >= limit):
                return done
    finally:  # what was committed is on record, even from a run that failed half-way
        if done:
            async with db.session(schema) as s:
                await audit(s, "system", "passports.rekeyed", key_id=crypto.current_key_id(), count=done)
