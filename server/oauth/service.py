"""The authorization-code grant: checking an authorization request, issuing a code after
consent, and exchanging it (with its PKCE verifier) for a session's tokens.

Codes are signed random tokens like the mail tokens, stored only as their SHA-256, bound to
the client, redirect URI, code challenge and user, valid 60 seconds and usable once. A code
presented a second time means someone else holds a copy, so the session its first use
opened is revoked (RFC 6749 §4.1.2). Never commits: the request's session does, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn
from urllib.parse import urlencode, urlsplit, urlunsplit

from notefall.server.accounts.models import User
from notefall.server.accounts.sign_in import Device, IssuedTokens, SignInService
from notefall.server.activity import ActivityKind, record
from notefall.server.kit.security import hash_token, issue_token, token_is_signed
from notefall.server.kit.settings import Settings
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .clients import Client, client_by_id, is_loopback_redirect
from .errors import AuthorizationCodeRefusedError, AuthorizationCodeReusedError, InvalidClientError
from .models import AuthorizationCode
from .pkce import is_challenge, verifier_matches

Clock = Callable[[], datetime]

CODE_LIFETIME = timedelta(seconds=60)
CODE_PURPOSE = "authorization-code"
MAX_STATE_LENGTH = 500


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked ``GET /oauth/authorize`` request."""

    client: Client
    redirect_uri: str
    code_challenge: str
    state: str | None
    scope: str

    def as_fields(self) -> dict[str, str]:
        """The request as the consent form's hidden fields (and the authorize query)."""
        fields = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "scope": self.scope,
        }
        if self.state is not None:
            fields["state"] = self.state
        return fields


class UntrustedRedirectError(Exception):
    """The client or its redirect URI is not ours: say so on a page, never redirect."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthorizationRequestError(Exception):
    """A request the client made wrong, answered on its redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, redirect_to: str) -> None:
        super().__init__(redirect_to)
        self.redirect_to = redirect_to


def with_query(uri: str, **params: str | None) -> str:
    """``uri`` with ``params`` (those not None) added to its query."""
    parts = urlsplit(uri)
    added = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def check_authorization_request(params: Mapping[str, str]) -> AuthorizationRequest:
    client = client_by_id(params.get("client_id"))
    if client is None:
        raise UntrustedRedirectError(
            "The app that sent you here is not registered with Notefall, so it was not "
            "signed in. Start the sign-in again from the Notefall app."
        )
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None or not is_loopback_redirect(redirect_uri):
        raise UntrustedRedirectError(
            f"{client.name} asked to send your sign-in to an address that is not on this "
            "computer, so Notefall stopped here. Start the sign-in again from the app."
        )
    state = params.get("state")
    # An over-long state is not echoed back: the answer would carry whatever was sent.
    echoed_state = state if state is None or len(state) <= MAX_STATE_LENGTH else None

    def refuse(error: str, description: str) -> AuthorizationRequestError:
        return AuthorizationRequestError(
            with_query(redirect_uri, error=error, error_description=description, state=echoed_state)
        )

    if state != echoed_state:
        raise refuse("invalid_request", f"state must be at most {MAX_STATE_LENGTH} characters")
    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "response_type must be code")
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "PKCE is required with code_challenge_method=S256")
    challenge = params.get("code_challenge")
    if challenge is None or not is_challenge(challenge):
        raise refuse("invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier))")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        state=state,
        # One scope covers everything today: accepted, kept for the consent page, not checked.
        scope=(params.get("scope") or "")[:200],
    )


class AuthorizationService:
    def __init__(self, session: Session, settings: Settings, clock: Clock) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock

    def allow(self, user: User, request: AuthorizationRequest, device: Device) -> str:
        """The user said yes: where to send the browser, with a fresh single-use code."""
        issued = issue_token(self._secret, CODE_PURPOSE)
        now = self.clock()
        self.session.add(
            AuthorizationCode(
                code_hash=issued.token_hash,
                client_id=request.client.client_id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                user_id=user.id,
                expires_at=now + CODE_LIFETIME,
                created_at=now,
            )
        )
        record(
            self.session,
            user.id,
            ActivityKind.APP_AUTHORIZED,
            ip=device.ip,
            user_agent=device.user_agent,
            at=now,
            client_id=request.client.client_id,
            app=request.client.name,
        )
        self.session.flush()
        return with_query(request.redirect_uri, code=issued.token, state=request.state)

    @staticmethod
    def deny(request: AuthorizationRequest) -> str:
        return with_query(
            request.redirect_uri,
            error="access_denied",
            error_description="You declined the sign-in",
            state=request.state,
        )

    def exchange(
        self,
        sign_in: SignInService,
        *,
        code: str,
        client_id: str | None,
        redirect_uri: str | None,
        code_verifier: str | None,
        device: Device,
    ) -> IssuedTokens:
        """A new session's tokens for a code, its verifier and the request it was issued to."""
        if client_by_id(client_id) is None:
            raise InvalidClientError(
                "Send client_id=notefall-desktop; no other app may exchange codes."
            )
        refused = AuthorizationCodeRefusedError(
            "This authorization code is invalid, expired, already used, or was issued for "
            "another app, redirect URI or code verifier; start the sign-in again."
        )
        if not token_is_signed(self._secret, CODE_PURPOSE, code):
            raise refused
        stored = self.session.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == hash_token(code))
        )
        if stored is None:
            raise refused
        now = self.clock()
        if stored.used_at is not None:
            self._revoke_first_use(sign_in, stored, now)
        if (
            stored.expires_at <= now
            or stored.client_id != client_id
            or stored.redirect_uri != redirect_uri
            or not verifier_matches(code_verifier, stored.code_challenge)
        ):
            raise refused
        if not self._spend(stored, now):
            # Another exchange of the same code won the race just now.
            self.session.refresh(stored)
            self._revoke_first_use(sign_in, stored, now)
        user = sign_in.accounts.user_by_id(stored.user_id)
        assert user is not None  # the foreign key cascades deletes to codes
        issued = sign_in.open_session(user, device, via="desktop")
        found = sign_in.accounts.refresh_token_by_hash(hash_token(issued.refresh_token))
        assert found is not None  # just issued in this transaction
        stored.session_id = found[1].id
        self.session.flush()
        return issued

    def _spend(self, stored: AuthorizationCode, now: datetime) -> bool:
        result = self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == stored.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    @staticmethod
    def _revoke_first_use(
        sign_in: SignInService, stored: AuthorizationCode, now: datetime
    ) -> NoReturn:
        if stored.session_id is not None:
            sign_in.accounts.revoke_session(stored.session_id, now)
        raise AuthorizationCodeReusedError(
            "This authorization code was already used, so it may have been copied; the "
            "session it opened is ended for safety. Start the sign-in again."
        )

    @property
    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()
