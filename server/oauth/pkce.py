"""PKCE with the S256 method (RFC 7636); the plain method is refused."""

from __future__ import annotations

import hashlib
import hmac
import re

from notefall.server.kit.security import b64

# RFC 7636 §4.1: 43 to 128 unreserved characters. An S256 challenge is the base64url of a
# SHA-256 digest: exactly 43 characters of the base64url alphabet.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    return b64(hashlib.sha256(verifier.encode("ascii")).digest())


def is_challenge(value: str | None) -> bool:
    return value is not None and S256_CHALLENGE.fullmatch(value) is not None


def verifier_matches(verifier: str | None, challenge: str) -> bool:
    if verifier is None or VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
