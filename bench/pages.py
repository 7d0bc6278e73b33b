"""``make bench`` (browser pages): the dashboard of a user with 500 projects.

- the server's time to answer ``GET /`` (the dashboard, signed in with the browser cookie)
  over repeated requests, p50/p95, through a real uvicorn server on loopback in this
  process, on SQLite and on PostgreSQL (127.0.0.1:5432, database ``test``, when reachable);
- in headless chromium (Debian's /usr/bin/chromium via Playwright): DOMContentLoaded and
  load of ``/``, the median of a few fresh navigations;
- both against ``/signin`` measured the same way in the same run (a small page with the same
  headers, template base and static files), so the dashboard's own cost reads as a ratio on
  a noisy machine.

The projects are inserted directly (bench/server.py ``seed_projects``), each with a real
PNG thumbnail in local storage. Results replace the "Browser pages" section of
docs/benchmarks.md (after PAGES_MARKER) and keep every other section.
Run ``python -m bench.pages --quick`` for a smoke version.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import email
import email.policy
import io
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import redis
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database
from notefall.server.kit.redis_server import RedisServer, free_port
from notefall.server.kit.settings import Environment, Settings, load_settings
from notefall.server.migrations import upgrade_to_head
from notefall.server.projects.models import Project
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, ViewportSize, sync_playwright
from sqlalchemy import Engine, event, select

from .run import REPORT, machine
from .server import postgres_database, running_server, seed_projects

PAGES_MARKER = "<!-- browser page benchmarks (bench/pages.py) -->"
PASSWORD = "falling notes over a grand piano"
EMAIL = "pages-bench@example.com"
PROJECTS = 500
CHROMIUM = "/usr/bin/chromium"
TARGET_SERVER_P95_MS = 100.0
TARGET_DOM_CONTENT_LOADED_MS = 1000.0


@contextlib.contextmanager
def counting_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the app runs during the block (a page's database round trips)."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
    }


def _confirm(client: httpx.Client, settings: Settings) -> None:
    """Sign up through the API and confirm the address with the mailed token."""
    client.post(
        "/api/v1/auth/signup", json={"email": EMAIL, "password": PASSWORD, "name": "Bench"}
    ).raise_for_status()
    newest = sorted(settings.outbox_dir.glob("*.eml"))[-1]
    message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"/verify-email\?token=(\S+)", body)
    assert token, body
    client.post(
        "/api/v1/auth/verify-email", json={"token": unquote(token.group(1))}
    ).raise_for_status()


def _sign_in(context: BrowserContext) -> str:
    """Sign in with the page's form, as a person would; the Cookie header it leaves."""
    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)
    page.close()
    return "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())


def _thumbnails(settings: Settings, database_url: str) -> None:
    """A real PNG at every project's thumbnail key, as a finished render leaves one."""
    picture = io.BytesIO()
    Image.new("RGB", (320, 180), (18, 22, 40)).save(picture, "PNG")
    root = settings.storage_dir
    database = Database(database_url)
    with database.sessions() as session:
        for key in session.scalars(select(Project.thumbnail_key)):
            if key:
                path = root / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(picture.getvalue())
    database.dispose()


def time_requests(client: httpx.Client, path: str, repeats: int) -> dict[str, float]:
    for _ in range(5):
        client.get(path).raise_for_status()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return _percentiles(times)


_NAVIGATION = """() => {
  const [n] = performance.getEntriesByType('navigation');
  return {dcl: n.domContentLoadedEventEnd - n.startTime, load: n.loadEventEnd - n.startTime};
}"""


def time_in_chromium(context: BrowserContext, path: str, runs: int) -> dict[str, float]:
    page = context.new_page()
    page.goto(path)  # warm: the static files are cached after this, as for a returning user
    dcl, load = [], []
    for _ in range(runs):
        page.goto(path, wait_until="load")
        assert page.url.endswith(path), f"{path} went to {page.url}"
        measured = page.evaluate(_NAVIGATION)
        dcl.append(measured["dcl"])
        load.append(measured["load"])
    page.close()
    return {
        "dcl_ms": round(statistics.median(dcl), 1),
        "load_ms": round(statistics.median(load), 1),
    }


