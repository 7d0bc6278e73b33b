"""docs/server.md must not drift from the settings and error codes it documents."""

from pathlib import Path

from notefall.server.accounts.errors import InvalidTokenError, WeakPasswordError
from notefall.server.kit.app import DatabaseUnreachableError
from notefall.server.kit.settings import Settings

GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "server.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    missing = [n for n in Settings.model_fields if f"`NOTEFALL_{n.upper()}`" not in GUIDE]
    assert missing == []


def test_every_error_code_is_documented():
    codes = [WeakPasswordError.code, InvalidTokenError.code, DatabaseUnreachableError.code]
    codes += ["invalid_request", "not_found", "method_not_allowed", "internal_error"]
    assert [code for code in codes if f"`{code}`" not in GUIDE] == []
