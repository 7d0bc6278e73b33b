"""What every browser page shares: the templates, security headers, the signed-in user."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.sign_in import Authenticated, Device, SignInService

from .session import SESSION_COOKIE, authenticate_cookie, csrf_token_for

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Pages hold CSRF tokens and personal data: never cached, never framed (the consent page
# must not be clickjacked), no inline script or style needed.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )


def error_page(request: Request, status_code: int, heading: str, message: str) -> Response:
    return render(request, "error.html", status_code, heading=heading, message=message)


def device_of(request: Request) -> Device:
    return Device(
        user_agent=request.headers.get("user-agent"),
        ip=request.client.host if request.client else None,
    )


def safe_next(value: str | None) -> str:
    """A same-site path to go to after signing in; anything else (an open redirect) is '/'.

    Only an absolute path qualifies: no scheme, no host, not protocol-relative ('//host'),
    and no backslash or control character, which some browsers read as '/'."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def signed_in(
    request: Request, sign_in: SignInService, scratch: Response, submitted_csrf: str | None
) -> Authenticated | None:
    """The browser's signed-in user, or None; a change without the CSRF token raises.

    ``scratch`` collects the refreshed cookie; ``finish`` copies it onto the page."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return authenticate_cookie(request, scratch, sign_in, cookie, submitted_csrf)
    except InvalidAccessTokenError:
        return None


def page_csrf_token(sign_in: SignInService, current: Authenticated) -> str:
    return csrf_token_for(sign_in.settings.secret_key.get_secret_value(), current.session.id)


def finish(page: Response, scratch: Response) -> Response:
    for value in scratch.headers.getlist("set-cookie"):
        page.headers.append("set-cookie", value)
    return page
