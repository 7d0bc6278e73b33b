"""Real-browser test support: the whole server as ``notefall stack`` and headless chromium.

    with running_live_server(tmp_dir) as server:          # API + Redis + worker + beat
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            account = new_account(new_context(browser, server), server)  # signed in
            account.page.goto(server.url + "/")
            look(account.page, "dashboard")               # screenshots + axe-core scan

The live server is a real ``notefall stack`` process tree on a free port with its own data
folder (SQLite, local storage, mail written to ``DATA/outbox``) and billing pointed at the
local Stripe-compatible server (tests/support/stripe_server), whose webhooks reach the
stack over HTTP. ``look`` saves ``out/screens/<name>-phone.png`` (390x844) and
``<name>-desktop.png`` (1440x900), both full page, and fails on axe-core's serious or
critical findings, on a page wider than the phone, on scripts or styles the page's CSP
refused and on JavaScript errors.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyotp
from axe_playwright_python.sync_playwright import Axe
from notefall.common.tiers import Tier
from notefall.server.billing import catalog
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.redis_server import free_port
from notefall.server.kit.settings import Environment, Settings, load_settings
from playwright.sync_api import (
    APIResponse,
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    ViewportSize,
    expect,
)
from sqlalchemy.orm import Session

from tests.support.render_farm import FAST_SETTINGS, tiny_midi
from tests.support.stripe_fixture import StripeServer, running_stripe_server

REPO = Path(__file__).resolve().parents[2]
SCREENS_DIR = REPO / "out" / "screens"
LOGS_DIR = REPO / "out" / "web-logs"
CHROMIUM = "/usr/bin/chromium"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PASSWORD = "falling notes over a grand piano"
SECRET_KEY = "browser-test-secret-key-" + "x" * 40
# Bounds for waiting on a process, not speed assertions.
READY_TIMEOUT_SECONDS = 90.0
STARTS = 2
STOP_TIMEOUT_SECONDS = 40.0
# axe-core impacts that fail a page (minor and moderate findings are reported, not fatal).
FATAL_IMPACTS = ("serious", "critical")


@dataclass
class LiveServer:
    """A running ``notefall stack``: its address, data folder, log and Stripe server."""

    url: str
    data_dir: Path
    log_path: Path
    stripe: StripeServer
    settings: Settings
    process: subprocess.Popen[bytes]

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    @contextlib.contextmanager
    def database(self) -> Iterator[Session]:
        """A transaction on the stack's own database (committed at the end of the block),
        for what no page does: expiring a session, seeding many projects."""
        database = Database(self.settings.database_url)
        try:
            with transaction_scope(database) as session:
                yield session
        finally:
            database.dispose()


def _environment(settings: Settings, prices: dict[Tier, str]) -> dict[str, str]:
    """The stack's environment: the test's settings, nothing of the developer's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    assert settings.stripe_secret_key and settings.stripe_webhook_secret
    env.update(
        NOTEFALL_DATA_DIR=str(settings.data_dir),
        NOTEFALL_PUBLIC_URL=settings.public_url,
        NOTEFALL_ENVIRONMENT="test",
        NOTEFALL_SECRET_KEY=SECRET_KEY,
        # Every test signs up from 127.0.0.1: no sign-up or sign-in may be throttled.
        NOTEFALL_RATE_LIMIT_SCALE=str(settings.rate_limit_scale),
        NOTEFALL_RENDER_RETRY_BASE_SECONDS=str(settings.render_retry_base_seconds),
        NOTEFALL_STRIPE_SECRET_KEY=settings.stripe_secret_key.get_secret_value(),
        NOTEFALL_STRIPE_WEBHOOK_SECRET=settings.stripe_webhook_secret.get_secret_value(),
        NOTEFALL_STRIPE_API_BASE=str(settings.stripe_api_base),
        NOTEFALL_STRIPE_PRICE_PRO=prices[Tier.PRO],
        NOTEFALL_STRIPE_PRICE_ENTERPRISE=prices[Tier.ENTERPRISE],
        PYTHONUNBUFFERED="1",
    )
    return env


