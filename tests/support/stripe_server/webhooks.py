"""Webhook delivery: each event POSTed, signed exactly as Stripe signs it, in creation order.

The ``Stripe-Signature`` header comes from the SDK's own helper
(``stripe.WebhookSignature.generate_signature_header``: ``t=<unix>,v1=<HMAC-SHA256(secret,
"<t>.<body>")>``). The timestamp is wall-clock time, not the test clock, because the receiver
checks it against its own clock (``construct_event``'s 300 s tolerance).

One background thread delivers queued events one at a time, so our app sees them in order. Tests
can pause the queue, deliver chosen events in a chosen order, resend one (same event id: a
duplicate), and read every attempt with the status our app answered.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import stripe


@dataclass
class Attempt:
    event_id: str
    event_type: str
    url: str
    # The HTTP status our app answered, or None when the connection failed.
    status: int | None
    error: str | None
    response_body: str
    # Wall-clock time of the attempt and how long the app took to answer, in seconds.
    at: float
    duration: float
    # "queue" (normal delivery), "resend", "deliver" (chosen order) or "retry".
    reason: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )


class Deliverer:
    def __init__(
        self,
        payload_of: Callable[[str], tuple[str, str]],
        retries_of: Callable[[], int],
        url: str | None = None,
        secret: str | None = None,
    ) -> None:
        # ``payload_of(event_id)`` -> (event type, JSON body); reads the store under its lock.
        self._payload_of = payload_of
        self._retries_of = retries_of
        self.url = url
        self.secret = secret
        self.paused = False
        self.attempts: list[Attempt] = []
        self._pending: deque[str] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        # One delivery at a time, whoever sends it (the queue thread or a test-control call).
        self._sending = threading.Lock()
        self._client = httpx.Client(timeout=30.0)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="webhook-deliverer", daemon=True)
        self._thread.start()

    # ---- queue ----------------------------------------------------------------------------

    def enqueue(self, event_id: str) -> None:
        """Queue a new event; with no webhook URL set it is only stored (as with no endpoint)."""
        with self._cond:
            if not self.url:
                return
            self._pending.append(event_id)
            self._cond.notify_all()

    def pending(self) -> list[str]:
        with self._cond:
            return list(self._pending)

    def pause(self) -> None:
        with self._cond:
            self.paused = True

    def resume(self) -> None:
        with self._cond:
            self.paused = False
            self._cond.notify_all()

    def drop_pending(self) -> list[str]:
        with self._cond:
            dropped = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
            return dropped

    def flush(self) -> list[Attempt]:
        """Deliver everything queued now, in order, even while paused; the attempts made."""
        with self._cond:
            ids = list(self._pending)
            self._pending.clear()
            self._in_flight += 1
        try:
            return [a for event_id in ids for a in self._deliver(event_id, "queue")]
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until nothing is queued (or the queue is paused) and no delivery is running."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._in_flight or (self._pending and not self.paused and self.url):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_delivered(self, event_ids: list[str], timeout: float = 30.0) -> bool:
        """Until none of ``event_ids`` is still queued or being delivered (paused: not waited)."""
        deadline = time.monotonic() + timeout
        wanted = set(event_ids)
        with self._cond:
            while self.url and not self.paused and (wanted & set(self._pending) or self._in_flight):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # ---- sending --------------------------------------------------------------------------

    def deliver(self, event_ids: list[str], reason: str) -> list[Attempt]:
        """Deliver the given events now, in the given order (not removing them from the queue)."""
        with self._cond:
            self._in_flight += 1
        try:
            return [a for event_id in event_ids for a in self._deliver(event_id, reason)]
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (self.paused or not self._pending or not self.url):
                    self._cond.wait()
                if self._stopped:
                    return
                event_id = self._pending.popleft()
                self._in_flight += 1
            try:
                self._deliver(event_id, "queue")
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _deliver(self, event_id: str, reason: str) -> list[Attempt]:
        url, secret = self.url, self.secret
        if not url or not secret:
            return []
        event_type, payload = self._payload_of(event_id)
        attempts: list[Attempt] = []
        with self._sending:
            for number in range(1 + max(0, self._retries_of())):
                attempt = self._post(url, secret, event_id, event_type, payload, reason)
                if number:
                    attempt.reason = "retry"
                attempts.append(attempt)
                with self._cond:
                    self.attempts.append(attempt)
                if attempt.status is not None and 200 <= attempt.status < 300:
                    break
        return attempts

    def _post(
        self, url: str, secret: str, event_id: str, event_type: str, payload: str, reason: str
    ) -> Attempt:
        started = time.time()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, secret),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            response = self._client.post(url, content=payload.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(
                event_id,
                event_type,
                url,
                None,
                repr(exc),
                "",
                started,
                time.time() - started,
                reason,
            )
        return Attempt(
            event_id,
            event_type,
            url,
            response.status_code,
            None,
            response.text[:2000],
            started,
            time.time() - started,
            reason,
        )
