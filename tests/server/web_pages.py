"""Driving the browser pages with TestClient: a signed-in browser, the page's CSRF token."""

from __future__ import annotations

import html
import re
import warnings

import httpx
from notefall.server.kit.settings import Settings

from .conftest import signed_in_headers

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "falling notes over a grand piano"  # what signed_in_headers signs up with
PROJECTS = "/api/v1/projects"


def field_value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page
    return html.unescape(found.group(1))


def sign_in(browser: TestClient, settings: Settings, email: str) -> dict[str, str]:
    """A new verified account, signed in in ``browser``; its bearer headers for the API."""
    bearer = signed_in_headers(browser, settings, email)
    browser.cookies.clear()  # whoever was signed in here before
    page = browser.get("/signin")
    form = {
        "email": email,
        "password": PASSWORD,
        "csrf_token": field_value(page.text, "csrf_token"),
        "next": "/",
    }
    assert browser.post("/signin", data=form, follow_redirects=False).status_code == 303
    return bearer


def csrf_of(browser: TestClient, path: str = "/") -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', browser.get(path).text)
    assert found
    return found.group(1)


def visible_text(page: httpx.Response) -> str:
    """The page's words without tags or repeated white space, for "the page says" checks."""
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def assert_page_headers(page: httpx.Response) -> None:
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy
    assert "Traceback" not in page.text