class StackDidNotStartError(RuntimeError):
    """The stack exited, or did not answer /readyz in time, before it was ready."""


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise StackDidNotStartError(
                f"notefall stack exited ({process.returncode}) before it was ready:\n"
                + log_path.read_text(errors="replace")[-6000:]
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise StackDidNotStartError(
                f"notefall stack did not answer /readyz within {READY_TIMEOUT_SECONDS} s:\n"
                + log_path.read_text(errors="replace")[-6000:]
            )
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the stack (it stops its parts in order); after a bound, SIGKILL every process
    of the tree with its group, so not even a worker's FFmpeg outlives the tests."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT_SECONDS)
    for member in tree:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(member.pid), signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            member.kill()
    process.wait()


@contextlib.contextmanager
def running_live_server(workdir: Path, *, workers: int = 1) -> Iterator[LiveServer]:
    """``notefall stack`` with billing on the local Stripe server, until the block ends.

    Everything lives in ``workdir`` (data folder, the stack's log). The stack is stopped
    (and its process tree killed) however the block ends.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = workdir / "data"
    log_path = workdir / "stack.log"
    with running_stripe_server(webhook_url=f"{url}/api/v1/billing/webhook") as stripe_server:
        base: dict[str, Any] = dict(
            data_dir=data_dir,
            # What the stack gets from its environment without NOTEFALL_* variables: SQLite
            # and files in the data folder, mail to its outbox, its own Redis. Said here so a
            # developer's own variables cannot point this process elsewhere.
            database_url="",
            storage_url="",
            smtp_url=None,
            redis_url=None,
            public_url=url,
            environment=Environment.TEST,
            secret_key=SECRET_KEY,
            rate_limit_scale=1000.0,
            render_retry_base_seconds=0.5,
            stripe_secret_key=stripe_server.api_key,
            stripe_webhook_secret=stripe_server.webhook_secret,
            stripe_api_base=stripe_server.url,
        )
        # The plans' prices exist in "Stripe" before the stack starts, as after
        # `notefall billing sync-catalog` in a real deployment.
        prices = {line.tier: line.price_id for line in catalog.sync_catalog(load_settings(**base))}
        settings = load_settings(
            **base,
            stripe_price_pro=prices[Tier.PRO],
            stripe_price_enterprise=prices[Tier.ENTERPRISE],
        )
        command = [sys.executable, "-m", "notefall.cli", "stack", "--data-dir", str(data_dir),
                   "--port", str(port), "--workers", str(workers)]  # fmt: skip
        process = _start_stack(command, _environment(settings, prices), url, log_path)
        try:
            yield LiveServer(url, data_dir, log_path, stripe_server, settings, process)
        finally:
            _stop(process)


def _start_stack(
    command: list[str], env: dict[str, str], url: str, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start the stack; started once more when it gives up on its own start-up. On a
    crowded two-core machine its parts can miss the stack's 60 s readiness bound; the second
    start is quicker (the database is migrated), and a stack that fails twice fails the run."""
    for attempt in range(1, STARTS + 1):
        with log_path.open("ab") as log:  # appended: a failed first start stays readable
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_ready(process, url, log_path)
            return process
        except StackDidNotStartError:
            _stop(process)
            if attempt == STARTS:
                raise
            with log_path.open("a") as log:
                log.write("\n--- tests: the stack did not start; starting it once more ---\n")
        except BaseException:
            _stop(process)
            raise
    raise AssertionError("unreachable")


# Chromium ---------------------------------------------------------------------------------


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium (Playwright's own download is not reachable from CI machines)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


@dataclass
class PageProblems:
    """What a page did wrong while a test looked at it: CSP refusals, uncaught errors,
    static files that failed to load."""

    items: list[str] = field(default_factory=list)


_problems: dict[Page, PageProblems] = {}


def _watch(page: Page) -> None:
    problems = _problems.setdefault(page, PageProblems())

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.items.append(f"CSP refused: {message.text}")

    def on_response(response: Response) -> None:
        kind = response.request.resource_type
        if kind in ("script", "stylesheet", "image", "font") and response.status >= 400:
            problems.items.append(f"{kind} {response.url} answered {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.items.append(f"JavaScript error: {error}"))
    page.on("response", on_response)

    def forget(_closed: Page) -> None:
        _problems.pop(page, None)

    page.on("close", forget)


def new_context(browser: Browser, server: LiveServer, **options: Any) -> BrowserContext:
    """A fresh browser profile (no cookies) aimed at the live server; every page it opens is
    watched for the problems ``look`` reports."""
    options.setdefault("viewport", DESKTOP)
    context = browser.new_context(base_url=server.url, **options)
    context.set_default_timeout(15_000)
    context.on("page", _watch)
    return context


def page_problems(page: Page) -> list[str]:
    return list(_problems.get(page, PageProblems()).items)


# Mail -------------------------------------------------------------------------------------


def outbox_messages(server: LiveServer, to: str | None = None) -> list[EmailMessage]:
    """Mail the stack wrote to its outbox, oldest first (only to ``to`` when given)."""
    messages = []
    paths = sorted(server.outbox_dir.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if to is None or to.lower() in str(message["To"]).lower():
            messages.append(message)
    return messages


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, f"no plain-text part in {message['Subject']!r}"
    return str(part.get_content())


def link_in(message: EmailMessage, server: LiveServer, path: str) -> str:
    """The first link in the mail to ``path`` on the live server (e.g. ``/verify-email``)."""
    pattern = re.escape(f"{server.url}{path}") + r"\S*"
    found = re.search(pattern, body_of(message))
    assert found, f"no {path} link in the mail:\n{body_of(message)}"
    return found.group(0)


def wait_for_mail(
    server: LiveServer, to: str, subject_contains: str = "", timeout: float = 30.0
) -> EmailMessage:
    """The newest mail to ``to`` whose subject contains the words (mail is written by the
    request or by a worker, so it may land a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        matching = [
            m
            for m in outbox_messages(server, to)
            if subject_contains.lower() in str(m["Subject"]).lower()
        ]
        if matching:
            return matching[-1]
        if time.monotonic() > deadline:
            subjects = [str(m["Subject"]) for m in outbox_messages(server, to)]
            raise AssertionError(f"no mail {subject_contains!r} to {to}; it has: {subjects}")
        time.sleep(0.1)


# Accounts ---------------------------------------------------------------------------------


@dataclass
class Account:
    """A person with a browser: signed up, address confirmed and (unless asked otherwise)
    signed in, in their own browser context."""

    email: str
    password: str
    name: str
    context: BrowserContext
    page: Page
    server: LiveServer

    def api(self, method: str, path: str, **options: Any) -> APIResponse:
        """The JSON API with this browser's cookie, as the pages' own fetch() calls use it
        (X-CSRF-Token and Origin on changes): to set up what a test is not about."""
        headers = dict(options.pop("headers", {}))
        if method.upper() not in ("GET", "HEAD"):
            token = self.context.request.get("/api/v1/auth/csrf")
            assert token.ok, token.text()
            headers["X-CSRF-Token"] = token.json()["csrf_token"]
            headers["Origin"] = self.server.url
        answer = self.context.request.fetch(path, method=method.upper(), headers=headers, **options)
        return answer

    def create_project(self, name: str = "Gymnopédie", midi: bytes | None = None) -> str:
        """A project with a MIDI file, made through the API; its id."""
        created = self.api("POST", "/api/v1/projects", data={"name": name})
        assert created.status == 201, created.text()
        project_id: str = created.json()["id"]
        song = {"name": "song.mid", "mimeType": "audio/midi", "buffer": midi or tiny_midi()}
        uploaded = self.api("PUT", f"/api/v1/projects/{project_id}/midi", multipart={"file": song})
        assert uploaded.status == 200, uploaded.text()
        return project_id

    def start_render(self, project_id: str) -> str:
        """A render of the project at small, quick settings, made through the API; its id."""
        body = {"project_id": project_id, "settings": FAST_SETTINGS}
        started = self.api("POST", "/api/v1/renders", data=body)
        assert started.status in (200, 202), started.text()
        render_id: str = started.json()["id"]
        return render_id


def unique_email(prefix: str = "pianist") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page: Page, name: str, email_address: str, password: str = PASSWORD) -> None:
    """Fill in /signup as a person would; ends on the "Check your inbox" notice."""
    page.goto("/signup")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()


def confirm_address(page: Page, server: LiveServer, email_address: str) -> None:
    """Open the link of the confirmation mail and press the button."""
    mail = wait_for_mail(server, email_address, "confirm")
    page.goto(link_in(mail, server, "/verify-email"))
    page.get_by_role("button", name="Confirm my email address").click()
    page.get_by_role("heading", name="Your address is confirmed").wait_for()


def sign_in(
    page: Page, email_address: str, password: str = PASSWORD, *, next_path: str | None = None
) -> None:
    """Sign in with the form (no second step); waits until the page left /signin."""
    page.goto("/signin" if next_path is None else f"/signin?next={next_path}")
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)


def new_account(
    context: BrowserContext,
    server: LiveServer,
    *,
    name: str = "Ada Lovelace",
    email_address: str | None = None,
    signed_in: bool = True,
) -> Account:
    """In ``context`` (a fresh one, see ``new_context``): sign up through the page, confirm
    the address from the outbox mail's link, sign in."""
    page = context.new_page()
    address = email_address or unique_email()
    sign_up(page, name, address)
    confirm_address(page, server, address)
    if signed_in:
        sign_in(page, address)
    return Account(address, PASSWORD, name, context, page, server)


# Two-factor sign-in -------------------------------------------------------------------------


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The authenticator app's code, ``steps_ahead`` 30-second steps from now (the server
    accepts one step either side and never the same step twice)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def turn_on_two_factor(page: Page, *, look_as: str | None = None) -> str:
    """Through /account/security, as the page asks; the key typed into the "app".
    With ``look_as``, the recovery-codes page is looked at under that name."""
    page.goto("/account/security")
    page.get_by_role("link", name="Confirm password to set it up").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = "".join(page.locator("#two-factor-secret").inner_text().split())
    page.get_by_label("6-digit code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    if look_as:
        look(page, look_as)
    page.get_by_role("link", name="I saved them").click()
    expect(page.locator("#two-factor-title + .state")).to_have_text("On")
    return secret


# Looking at a page ------------------------------------------------------------------------

_axe = Axe()


def _axe_findings(page: Page) -> list[str]:
    results = _axe.run(page).response
    findings = []
    for violation in results["violations"]:
        if violation.get("impact") not in FATAL_IMPACTS:
            continue
        lines = [f"- {violation['id']} ({violation['impact']}): {violation['help']}"]
        for node in violation["nodes"][:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {target}: {summary[:300]}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    ... and {len(violation['nodes']) - 5} more")
        findings.append("\n".join(lines))
    return findings


_OVERFLOW_SCRIPT = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0) {
      wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
        ' (right edge ' + Math.round(box.right) + ' px)');
    }
    if (wide.length >= 8) break;
  }
  return wide.length ? wide : ['the page is ' + document.documentElement.scrollWidth + ' px wide'];
}"""


def look(page: Page, name: str) -> list[Path]:
    """Screenshots of the page at phone and desktop size, each checked with axe-core.

    Fails (AssertionError listing every finding) on serious/critical axe findings at either
    size, on content wider than the phone's screen, and on CSP refusals, JavaScript errors
    or static files that failed to load. Returns the two PNG paths. The viewport is left at
    what it was.
    """
    SCREENS_DIR.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size or DESKTOP
    problems: list[str] = []
    shots = []
    try:
        for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            page.wait_for_load_state("load")
            path = SCREENS_DIR / f"{name}-{label}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            shots.append(path)
            problems += [f"[{label}] {finding}" for finding in _axe_findings(page)]
            if label == "phone":
                wide = page.evaluate(_OVERFLOW_SCRIPT)
                problems += [f"[phone] wider than the screen: {element}" for element in wide]
    finally:
        page.set_viewport_size(before)
    problems += page_problems(page)
    assert not problems, f"{name} ({page.url}) does not look right:\n" + "\n".join(problems)
    return shots
