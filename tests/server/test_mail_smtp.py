"""Mail over SMTP to a real aiosmtpd server: plain, STARTTLS, implicit TLS, auth, and fallback."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notefall.server.kit.mail import Outbox, SmtpMailer, compose
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Settings

from .conftest import TestClient, create_app, make_settings, outbox_messages, token_in

USER, SECRET = "mailer@notefall.test", "p@ss:word/with%odd"
# The auth tests run without TLS on purpose (the TLS tests run without auth).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage
    over_tls: bool


@dataclass
class Inbox:
    handler_messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.handler_messages.append(
            Received(
                list(envelope.rcpt_tos),
                message,
                # session.ssl: after STARTTLS; the ssl_object: TLS from the first byte.
                over_tls=session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 OK"


def _check_login(
    _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        SECRET.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (trusted through SSL_CERT_FILE in the tests)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def auth_smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_check_login,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield inbox, port
    controller.stop()


def _smtp_settings(tmp_path: Path, migrated_url: str, redis_url: str, smtp_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        migrated_url,
        redis_url=redis_url,
        smtp_url=smtp_url,
        rate_limit_scale=1000,
    )


def test_a_sign_up_verification_mail_arrives_over_smtp(
    tmp_path: Path, migrated_url: str, redis_url: str, smtp_server: tuple[Inbox, int]
):
    inbox, port = smtp_server
    settings = _smtp_settings(tmp_path, migrated_url, redis_url, f"smtp://127.0.0.1:{port}")
    signup = {
        "email": "Ada@Example.com",
        "password": "falling notes over a grand piano",
        "name": "Ada",
    }
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/v1/auth/signup", json=signup).status_code == 201
        [received] = inbox.handler_messages
        assert received.envelope_to == ["ada@example.com"]
        message = received.message
        assert message["To"] == "ada@example.com"
        assert message["From"] == "Notefall <no-reply@notefall.invalid>"
        assert "verify" in message["Subject"].lower() or "confirm" in message["Subject"].lower()
        assert message["Message-ID"] and message["Date"]
        # The mailed token works: the message arrived whole.
        token = token_in(message)
        assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
    assert outbox_messages(settings) == []


def test_smtp_auth_with_credentials_from_the_url(
    tmp_path: Path, auth_smtp_server: tuple[Inbox, int]
):
    inbox, port = auth_smtp_server
    user, secret = "mailer%40notefall.test", "p%40ss%3Aword%2Fwith%25odd"
    mailer = SmtpMailer(f"smtp://{user}:{secret}@127.0.0.1:{port}", Outbox(tmp_path))
    mailer.send(compose("bob@example.com", "Hello", "Falling notes."))
    assert [r.message["Subject"] for r in inbox.handler_messages] == ["Hello"]
    assert list(tmp_path.iterdir()) == []


def test_refused_credentials_keep_the_message_in_the_outbox(
    tmp_path: Path, auth_smtp_server: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
):
    inbox, port = auth_smtp_server
    mailer = SmtpMailer(f"smtp://mailer:wrong@127.0.0.1:{port}", Outbox(tmp_path))
    with caplog.at_level(logging.ERROR, logger="notefall.server.mail"):
        mailer.send(compose("bob@example.com", "Hello", "Falling notes."))
    assert inbox.handler_messages == []
    [kept] = list(tmp_path.glob("*.eml"))
    assert b"Subject: Hello" in kept.read_bytes()
    assert "SMTPAuthenticationError" in caplog.text and str(kept) in caplog.text


def test_an_unreachable_server_keeps_the_sign_up_mail_in_the_outbox(
    tmp_path: Path, migrated_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
):
    settings = _smtp_settings(tmp_path, migrated_url, redis_url, f"smtp://127.0.0.1:{free_port()}")
    signup = {
        "email": "ada@example.com",
        "password": "falling notes over a grand piano",
        "name": "Ada",
    }
    with (
        caplog.at_level(logging.ERROR, logger="notefall.server.mail"),
        TestClient(create_app(settings)) as client,
    ):
        assert client.post("/api/v1/auth/signup", json=signup).status_code == 201
    [kept] = outbox_messages(settings)
    assert kept["To"] == "ada@example.com"
    assert "SMTP delivery to 127.0.0.1" in caplog.text


def test_starttls_is_used_when_offered(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=_server_context(certificate)
    )
    controller.start()
    try:
        # Not trusted yet: the certificate check fails and nothing goes out in the clear.
        SmtpMailer(f"smtp://localhost:{port}", Outbox(tmp_path / "untrusted")).send(
            compose("bob@example.com", "Hello", "Falling notes.")
        )
        assert inbox.handler_messages == []
        assert len(list((tmp_path / "untrusted").glob("*.eml"))) == 1
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        SmtpMailer(f"smtp://localhost:{port}", Outbox(tmp_path / "trusted")).send(
            compose("bob@example.com", "Hello", "Falling notes.")
        )
    finally:
        controller.stop()
    [received] = inbox.handler_messages
    assert received.over_tls
    assert not (tmp_path / "trusted").exists()


def test_smtps_uses_tls_from_the_first_byte(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate)
    )
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        SmtpMailer(f"smtps://localhost:{port}", Outbox(tmp_path)).send(
            compose("bob@example.com", "Hello", "Falling notes.")
        )
    finally:
        controller.stop()
    [received] = inbox.handler_messages
    assert received.over_tls and received.message["Subject"] == "Hello"
