"""After a DATA_KEY rotation: every passport re-encrypted under the current key, its blind index
recomputed. Until this has run everywhere the old key stays configured as DATA_KEY_<ID> (reads and
searches use every configured key meanwhile). Resumable: it only touches rows on another key."""
from __future__ import annotations

from sqlalchemy import select, update

from saas.clients import crypto
from saas.clients.models import Client
from saas.clients.service import audit
from saas.core.db import Database

BATCH = 500


async def rekey_passports(db: Database, schema: str) -> int:
    """Re-encrypt one company's passports, BATCH rows per transaction; returns how many."""
    key_id, done = crypto.current_key_id(), 0
    while True:
        async with db.session(schema) as s:
            rows = (await s.execute(
                select(Client.id, Client.passport_enc, Client.passport_key_id)
                .where(Client.passport_enc.is_not(None), Client.passport_key_id != key_id)
                .order_by(Client.id).limit(BATCH).with_for_update())).all()
            for client_id, blob, old_key in rows:
                record = crypto.decrypt(blob, old_key)
                sealed, new_key = crypto.encrypt(record)
                digits = crypto.passport_digits(record.get("series"), record.get("number"))
                await s.execute(update(Client).where(Client.id == client_id).values(
                    passport_enc=sealed, passport_key_id=new_key,
                    passport_bidx=crypto.blind_index(digits) if digits else None))
            done += len(rows)
            if len(rows) < BATCH:
                if done:
                    await audit(s, "system", "passports.rekeyed", key_id=key_id, count=done)
                return done