def bench_backend(
    label: str, database_url: str, redis_url: str, work: Path, browser: Browser, repeats: int
) -> dict[str, Any]:
    upgrade_to_head(database_url)
    port = free_port()
    settings = load_settings(
        redis_url=redis_url,
        data_dir=work / label,
        database_url=database_url,
        environment=Environment.TEST,
        secret_key="bench-secret-key-" + "x" * 40,
        # The page forms' origin check compares with it: the address the browser uses.
        public_url=f"http://127.0.0.1:{port}",
        rate_limit_scale=1_000_000,
    )
    viewport: ViewportSize = {"width": 1440, "height": 900}
    app = create_app(settings)
    with running_server(app, port) as base, httpx.Client(base_url=base, timeout=30) as api:
        _confirm(api, settings)
        seed_projects(database_url, EMAIL, PROJECTS)
        _thumbnails(settings, database_url)
        user = browser.new_context(base_url=base, viewport=viewport)
        visitor = browser.new_context(base_url=base, viewport=viewport)
        signed_in = httpx.Client(base_url=base, timeout=30, headers={"Cookie": _sign_in(user)})
        try:
            with counting_statements(app.state.database.engine) as statements:
                dashboard = signed_in.get("/")
            assert dashboard.status_code == 200, dashboard.status_code
            assert "/signin" not in str(dashboard.url), dashboard.url
            result = {
                "backend": label,
                "lazy_images": dashboard.text.count('loading="lazy"'),
                "statements": len(statements),
                "dashboard": time_requests(signed_in, "/", repeats),
                "signin": time_requests(api, "/signin", repeats),
                "dashboard_browser": time_in_chromium(user, "/", 7),
                "signin_browser": time_in_chromium(visitor, "/signin", 7),
            }
        finally:
            signed_in.close()
            user.close()
            visitor.close()
    return result


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}" if b else ""


def section(
    results: list[dict[str, Any]], date: str, repeats: int, load_at_start: str
) -> list[str]:
    lines = [
        PAGES_MARKER,
        "## Browser pages (bench/pages.py)",
        "",
        f"Measured on {date}, {machine()}.",
        f"One user with {PROJECTS} projects (each with a PNG thumbnail), signed in with the",
        "browser cookie. Server: a real uvicorn server on 127.0.0.1 with a real Redis and an",
        f"httpx client in the same process, one request at a time, {repeats} requests after 5",
        "warm-up ones. Chromium: Debian's headless chromium through Playwright, the median of",
        "7 navigations after a first one (static files cached, as for a returning user),",
        "DOMContentLoaded and load from the Navigation Timing entry. `/signin` is the baseline",
        "measured the same way in the same run; the ratio column is the dashboard ÷ `/signin`.",
        "",
        "| backend | measure | `/` (dashboard) | `/signin` | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        d, s = r["dashboard"], r["signin"]
        db, sb = r["dashboard_browser"], r["signin_browser"]
        rows = [
            ("server p50 ms", d["p50_ms"], s["p50_ms"], ""),
            ("server p95 ms", d["p95_ms"], s["p95_ms"], f"≤ {TARGET_SERVER_P95_MS:g} ms"),
            ("chromium DOMContentLoaded ms", db["dcl_ms"], sb["dcl_ms"],
             f"< {TARGET_DOM_CONTENT_LOADED_MS:g} ms"),
            ("chromium load ms", db["load_ms"], sb["load_ms"], ""),
        ]  # fmt: skip
        for label, mine, base, target in rows:
            lines.append(
                f"| {r['backend']} | {label} | {mine} | {base} | {_ratio(mine, base)} | {target} |"
            )
    lines.append("")
    lines.append(
        "One dashboard request ran "
        + ", ".join(f"{r['statements']} SQL statements ({r['backend']})" for r in results)
        + "; its HTML has "
        + ", ".join(f"{r['lazy_images']} ({r['backend']})" for r in results)
        + ' images with loading="lazy". '
        + f"The machine's load average when the run began: {load_at_start}."
    )
    lines.append("")
    return lines


def write_section(lines: list[str]) -> None:
    """Replace our section (from PAGES_MARKER to the next section's marker, or the end) or
    append it; every other section stays as it is."""
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Benchmarks\n"
    head, found, rest = text.partition(PAGES_MARKER)
    later = ""
    if found:
        following = re.search(r"^<!-- .* -->$", rest, flags=re.MULTILINE)
        later = rest[following.start() :] if following else ""
    body = head.rstrip("\n") + "\n\n" + "\n".join(lines)
    REPORT.write_text(body + ("\n" + later if later else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    args = parser.parse_args()
    repeats = 50 if args.quick else 200
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Shared machines: say how busy it was, the figures mean little without it.
    load_at_start = " / ".join(f"{n:.1f}" for n in os.getloadavg()) + " (1 / 5 / 15 min)"
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="notefall-bench-pages-") as tmp,
        RedisServer(Path(tmp) / "redis", persistent=False) as redis_server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        work = Path(tmp)
        print("sqlite…", flush=True)
        sqlite_url = f"sqlite:///{work / 'bench.db'}"
        results.append(
            bench_backend("SQLite", sqlite_url, redis_server.url, work, browser, repeats)
        )
        print(results[-1], flush=True)
        with postgres_database() as url:
            if url is None:
                print("PostgreSQL at 127.0.0.1:5432 is not reachable; measured SQLite only")
            else:
                print("postgresql…", flush=True)
                redis.Redis.from_url(redis_server.url).flushdb()
                results.append(
                    bench_backend("PostgreSQL", url, redis_server.url, work, browser, repeats)
                )
                print(results[-1], flush=True)
        browser.close()
    write_section(section(results, date, repeats, load_at_start))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
