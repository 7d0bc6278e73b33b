"""Signed mail tokens: only the holder of the secret can make one, for one purpose."""

import uuid
from datetime import UTC, datetime, timedelta

from notefall.server.kit.security import (
    hash_token,
    issue_access_token,
    issue_token,
    read_access_token,
    token_is_signed,
)

SECRET = "s" * 40


def test_an_issued_token_is_signed_for_its_purpose_and_stored_only_as_a_hash():
    issued = issue_token(SECRET, "verify-email")
    assert token_is_signed(SECRET, "verify-email", issued.token)
    assert issued.token_hash == hash_token(issued.token)
    assert issued.token not in issued.token_hash


def test_a_token_does_not_serve_another_purpose_or_another_secret():
    token = issue_token(SECRET, "verify-email").token
    assert not token_is_signed(SECRET, "password-reset", token)
    assert not token_is_signed("t" * 40, "verify-email", token)


def test_tampered_and_malformed_tokens_are_not_signed():
    token = issue_token(SECRET, "verify-email").token
    nonce, _, signature = token.partition(".")
    flipped = ("A" if nonce[0] != "A" else "B") + nonce[1:]
    for bad in (f"{flipped}.{signature}", nonce, f"{nonce}.", f".{signature}", "", "x.y"):
        assert not token_is_signed(SECRET, "verify-email", bad)


def test_tokens_are_unique():
    assert len({issue_token(SECRET, "verify-email").token for _ in range(50)}) == 50


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_an_access_token_names_its_session_until_it_expires():
    session_id = uuid.uuid4()
    token = issue_access_token(SECRET, session_id, NOW + timedelta(minutes=15))
    assert read_access_token(SECRET, token, NOW) == session_id
    assert read_access_token(SECRET, token, NOW + timedelta(minutes=14, seconds=59)) == session_id
    assert read_access_token(SECRET, token, NOW + timedelta(minutes=15)) is None


def test_forged_access_tokens_are_not_read():
    session_id = uuid.uuid4()
    token = issue_access_token(SECRET, session_id, NOW + timedelta(minutes=15))
    session_hex, expiry, signature = token.split(".")
    other_session = f"{uuid.uuid4().hex}.{expiry}.{signature}"
    longer = f"{session_hex}.{int(expiry) + 3600}.{signature}"
    # A mail token is signed for another purpose, so it never reads as an access token.
    mail_token = issue_token(SECRET, "verify-email").token
    for bad in (other_session, longer, mail_token, "", "a.b.c", f"zz.{expiry}.{signature}"):
        assert read_access_token(SECRET, bad, NOW) is None
    assert read_access_token("t" * 40, token, NOW) is None


def test_tokens_with_non_ascii_characters_are_refused_not_crashed_on():
    # hmac.compare_digest raises TypeError on non-ASCII str; the fuzz test found it.
    token = issue_token(SECRET, "share").token
    nonce, _, signature = token.partition(".")
    assert not token_is_signed(SECRET, "share", f"{nonce}.{signature[:-1]}é")
    now = datetime.now(UTC)
    access = issue_access_token(SECRET, uuid.uuid4(), now + timedelta(minutes=5))
    assert read_access_token(SECRET, access, now) is not None
    assert read_access_token(SECRET, access[:-1] + "ü", now) is None
