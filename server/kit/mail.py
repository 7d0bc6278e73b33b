"""Outgoing mail: one ``Mailer`` interface, created once per app as ``app.state.mailer``.

With NOTEFALL_SMTP_URL it is an ``SmtpMailer``; without, an ``Outbox`` that writes each
message as an .eml file. A message SMTP does not take is written to the outbox instead
(and an error logged), so no verification or reset mail is ever lost.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from sqlalchemy.orm import Session

from .db import after_commit
from .settings import Settings

SENDER = "Notefall <no-reply@notefall.invalid>"
SMTP_TIMEOUT_SECONDS = 10
log = logging.getLogger("notefall.server.mail")


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> object: ...


def compose(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="notefall.invalid")
    message.set_content(body)
    return message


class Outbox:
    """Writes each message atomically, so a reader never sees half a file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        # The temporary name does not end in .eml, so outbox readers skip it.
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return final


class SmtpMailer:
    """Sends through ``smtp://[user:password@]host[:port]`` (STARTTLS whenever the server
    offers it) or ``smtps://...`` (TLS from the first byte); the outbox keeps what fails."""

    def __init__(
        self, url: str, fallback: Outbox, *, timeout: float = SMTP_TIMEOUT_SECONDS
    ) -> None:
        parsed = urlparse(url)
        self.implicit_tls = parsed.scheme == "smtps"
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else ""
        self.fallback = fallback
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        try:
            self.deliver(message)
        except (smtplib.SMTPException, OSError) as exc:
            kept = self.fallback.send(message)
            log.error(
                "SMTP delivery to %s:%s failed (%s: %s); the message is kept in %s",
                self.host,
                self.port,
                type(exc).__name__,
                exc,
                kept,
            )

    def deliver(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.implicit_tls:
            connection = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with connection:
            connection.ehlo()
            if not self.implicit_tls and connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password)
            connection.send_message(message)


def send_after_commit(session: Session, mailer: Mailer, message: EmailMessage) -> None:
    """Send ``message`` once ``session`` commits: no mail about a change that rolled back.
    Every domain sends through here, so how mail leaves (today: in the request, after the
    commit) changes in one place."""
    after_commit(session, lambda: mailer.send(message))


def mailer_for(settings: Settings) -> Mailer:
    outbox = Outbox(settings.outbox_dir)
    return SmtpMailer(settings.smtp_url, outbox) if settings.smtp_url else outbox
