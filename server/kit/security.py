"""Signed, single-purpose tokens: mail and refresh tokens (only their hash is stored) and
short-lived access tokens.

A token is ``<random>.<signature>``: the HMAC lets the server turn away forged or
mistyped tokens without touching the database, and binds the token to one purpose so
a verification token can never serve as, say, a password-reset token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str  # goes to the user, never stored
    token_hash: str  # stored, looked up


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign(secret_key: str, purpose: str, nonce: str) -> str:
    """HMAC-SHA256 of ``purpose:nonce`` under the secret key, base64url: one key, many uses,
    and a value signed for one purpose never verifies for another."""
    message = f"{purpose}:{nonce}".encode()
    return b64(hmac.new(secret_key.encode(), message, hashlib.sha256).digest())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(secret_key: str, purpose: str) -> IssuedToken:
    nonce = b64(secrets.token_bytes(32))
    token = f"{nonce}.{sign(secret_key, purpose, nonce)}"
    return IssuedToken(token=token, token_hash=hash_token(token))


def token_is_signed(secret_key: str, purpose: str, token: str) -> bool:
    nonce, dot, signature = token.partition(".")
    if not dot or not nonce or not signature or not token.isascii():
        # compare_digest refuses non-ASCII str; no genuine token contains any.
        return False
    return hmac.compare_digest(signature, sign(secret_key, purpose, nonce))


ACCESS_PURPOSE = "access"
PENDING_SIGN_IN_PURPOSE = "pending_sign_in"


def issue_pending_sign_in(
    secret_key: str, user_id: uuid.UUID, password_hash: str, expires_at: datetime
) -> str:
    """Proof that a browser gave the right password, for the two-factor step that follows:
    ``<user id>.<expiry>.<password-hash digest>.<HMAC>``. The page carries this instead of
    the password itself; a password changed meanwhile voids it."""
    payload = f"{user_id.hex}.{int(expires_at.timestamp())}.{_password_digest(password_hash)}"
    return f"{payload}.{sign(secret_key, PENDING_SIGN_IN_PURPOSE, payload)}"


def read_pending_sign_in(
    secret_key: str, token: str, now: datetime
) -> tuple[uuid.UUID, str] | None:
    """(user id, password-hash digest) of a genuine, unexpired pending sign-in; else None."""
    payload, dot, signature = token.rpartition(".")
    if (
        not dot
        or not token.isascii()
        or not hmac.compare_digest(signature, sign(secret_key, PENDING_SIGN_IN_PURPOSE, payload))
    ):
        return None
    user_hex, _, rest = payload.partition(".")
    expiry, _, digest = rest.partition(".")
    try:
        user_id, expires = uuid.UUID(hex=user_hex), int(expiry)
    except ValueError:
        return None
    return (user_id, digest) if now.timestamp() < expires else None


def pending_sign_in_matches(password_hash: str, digest: str) -> bool:
    return hmac.compare_digest(_password_digest(password_hash), digest)


def _password_digest(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def issue_access_token(secret_key: str, session_id: uuid.UUID, expires_at: datetime) -> str:
    """``<session id>.<expiry, unix seconds>.<HMAC>``: bound to one session, short-lived.

    It names the session rather than the user, so the server checks the session on every
    request and revoking it ends the token at once, before it expires.
    """
    payload = f"{session_id.hex}.{int(expires_at.timestamp())}"
    return f"{payload}.{sign(secret_key, ACCESS_PURPOSE, payload)}"


def read_access_token(secret_key: str, token: str, now: datetime) -> uuid.UUID | None:
    """The session id of a genuine, unexpired access token; None for anything else."""
    payload, dot, signature = token.rpartition(".")
    if (
        not dot
        or not token.isascii()
        or not hmac.compare_digest(signature, sign(secret_key, ACCESS_PURPOSE, payload))
    ):
        return None
    session_hex, _, expiry = payload.partition(".")
    try:
        session_id = uuid.UUID(hex=session_hex)
        expires = int(expiry)
    except ValueError:
        return None
    return session_id if now.timestamp() < expires else None
