"""Start the Stripe-compatible test server (tests/support/stripe_server) as a real process.

    with running_stripe_server(webhook_url="http://127.0.0.1:8123/api/v1/billing/webhook") as stripe_server:
        client = stripe_server.client()            # stripe.StripeClient aimed at the server
        session = client.v1.checkout.sessions.create(params={...})
        stripe_server.control.complete_checkout(session.id)   # pays; webhooks delivered

The server runs under uvicorn in its own process, on a listening socket this module binds on
127.0.0.1 port 0 and hands over (``--fd``), so the port is free and known before it starts.
``StripeControl`` wraps the ``/_test`` endpoints (clock, card outcomes, webhook delivery).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe

REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_notefall_0000000000000000000000"
WEBHOOK_SECRET = "whsec_notefall_test_0000000000000000000000"


class StripeControl:
    """The server's ``/_test`` endpoints. Calls that create events wait, by default, until
    those events were delivered to the webhook URL (unless delivery is paused)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/_test", timeout=60.0)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if method == "GET":
            response = self.http.get(path, params=body or {})
        else:
            response = self.http.post(path, json=body or {})
        if response.status_code >= 400:
            raise StripeControlError(response.status_code, response.json())
        return response.json()

    # ---- the customer's side of Stripe's pages ---------------------------------------------

    def complete_checkout(self, session_id: str, card: str = "success", wait: bool = True) -> Any:
        """The payer submits the Checkout page (``card``: success | declined | requires_action).

        Returns the completed session plus ``events`` (the ids sent). A declined card in
        subscription mode raises ``StripeControlError`` (402 ``card_declined``); nothing changes.
        """
        return self._call(
            "POST", f"/checkout_sessions/{session_id}/complete", {"card": card, "wait": wait}
        )

    def set_card(self, customer_id: str, outcome: str) -> Any:
        """Future charges on the customer's default card: success | declined | requires_action."""
        return self._call("POST", f"/customers/{customer_id}/card", {"outcome": outcome})

    def pay_invoice(self, invoice_id: str, payment_method: str | None = None) -> Any:
        """Like ``Invoice.pay`` but answers 200 with ``outcome`` instead of raising on a decline."""
        body: dict[str, Any] = {}
        if payment_method:
            body["payment_method"] = payment_method
        return self._call("POST", f"/invoices/{invoice_id}/pay", body)

    # ---- time --------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self._call("GET", "/clock")["now"])

    def advance(
        self,
        seconds: int | None = None,
        *,
        to: int | None = None,
        to_period_end: str | None = None,
        to_next_payment_attempt: str | None = None,
        wait: bool = True,
    ) -> Any:
        """Move the test clock forward, running renewals, retries and scheduled cancellations."""
        body: dict[str, Any] = {"wait": wait}
        for key, value in (
            ("seconds", seconds),
            ("to", to),
            ("to_period_end", to_period_end),
            ("to_next_payment_attempt", to_next_payment_attempt),
        ):
            if value is not None:
                body[key] = value
        return self._call("POST", "/advance", body)

    def settings(self, **changes: Any) -> Any:
        """dunning_final ("canceled" | "unpaid"), retry_days ([3, 5, 7]), webhook_retries (0)."""
        return self._call("POST", "/settings", changes)

    # ---- webhooks ----------------------------------------------------------------------------

    def set_webhook(self, url: str | None = None, secret: str | None = None) -> Any:
        body: dict[str, Any] = {}
        if url is not None:
            body["url"] = url
        if secret is not None:
            body["secret"] = secret
        return self._call("POST", "/webhook", body)

    def webhook_state(self) -> Any:
        return self._call("GET", "/webhook")

    def pause_webhooks(self) -> Any:
        return self._call("POST", "/webhook/pause")

    def resume_webhooks(self) -> Any:
        return self._call("POST", "/webhook/resume")

    def flush_webhooks(self, drop: bool = False) -> Any:
        """Deliver what is queued now, in order (``drop=True``: discard it instead)."""
        return self._call("POST", "/webhook/flush", {"drop": drop})

    def wait_webhooks(self, timeout: float = 30.0) -> Any:
        return self._call("POST", "/webhook/wait", {"timeout": timeout})

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Every event in creation order: id, type, created, object_id."""
        return list(self._call("GET", "/events", {"type": type} if type else {})["data"])

    def deliver(self, event_ids: list[str]) -> list[dict[str, Any]]:
        """Deliver these events now, in this order; the attempts."""
        return list(self._call("POST", "/events/deliver", {"ids": event_ids})["attempts"])

    def resend(self, event_id: str) -> list[dict[str, Any]]:
        """Deliver an event again: same id, same body (a duplicate)."""
        return list(self._call("POST", f"/events/{event_id}/resend")["attempts"])

    def signed(
        self, event_id: str, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[str, str]:
        """An event's exact body and a ``Stripe-Signature`` for it, to post it yourself."""
        query: dict[str, Any] = {}
        if secret is not None:
            query["secret"] = secret
        if timestamp is not None:
            query["timestamp"] = timestamp
        reply = self._call("GET", f"/events/{event_id}/signed", query)
        return reply["payload"], reply["signature"]

    def deliveries(
        self, event_id: str | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        """Every delivery attempt: event_id, event_type, url, status, error, at, reason..."""
        query = {k: v for k, v in (("event_id", event_id), ("type", type)) if v}
        return list(self._call("GET", "/deliveries", query)["data"])

    def close(self) -> None:
        self.http.close()


class StripeControlError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class StripeServer:
    url: str
    api_key: str
    webhook_secret: str
    control: StripeControl
    process: subprocess.Popen[bytes]

    def client(self, **options: Any) -> stripe.StripeClient:
        """An SDK client for this server (no network retries: errors show at once)."""
        options.setdefault("max_network_retries", 0)
        return stripe.StripeClient(self.api_key, base_addresses={"api": self.url}, **options)

    @contextmanager
    def global_sdk(self) -> Iterator[None]:
        """Point the module-level SDK (``stripe.Customer.create``...) here for the block."""
        saved = stripe.api_key, stripe.api_base, stripe.max_network_retries
        stripe.api_key, stripe.api_base, stripe.max_network_retries = self.api_key, self.url, 0
        try:
            yield
        finally:
            stripe.api_key, stripe.api_base, stripe.max_network_retries = saved


@contextmanager
def running_stripe_server(
    webhook_url: str | None = None,
    webhook_secret: str = WEBHOOK_SECRET,
    api_key: str = API_KEY,
    startup_timeout: float = 30.0,
) -> Iterator[StripeServer]:
    """The Stripe test server in its own process on 127.0.0.1 and a free port, then stopped."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "tests.support.stripe_server",
        "--fd",
        str(listener.fileno()),
        "--webhook-secret",
        webhook_secret,
    ]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, pass_fds=(listener.fileno(),), stdout=log, stderr=log
        )
        listener.close()
        control = StripeControl(url)
        try:
            _wait_until_answering(process, control, url, log, startup_timeout)
            yield StripeServer(url, api_key, webhook_secret, control, process)
        finally:
            control.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(
    process: subprocess.Popen[bytes], control: StripeControl, url: str, log: Any, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"Stripe test server exited: {log.read().decode()[-4000:]}")
        try:
            if control.http.get("/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"Stripe test server did not answer on {url}")
        time.sleep(0.05)
