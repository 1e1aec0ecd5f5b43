"""Outgoing mail. Over SMTP when SMTP_URL is set; otherwise into the development outbox.

The console line names the mail's number and subject only: recipients are personal data.
"""
from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from saas.core.config import Settings
from saas.core.models import OutboxMail

SENDER = "Kartoteka <no-reply@kartoteka.local>"


async def send_mail(session: AsyncSession, settings: Settings, to: str, subject: str, body: str) -> None:
    if settings.smtp_url:
        await asyncio.to_thread(_smtp_send, settings.smtp_url, to, subject, body)
        return
    mail = OutboxMail(recipient=to, subject=subject, body=body)
    session.add(mail)
    await session.flush()
    print(f"[outbox] mail #{mail.id}: {subject} — see {settings.base_url}/dev/outbox", flush=True)


def _smtp_send(url: str, to: str, subject: str, body: str) -> None:
    parts = urlsplit(url)  # smtp://user:pass@host:port or smtps://...
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(parts.hostname or "localhost", parts.port or (465 if parts.scheme == "smtps" else 25), timeout=10) as s:
        if parts.scheme == "smtp+starttls":
            s.starttls()
        if parts.username:
            s.login(unquote(parts.username), unquote(parts.password or ""))
        s.send_message(msg)
