"""A real Notefall server for the desktop's cloud tests (D3).

The API runs under uvicorn in a thread of the test process (so a test can move the app's
clock to expire an access token), on a free port of 127.0.0.1, with a SQLite file migrated to
head, a real Redis server, local file storage, and — when asked — a real render worker
process and the local Stripe-compatible server. The desktop code under test only talks to it
over HTTP and WebSocket, like the shipped app.
"""

from __future__ import annotations

import contextlib
import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from notefall.common.tiers import Tier
from notefall.server.billing.catalog import sync_catalog
from notefall.server.kit.app import create_app
from notefall.server.kit.settings import Environment, Settings, load_settings
from notefall.server.migrations import upgrade_to_head

from tests.server.conftest import TEST_SECRET_KEY, body_of, outbox_messages, token_in
from tests.support.redis_server import running_redis
from tests.support.render_farm import Worker, worker_env
from tests.support.stripe_fixture import running_stripe_server

PASSWORD = "falling notes over a grand piano"


@dataclass
class CloudServer:
    url: str
    settings: Settings
    app: Any
    http: httpx.Client
    tmp: Path
    workers: list[Worker] = field(default_factory=list)
    stripe: Any = None

    def sign_up(self, email: str, name: str = "Ada Lovelace", password: str = PASSWORD) -> None:
        """A confirmed account (sign-up, then the mailed token sent back)."""
        body = {"email": email, "password": password, "name": name}
        assert self.http.post("/api/v1/auth/signup", json=body).status_code == 201
        token = token_in(outbox_messages(self.settings)[-1])
        answer = self.http.post("/api/v1/auth/verify-email", json={"token": token})
        assert answer.status_code == 200, answer.text

    def bearer(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        form = {"grant_type": "password", "username": email, "password": password}
        answer = self.http.post("/api/v1/auth/token", data=form)
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def advance_clock(self, delta: timedelta) -> None:
        """Move the API's clock (tokens, links) forward by ``delta``."""
        now = self.app.state.clock()
        self.app.state.clock = lambda: now + delta

    def last_mail_text(self) -> str:
        return body_of(outbox_messages(self.settings)[-1])

    def start_worker(self, **env: str) -> Worker:
        worker = Worker(self.settings, self.tmp, env=worker_env(self.settings, **env))
        self.workers.append(worker)
        return worker


def stripe_env(settings: Settings) -> dict[str, str]:
    """The worker's Stripe settings (it re-reads Stripe when processing a webhook)."""
    assert settings.stripe_secret_key and settings.stripe_webhook_secret
    return {
        "NOTEFALL_STRIPE_SECRET_KEY": settings.stripe_secret_key.get_secret_value(),
        "NOTEFALL_STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret.get_secret_value(),
        "NOTEFALL_STRIPE_API_BASE": str(settings.stripe_api_base),
        "NOTEFALL_STRIPE_PRICE_PRO": str(settings.stripe_price_pro),
        "NOTEFALL_STRIPE_PRICE_ENTERPRISE": str(settings.stripe_price_enterprise),
    }


def _free_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


@contextmanager
def running_cloud_server(
    tmp: Path, *, with_stripe: bool = False, **overrides: Any
) -> Iterator[CloudServer]:
    """The API on 127.0.0.1 and a free port until the block ends (workers stopped too).

    ``with_stripe``: paid plans through the local Stripe-compatible server, whose signed
    webhooks reach this API, and a worker that processes them (as in production)."""
    with ExitStack() as stack:
        redis = stack.enter_context(running_redis(tmp / "redis"))
        listener = _free_listener()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        database = f"sqlite:///{tmp / 'notefall.db'}"
        upgrade_to_head(database)
        base: dict[str, Any] = dict(
            data_dir=tmp / "data",
            database_url=database,
            environment=Environment.TEST,
            secret_key=TEST_SECRET_KEY,
            public_url=url,
            redis_url=redis.url,
            rate_limit_scale=1000.0,
            render_segment_seconds=30.0,
            **overrides,
        )
        stripe = None
        if with_stripe:
            stripe = stack.enter_context(
                running_stripe_server(webhook_url=f"{url}/api/v1/billing/webhook")
            )
            base.update(
                stripe_secret_key=stripe.api_key,
                stripe_webhook_secret=stripe.webhook_secret,
                stripe_api_base=stripe.url,
            )
            prices = {line.tier: line.price_id for line in sync_catalog(load_settings(**base))}
            base.update(
                stripe_price_pro=prices[Tier.PRO], stripe_price_enterprise=prices[Tier.ENTERPRISE]
            )
        settings = load_settings(**base)
        app = create_app(settings)
        api = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=api.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        http = httpx.Client(base_url=url, timeout=30.0)
        server = CloudServer(url, settings, app, http, tmp, stripe=stripe)
        if stripe is not None:
            server.start_worker(**stripe_env(settings))
        try:
            deadline = time.monotonic() + 20
            while not api.started:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.05)
            yield server
        finally:
            for worker in server.workers:
                worker.terminate()
            http.close()
            api.should_exit = True
            thread.join(15)
            listener.close()


class Browser:
    """Plays the user's web browser against the server's pages: keeps cookies by hand
    (the sign-in cookie is ``Secure``, which httpx keeps only for https, while a real
    browser keeps it for http://127.0.0.1 too) and submits forms the way a person would."""

    def __init__(self, server: CloudServer) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}
        self.http = httpx.Client(timeout=30.0)

    def _remember(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            headers["Origin"] = self.server.url
        response = self.http.request(method, url, headers=headers, **kwargs)
        self._remember(response)
        return response

    def follow(self, url: str, limit: int = 10) -> httpx.Response:
        """GET ``url`` and follow redirects (also to the desktop's loopback receiver)."""
        response = self.request("GET", url)
        for _ in range(limit):
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307) or not location:
                return response
            response = self.request("GET", str(response.url.join(location)))
        raise AssertionError("too many redirects")

    def sign_in(self, page: httpx.Response, email: str, password: str = PASSWORD) -> httpx.Response:
        """Fill the sign-in page the server showed and follow where it leads."""
        form = {
            "email": email,
            "password": password,
            "csrf_token": hidden_field(page.text, "csrf_token"),
            "next": hidden_field(page.text, "next"),
        }
        answer = self.request("POST", str(page.url.copy_with(query=None)), data=form)
        assert answer.status_code == 303, answer.text
        return self.follow(str(answer.url.join(answer.headers["location"])))

    def consent(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        """Answer the consent page; follows the redirect to the app's loopback address."""
        names = re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"', page.text)
        form = {name: hidden_field(page.text, name) for name in names}
        form["decision"] = decision
        answer = self.request("POST", f"{self.server.url}/oauth/authorize", data=form)
        assert answer.status_code == 302, answer.text
        return self.request("GET", answer.headers["location"])

    def close(self) -> None:
        self.http.close()


def hidden_field(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found, page[:3000]
    return html.unescape(found.group(1))


class CuttableProxy:
    """A TCP forwarder in front of the server whose open connections a test can cut, as a
    network drop would (new connections still go through)."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = _free_listener()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection at once."""
        with self._lock:
            doomed, self._sockets = self._sockets, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
