"""Two-factor sign-in with TOTP (RFC 6238) authenticator apps, and recovery codes.

Set-up makes a secret that stays pending until a first code from the app proves it was
scanned; only then is two-factor on, and ten recovery codes are shown once. The secret is
stored AES-GCM encrypted and recovery codes as keyed hashes, both under keys derived from
NOTEFALL_SECRET_KEY with HKDF (changing that key makes both unreadable). Every code works
once: the newest accepted 30-second step is remembered per account and no code of that
step or an earlier one is taken again, even inside the ±1 step window that allows for
clock drift. Never commits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from notefall.server.activity import ActivityKind
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .device import Clock, Device, record_event
from .errors import InvalidOtpError, OtpRequiredError, TwoFactorStateError
from .models import RecoveryCode, TwoFactor, User
from .repository import AccountRepository

ISSUER = "Notefall"
TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
# Codes of the previous and next step are accepted too: phones' clocks drift.
TOTP_WINDOW_STEPS = 1
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: the codes are read off paper.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10  # about 49 bits each
OTP_MAX_LENGTH = 32


def _derive_key(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret_key.encode()
    )


class SecretBox:
    """AES-GCM with a key derived from the server secret, for the TOTP secrets at rest."""

    def __init__(self, secret_key: str) -> None:
        self._aead = AESGCM(_derive_key(secret_key, b"notefall:totp-secret"))

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), None)
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()


def new_recovery_code() -> str:
    code = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{code[:5]}-{code[5:]}"


def _normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_SECONDS


@dataclass(frozen=True)
class TwoFactorSetup:
    secret: str
    otpauth_uri: str
    qr_svg: str


class TwoFactorService:
    def __init__(self, session: Session, settings: Settings, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        secret_key = settings.secret_key.get_secret_value()
        self.box = SecretBox(secret_key)
        self._recovery_key = _derive_key(secret_key, b"notefall:recovery-code")
        self.accounts = AccountRepository(session)

    def is_enabled(self, user: User) -> bool:
        two_factor = self.accounts.two_factor_of(user.id)
        return two_factor is not None and two_factor.enabled_at is not None

    def check(self, user: User, otp: str | None, device: Device) -> None:
        """Pass if two-factor is off or ``otp`` (a TOTP or recovery code) is right; else raise.

        A wrong code is recorded as sign_in_failed in the account's activity log.
        """
        if not self.is_enabled(user):
            return
        if not otp:
            raise OtpRequiredError(
                "Two-factor sign-in is on for this account: send the 6-digit code from your "
                "authenticator app (or a recovery code) as `otp` with the password."
            )
        if not self.verify(user, otp, device):
            record_event(
                self.session,
                user.id,
                ActivityKind.SIGN_IN_FAILED,
                device,
                self.clock(),
                reason="invalid_otp",
            )
            raise self._wrong_code()

    def verify(self, user: User, code: str, device: Device, *, recovery: bool = True) -> bool:
        """True if ``code`` is a fresh TOTP code of the user's authenticator (or, with
        ``recovery``, an unused recovery code, which it spends)."""
        two_factor = self.accounts.two_factor_of(user.id)
        if two_factor is None or len(code) > OTP_MAX_LENGTH:
            return False
        normalized = _normalize(code)
        if len(normalized) == TOTP_DIGITS and normalized.isdigit():
            return self._verify_totp(two_factor, normalized)
        if not recovery or two_factor.enabled_at is None:
            return False
        now = self.clock()
        if not self.accounts.use_recovery_code(user.id, self._hash_code(normalized), now):
            return False
        left = self.accounts.unused_recovery_codes(user.id)
        record_event(
            self.session, user.id, ActivityKind.RECOVERY_CODE_USED, device, now, codes_left=left
        )
        return True

    def set_up(self, user: User) -> TwoFactorSetup:
        """A new pending secret (replacing any earlier pending one) and how to scan it."""
        existing = self.accounts.two_factor_of(user.id)
        if existing is not None and existing.enabled_at is not None:
            raise TwoFactorStateError(
                "Two-factor sign-in is already on; turn it off with POST /api/v1/me/2fa/disable "
                "before setting up another authenticator."
            )
        secret = pyotp.random_base32()
        sealed = self.box.seal(secret)
        if existing is None:
            self.accounts.add_two_factor(
                TwoFactor(user_id=user.id, secret_ciphertext=sealed, created_at=self.clock())
            )
        else:
            existing.secret_ciphertext = sealed
            existing.last_used_step = None
            existing.created_at = self.clock()
        return self._setup_of(user, secret)

    def pending_setup(self, user: User) -> TwoFactorSetup | None:
        """The set-up started and not yet enabled, shown again (a page asking once more for
        the first code must show the same QR code); None when none is pending."""
        existing = self.accounts.two_factor_of(user.id)
        if existing is None or existing.enabled_at is not None:
            return None
        return self._setup_of(user, self.box.open(existing.secret_ciphertext))

    @staticmethod
    def _setup_of(user: User, secret: str) -> TwoFactorSetup:
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
        uri = totp.provisioning_uri(name=user.email, issuer_name=ISSUER)
        svg = segno.make(uri, error="m").svg_inline(scale=4, border=4)
        return TwoFactorSetup(secret=secret, otpauth_uri=uri, qr_svg=svg)

    def enable(self, user: User, code: str, device: Device) -> list[str]:
        """Turn two-factor on once ``code`` proves the app holds the pending secret; the
        recovery codes are returned this once and only their hashes kept."""
        two_factor = self.accounts.two_factor_of(user.id)
        if two_factor is None or two_factor.enabled_at is not None:
            raise TwoFactorStateError(
                "There is no pending two-factor set-up: start one with POST "
                "/api/v1/me/2fa/setup (turn two-factor off first if it is on)."
            )
        if not self.verify(user, code, device, recovery=False):
            raise self._wrong_code()
        now = self.clock()
        two_factor.enabled_at = now
        codes = self._new_recovery_codes(user)
        record_event(self.session, user.id, ActivityKind.TWO_FACTOR_ENABLED, device, now)
        return codes

    def disable(self, user: User, code: str, device: Device) -> None:
        if not self.is_enabled(user):
            raise TwoFactorStateError("Two-factor sign-in is not on for this account.")
        if not self.verify(user, code, device):
            raise self._wrong_code()
        self.accounts.delete_two_factor(user.id)
        record_event(self.session, user.id, ActivityKind.TWO_FACTOR_DISABLED, device, self.clock())

    def regenerate_recovery_codes(self, user: User) -> list[str]:
        """Ten new codes; every earlier one stops working."""
        if not self.is_enabled(user):
            raise TwoFactorStateError(
                "Two-factor sign-in is not on, so there are no recovery codes to replace."
            )
        return self._new_recovery_codes(user)

    def _new_recovery_codes(self, user: User) -> list[str]:
        now = self.clock()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        self.accounts.replace_recovery_codes(
            user.id,
            [
                RecoveryCode(
                    user_id=user.id, code_hash=self._hash_code(_normalize(c)), created_at=now
                )
                for c in codes
            ],
        )
        return codes

    def _verify_totp(self, two_factor: TwoFactor, code: str) -> bool:
        totp = pyotp.TOTP(
            self.box.open(two_factor.secret_ciphertext),
            digits=TOTP_DIGITS,
            interval=TOTP_STEP_SECONDS,
        )
        current = totp_step(self.clock())
        for step in range(current - TOTP_WINDOW_STEPS, current + TOTP_WINDOW_STEPS + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                # Refused if this step or a later one was already used: no replay.
                return self.accounts.accept_step(two_factor.user_id, step)
        return False

    def _hash_code(self, normalized: str) -> str:
        return hmac.new(self._recovery_key, normalized.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _wrong_code() -> InvalidOtpError:
        return InvalidOtpError(
            "This two-factor code is wrong, expired or already used; enter the current code "
            "from your authenticator app, or an unused recovery code."
        )
