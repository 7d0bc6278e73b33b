"""Password rules and argon2id hashing."""

import pytest
from argon2 import PasswordHasher
from notefall.server.accounts.errors import WeakPasswordError
from notefall.server.accounts.passwords import (
    MIN_PASSWORD_LENGTH,
    check_password_strength,
    common_passwords,
    hash_password,
    password_needs_rehash,
    verify_password,
)


def test_passwords_are_hashed_with_argon2id_and_verify():
    hashed = hash_password("a piano in the attic")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a piano in the attic")
    assert not verify_password(hashed, "a piano in the cellar")
    assert not verify_password("not a hash", "a piano in the attic")


@pytest.mark.parametrize("password", ["short", "9chars!!!", ""])
def test_short_passwords_are_refused(password: str):
    with pytest.raises(WeakPasswordError, match=f"at least {MIN_PASSWORD_LENGTH}"):
        check_password_strength(password)


@pytest.mark.parametrize("password", ["1234567890", "PASSWORD123", "qwertyuiop", "Iloveyou123"])
def test_common_passwords_are_refused_whatever_their_case(password: str):
    with pytest.raises(WeakPasswordError, match="lists attackers try first"):
        check_password_strength(password)


def test_the_accounts_own_email_is_refused_as_its_password():
    with pytest.raises(WeakPasswordError):
        check_password_strength("Ada@Example.com", email="ada@example.com")


def test_an_own_long_password_is_accepted():
    check_password_strength("falling notes over a grand piano", email="ada@example.com")


def test_the_common_password_list_is_lower_case_and_only_what_length_does_not_catch():
    passwords = common_passwords()
    assert len(passwords) > 1000
    assert all(p == p.lower() and len(p) >= MIN_PASSWORD_LENGTH for p in passwords)


def test_hashes_with_other_parameters_need_rehashing():
    assert not password_needs_rehash(hash_password("a piano in the attic"))
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    assert password_needs_rehash(weaker.hash("a piano in the attic"))
    assert password_needs_rehash("not a hash")
