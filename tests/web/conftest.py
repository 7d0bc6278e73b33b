"""Fixtures of the real-browser tests: one live ``notefall stack`` and one headless chromium
per test process (``make test`` keeps every browser test in one xdist group, so one of
each), a fresh browser context per test.

    pytestmark = pytest.mark.xdist_group("browser")

    def test_something(web: Web):
        account = web.new_account()              # signed up, confirmed, signed in
        account.page.goto("/")
        look(account.page, "dashboard")

When a test fails, the stack's log lines written during that test go to
out/web-logs/<test>.log (and its tail into the report), and every page the test left open
is saved as out/screens/failed-<test>-<n>.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.support.browser import (
    LOGS_DIR,
    SCREENS_DIR,
    Account,
    LiveServer,
    launch_chromium,
    new_account,
    new_context,
    outbox_messages,
    running_live_server,
)

SERVER_LOG_MARK = pytest.StashKey[tuple[LiveServer, int]]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_live_server(tmp_path_factory.mktemp("live")) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API refuses to start inside a running asyncio loop; none runs here.
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


class Web:
    """One test's browser work: contexts it opens are closed after the test."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[BrowserContext] = []

    @property
    def url(self) -> str:
        return self.server.url

    def context(self, **options: Any) -> BrowserContext:
        """A fresh context (no cookies), desktop-sized unless ``viewport`` says otherwise."""
        context = new_context(self.browser, self.server, **options)
        self.contexts.append(context)
        return context

    def page(self, **options: Any) -> Page:
        """A page in a fresh context: a signed-out visitor."""
        return self.context(**options).new_page()

    def new_account(self, *, viewport: ViewportSize | None = None, **options: Any) -> Account:
        """A person in a fresh context: signed up, confirmed and signed in through the pages
        (see tests.support.browser.new_account: name=, email_address=, signed_in=)."""
        context = self.context(**({"viewport": viewport} if viewport else {}))
        return new_account(context, self.server, **options)

    def outbox(self, to: str | None = None) -> list[Any]:
        return outbox_messages(self.server, to)

    def open_pages(self) -> list[Page]:
        return [page for context in self.contexts for page in context.pages]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", nodeid.split("::", 1)[-1])[:120]


@pytest.fixture
def web(request: pytest.FixtureRequest, browser: Browser, live_server: LiveServer) -> Iterator[Web]:
    helper = Web(browser, live_server)
    try:
        yield helper
        report = request.node.stash.get(REPORTS, {}).get("call")
        if report is not None and report.failed:
            SCREENS_DIR.mkdir(parents=True, exist_ok=True)
            for n, page in enumerate(helper.open_pages()):
                try:
                    page.screenshot(
                        path=str(SCREENS_DIR / f"failed-{_slug(request.node.nodeid)}-{n}.png"),
                        full_page=True,
                    )
                except Exception:  # a crashed page must not hide the failure
                    continue
    finally:
        helper.close()


@pytest.fixture(autouse=True)
def _server_log_mark(request: pytest.FixtureRequest) -> None:
    """Remember where the stack's log stood when the test began (when a stack runs)."""
    if "live_server" in request.fixturenames or "web" in request.fixturenames:
        server: LiveServer = request.getfixturevalue("live_server")
        request.node.stash[SERVER_LOG_MARK] = (server, server.log_size())


WEB_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test in the "browser" xdist group, marked or not: with
    ``--dist loadgroup`` they then share one worker, so one stack and one chromium."""
    for item in items:
        if item.path.is_relative_to(WEB_DIR) and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if not report.failed or SERVER_LOG_MARK not in item.stash:
        return
    server, offset = item.stash[SERVER_LOG_MARK]
    written = server.log_since(offset)
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    path = LOGS_DIR / f"{_slug(item.nodeid)}.log"
    path.write_text(written)
    report.sections.append(
        ("live server log", f"(whole log of this test: {path})\n{written[-6000:]}")
    )
