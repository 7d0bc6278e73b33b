"""docs/server.md must not drift from the settings, error codes and API routes it documents."""

from pathlib import Path

from notefall.server.accounts import errors as account_errors
from notefall.server.billing import errors as billing_errors
from notefall.server.jobs import errors as job_errors
from notefall.server.kit import ratelimit as rate_limit_errors
from notefall.server.kit.app import (
    DatabaseUnreachableError,
    NoWorkerConsumingError,
    RedisUnreachableError,
    create_app,
)
from notefall.server.kit.errors import ProblemError
from notefall.server.kit.settings import Settings
from notefall.server.oauth import errors as oauth_errors
from notefall.server.profile import errors as profile_errors
from notefall.server.projects import errors as project_errors
from notefall.server.renders import admin_router as render_admin_errors
from notefall.server.renders import deadletters as dead_letter_errors
from notefall.server.renders import errors as render_errors
from notefall.server.storage import errors as storage_errors
from notefall.server.usage import errors as usage_errors
from notefall.server.web import errors as web_errors

from .conftest import make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The server guide and the render farm's guide, which it links to.
GUIDE = "\n".join((DOCS / name).read_text(encoding="utf-8") for name in ("server.md", "renders.md"))


def test_every_setting_is_documented():
    missing = [n for n in Settings.model_fields if f"`NOTEFALL_{n.upper()}`" not in GUIDE]
    assert missing == []


def test_every_error_code_is_documented():
    domain_codes = [
        error.code
        for module in (
            account_errors,
            project_errors,
            storage_errors,
            oauth_errors,
            web_errors,
            usage_errors,
            job_errors,
            rate_limit_errors,
            profile_errors,
            render_errors,
            render_admin_errors,
            dead_letter_errors,
            billing_errors,
        )
        for error in vars(module).values()
        if isinstance(error, type) and issubclass(error, ProblemError) and error is not ProblemError
    ]
    assert len(domain_codes) >= 10
    codes = [*domain_codes, DatabaseUnreachableError.code, RedisUnreachableError.code]
    codes.append(NoWorkerConsumingError.code)
    codes += ["invalid_request", "not_found", "method_not_allowed", "internal_error"]
    assert [code for code in codes if f"`{code}`" not in GUIDE] == []


def test_every_api_route_is_listed_under_what_exists(tmp_path: Path):
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'unused.db'}"))
    listed = [
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    ]
    missing = [entry for entry in listed if f"`{entry}" not in GUIDE]
    assert len(listed) >= 7 and missing == []
