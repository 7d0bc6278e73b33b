"""Signed mail tokens: only the holder of the secret can make one, for one purpose."""

from notefall.server.kit.security import hash_token, issue_token, token_is_signed

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
