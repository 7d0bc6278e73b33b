"""What every browser page shares: the templates, security headers, the signed-in user."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast
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
# must not be clickjacked), no inline script or style anywhere (so the policy allows none).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# A year, the usual minimum for browsers' preload lists; sent only over HTTPS (RFC 6797 §7.2).
HSTS = "max-age=31536000"


def storage_origin(request: Request) -> str | None:
    """The origin of signed file links when it is not this site's (S3, a CDN), else None.

    Worked out once per app from a link to a made-up key: signing is local arithmetic, and
    the host is the same for every key (the bucket's, the endpoint's or the CDN's)."""
    state = request.app.state
    if not hasattr(state, "storage_link_origin"):
        link = urlsplit(state.storage.signed_url("csp/origin", timedelta(minutes=1)))
        site = urlsplit(state.settings.public_url)
        origin = f"{link.scheme}://{link.netloc}"
        state.storage_link_origin = None if origin == f"{site.scheme}://{site.netloc}" else origin
    return cast(str | None, state.storage_link_origin)


def content_security_policy(request: Request) -> str:
    # Thumbnails and videos may come from the storage's own host; WebSockets are same-origin
    # ('self' covers ws:// and wss:// of this host in CSP 3).
    files = " ".join(filter(None, ["'self'", storage_origin(request)]))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {files} data:; media-src {files}; connect-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    )


def page_headers(request: Request) -> dict[str, str]:
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(request)}
    # request.url.scheme is https behind a TLS proxy only when uvicorn trusts it
    # (--forwarded-allow-ips): the one proxy rule the app already follows.
    if request.url.scheme == "https":
        headers["Strict-Transport-Security"] = HSTS
    return headers


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=page_headers(request)
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
