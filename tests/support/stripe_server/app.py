"""The ASGI app: Stripe's ``/v1`` API, the pages behind its URLs, and the ``/_test`` controls.

Every ``/v1`` request needs ``Authorization: Bearer sk_test_...``; parameters are form-encoded
(POST body) or in the query string (GET, DELETE), as the SDK sends them. A POST with an
``Idempotency-Key`` seen before gets the first reply again (``Idempotent-Replayed: true``), or a
400 ``idempotency_error`` when its parameters differ.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from . import api, billing
from .forms import as_int, decode
from .state import API_VERSION, Obj, Store, StripeError, invalid
from .webhooks import Deliverer, signature_header


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, indent=2),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


class StripeApp:
    def __init__(self, store: Store, deliverer: Deliverer) -> None:
        self.store = store
        self.deliverer = deliverer
        store.on_event = deliverer.enqueue

    # ---- /v1 ------------------------------------------------------------------------------

    async def v1(self, request: Request) -> Response:
        body = (await request.body()).decode()
        return await run_in_threadpool(self._v1, request, body)

    def _v1(self, request: Request, body: str) -> Response:
        request_id = self.store.new_id("req")[:18]
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        try:
            api_key = self._api_key(request)
            method = request.method
            path = request.url.path
            params = decode(request.url.query)
            if method == "POST" and body:
                params.update(decode(body))
        except StripeError as error:
            return _json(error.body(), error.status, headers)
        key = request.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = hashlib.sha256(f"{method} {path} {body}".encode()).hexdigest()
        # The whole request under the store's lock: a second request with the same key, even
        # a concurrent one, sees the first one's reply.
        with self.store.lock:
            replay = self.store.idempotent_replies.get(f"{api_key}:{key}") if key else None
            if replay is not None:
                if replay[0] != fingerprint:
                    refused = StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                    return _json(refused.body(), refused.status, headers)
                return _json(replay[2], replay[1], {**headers, "Idempotent-Replayed": "true"})
            try:
                status, reply = self._call(method, path, params, request_id, key)
            except StripeError as error:
                status, reply = error.status, error.body()
            # As Stripe: successes and card declines are replayed; refused parameters are not.
            if key is not None and (status < 400 or status == 402):
                self.store.idempotent_replies[f"{api_key}:{key}"] = (fingerprint, status, reply)
        return _json(reply, status, headers)

    def _api_key(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        key = header.removeprefix("Bearer ").strip()
        if not key.startswith(("sk_test_", "rk_test_")):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            raise StripeError(
                401,
                f"Invalid API Key provided: {shown}",
                code="api_key_expired" if key.startswith("sk_live_") else None,
            )
        return key

    def _call(
        self, method: str, path: str, params: Obj, request_id: str, key: str | None
    ) -> tuple[int, Obj]:
        for route in api.ROUTES:
            match = route.pattern.match(path)
            if match is None or route.method != method:
                continue
            for name in params:
                if name not in route.allowed:
                    raise StripeError(
                        400,
                        f"Received unknown parameter: {name}",
                        code="parameter_unknown",
                        param=name,
                    )
            expand = params.get("expand", [])
            if isinstance(expand, str):
                expand = [expand]
            with self.store.lock:
                self.store.request_id = request_id
                self.store.emitted = []
                self.store.idempotency_key = key
                try:
                    result = route.handler(self.store, params, *match.groups())
                    return 200, self.store.render(result, expand)
                finally:
                    self.store.request_id = ""
                    self.store.idempotency_key = None
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    # ---- /_test ---------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(self._control, request, raw)

    def _control(self, request: Request, raw: bytes) -> Response:
        try:
            body: Obj = json.loads(raw) if raw.strip() else {}
            if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                body = decode(raw.decode())
            body.update({k: v for k, v in request.query_params.items() if k not in body})
            handler, args = self._control_route(request.method, request.url.path)
            if getattr(handler, "__func__", None) in _DELIVERY_HANDLERS:
                # These wait on or perform deliveries: holding the store's lock meanwhile would
                # block an app that calls the API while it handles the webhook.
                reply, emitted = handler(body, *args), []
            else:
                with self.store.lock:
                    self.store.emitted = []
                    reply = handler(body, *args)
                    emitted = list(self.store.emitted)
            if emitted and body.get("wait", True) not in (False, "false", "0"):
                self.deliverer.wait_delivered(emitted)
            if isinstance(reply, dict) and "events" not in reply and request.method == "POST":
                reply["events"] = emitted
            return _json(reply)
        except StripeError as error:
            return _json(error.body(), error.status)
        except (ValueError, KeyError, TypeError) as error:
            return _json({"error": {"type": "invalid_request_error", "message": str(error)}}, 400)

    def _control_route(self, method: str, path: str) -> tuple[Callable[..., Any], list[str]]:
        parts = path.strip("/").split("/")[1:]
        table: list[tuple[str, list[str], Callable[..., Any]]] = [
            ("GET", ["health"], lambda b: {"ok": True, "now": self.store.now()}),
            (
                "GET",
                ["clock"],
                lambda b: {"now": self.store.now(), "offset": self.store.clock_offset},
            ),
            ("POST", ["advance"], self._advance),
            ("POST", ["settings"], self._settings),
            ("GET", ["settings"], lambda b: self._settings({})),
            ("POST", ["checkout_sessions", "*", "complete"], self._complete),
            ("POST", ["customers", "*", "card"], self._set_card),
            ("POST", ["invoices", "*", "pay"], self._pay),
            ("GET", ["webhook"], lambda b: self._webhook_state()),
            ("POST", ["webhook"], self._set_webhook),
            (
                "POST",
                ["webhook", "pause"],
                self._pause,
            ),
            (
                "POST",
                ["webhook", "resume"],
                self._resume,
            ),
            ("POST", ["webhook", "flush"], self._flush),
            ("POST", ["webhook", "wait"], self._wait),
            ("GET", ["events"], self._events),
            ("POST", ["events", "deliver"], self._deliver),
            ("POST", ["events", "*", "resend"], self._resend),
            ("GET", ["events", "*", "signed"], self._signed),
            ("GET", ["deliveries"], self._deliveries),
        ]
        for want_method, pattern, handler in table:
            if (
                want_method == method
                and len(pattern) == len(parts)
                and all(p == "*" or p == part for p, part in zip(pattern, parts, strict=True))
            ):
                return handler, [part for p, part in zip(pattern, parts, strict=True) if p == "*"]
        raise StripeError(404, f"No test-control endpoint {method} {path}")

    def _advance(self, body: Obj) -> Obj:
        store = self.store
        if "to_period_end" in body:
            sub = store.get(body["to_period_end"], "subscription", "subscription", "to_period_end")
            target = max(sub["cancel_at"] or sub["current_period_end"], store.now())
        elif "to_next_payment_attempt" in body:
            invoice = store.get(
                body["to_next_payment_attempt"], "invoice", "invoice", "to_next_payment_attempt"
            )
            if invoice["next_payment_attempt"] is None:
                raise invalid(
                    f"Invoice {invoice['id']} has no next payment attempt.",
                    "to_next_payment_attempt",
                )
            target = invoice["next_payment_attempt"]
        elif "to" in body:
            target = as_int(body["to"], "to")
        elif "seconds" in body:
            target = store.now() + as_int(body["seconds"], "seconds")
        else:
            raise invalid("Give seconds, to, to_period_end or to_next_payment_attempt.")
        if target < store.now():
            raise invalid("The test clock only moves forward.")
        billing.advance(store, target)
        return {"now": store.now(), "offset": store.clock_offset}

    def _settings(self, body: Obj) -> Obj:
        settings = self.store.settings
        if "dunning_final" in body:
            if body["dunning_final"] not in ("canceled", "unpaid"):
                raise invalid("dunning_final must be canceled or unpaid", "dunning_final")
            settings.dunning_final = body["dunning_final"]
        if "retry_days" in body:
            settings.retry_days = [int(day) for day in body["retry_days"]]
        if "webhook_retries" in body:
            settings.webhook_retries = int(body["webhook_retries"])
        return {
            "dunning_final": settings.dunning_final,
            "retry_days": settings.retry_days,
            "webhook_retries": settings.webhook_retries,
        }

    def _complete(self, body: Obj, session_id: str) -> Obj:
        session = self.store.get(session_id, "checkout.session", "checkout.session")
        api.complete_checkout(self.store, session, body.get("card", "success"))
        return self.store.render(session)

    def _set_card(self, body: Obj, customer_id: str) -> Obj:
        store = self.store
        customer = billing.customer_of(store, customer_id)
        outcome = body.get("outcome", "success")
        if outcome not in billing.OUTCOMES:
            raise invalid("outcome must be success, declined or requires_action", "outcome")
        pm_id = customer["invoice_settings"]["default_payment_method"]
        if pm_id is None:
            pm = billing.new_payment_method(
                store, "visa", billing.LAST4_BY_OUTCOME[outcome], outcome
            )
            billing.attach(store, pm, customer)
            customer["invoice_settings"]["default_payment_method"] = pm["id"]
            pm_id = pm["id"]
        store.card_outcomes[pm_id] = outcome
        # Subscriptions charge their own default card first; it fails or succeeds the same way.
        for sub in store.all("subscription"):
            if sub["customer"] == customer_id and sub["default_payment_method"]:
                store.card_outcomes[sub["default_payment_method"]] = outcome
        return {"customer": customer_id, "payment_method": pm_id, "outcome": outcome}

    def _pay(self, body: Obj, invoice_id: str) -> Obj:
        invoice = self.store.get(invoice_id, "invoice", "invoice")
        try:
            billing.pay_invoice(self.store, invoice, body.get("payment_method"))
            outcome = "success"
        except StripeError as error:
            if error.status != 402:
                raise
            outcome = "requires_action" if error.code == "authentication_required" else "declined"
        return {"outcome": outcome, "invoice": self.store.render(invoice)}

    def _webhook_state(self) -> Obj:
        return {
            "url": self.deliverer.url,
            "secret_set": bool(self.deliverer.secret),
            "paused": self.deliverer.paused,
            "pending": self.deliverer.pending(),
        }

    def _set_webhook(self, body: Obj) -> Obj:
        if "url" in body:
            self.deliverer.url = body["url"] or None
        if "secret" in body:
            self.deliverer.secret = body["secret"] or None
        if not self.deliverer.paused:
            self.deliverer.resume()
        return self._webhook_state()

    def _pause(self, body: Obj) -> Obj:
        self.deliverer.pause()
        return self._webhook_state()

    def _resume(self, body: Obj) -> Obj:
        self.deliverer.resume()
        return self._webhook_state()

    def _flush(self, body: Obj) -> Obj:
        if body.get("drop") in (True, "true", "1"):
            return {"dropped": self.deliverer.drop_pending(), "attempts": []}
        return {"attempts": [a.as_json() for a in self.deliverer.flush()]}

    def _wait(self, body: Obj) -> Obj:
        idle = self.deliverer.wait_idle(float(body.get("timeout", 30)))
        return {"idle": idle, **self._webhook_state()}

    def _events(self, body: Obj) -> Obj:
        events = [self.store.objects[event_id] for event_id in self.store.event_ids]
        if "type" in body:
            events = [e for e in events if e["type"] == body["type"]]
        return {
            "data": [
                {
                    "id": e["id"],
                    "type": e["type"],
                    "created": e["created"],
                    "object_id": e["data"]["object"].get("id"),
                }
                for e in events
            ]
        }

    def _deliver(self, body: Obj) -> Obj:
        ids = list(body.get("ids", []))
        with self.store.lock:
            for event_id in ids:
                self.store.get(event_id, "event", "event", "ids")
        return {"attempts": [a.as_json() for a in self.deliverer.deliver(ids, "deliver")]}

    def _resend(self, body: Obj, event_id: str) -> Obj:
        with self.store.lock:
            self.store.get(event_id, "event", "event")
        return {"attempts": [a.as_json() for a in self.deliverer.deliver([event_id], "resend")]}

    def _signed(self, body: Obj, event_id: str) -> Obj:
        self.store.get(event_id, "event", "event")
        secret = body.get("secret") or self.deliverer.secret
        if not secret:
            raise invalid("No webhook secret: pass ?secret=whsec_... or set one.", "secret")
        payload = self.store.event_payloads[event_id]
        timestamp = int(body["timestamp"]) if "timestamp" in body else int(time.time())
        return {"payload": payload, "signature": signature_header(payload, secret, timestamp)}

    def _deliveries(self, body: Obj) -> Obj:
        attempts = list(self.deliverer.attempts)
        if "event_id" in body:
            attempts = [a for a in attempts if a.event_id == body["event_id"]]
        if "type" in body:
            attempts = [a for a in attempts if a.event_type == body["type"]]
        return {"data": [a.as_json() for a in attempts]}

    # ---- pages ----------------------------------------------------------------------------

    async def checkout_page(self, request: Request) -> Response:
        session_id = request.path_params["id"]
        with self.store.lock:
            try:
                session = self.store.get(session_id, "checkout.session", "checkout.session")
            except StripeError as error:
                return HTMLResponse(_page("Checkout", f"<p>{html.escape(error.message)}</p>"), 404)
            return HTMLResponse(self._checkout_html(session, None))

    async def checkout_pay(self, request: Request) -> Response:
        session_id = request.path_params["id"]
        form = dict(parse_qsl((await request.body()).decode()))
        return await run_in_threadpool(self._checkout_pay, session_id, form.get("card", "success"))

    def _checkout_pay(self, session_id: str, card: str) -> Response:
        with self.store.lock:
            self.store.emitted = []
            try:
                session = self.store.get(session_id, "checkout.session", "checkout.session")
                api.complete_checkout(self.store, session, card)
            except StripeError as error:
                known = self.store.objects.get(session_id)
                if known is None:
                    return HTMLResponse(_page("Checkout", "<p>Unknown session.</p>"), 404)
                return HTMLResponse(self._checkout_html(known, error.message), error.status)
            target = (
                session["success_url"] or f"{self.store.base_url}/checkout/{session_id}/done"
            ).replace("{CHECKOUT_SESSION_ID}", session_id)
        return RedirectResponse(target, 303)

    def _checkout_html(self, session: Obj, error: str | None) -> str:
        rows = ""
        for price_id, qty in self.store.checkout_private[session["id"]]["lines"]:
            price = self.store.objects[price_id]
            rows += (
                f"<tr><td>{html.escape(billing.product_name(self.store, price))}</td><td>{qty}</td>"
                f"<td>{billing.money(price['unit_amount'] * qty, price['currency'])}"
                f"{' / ' + price['recurring']['interval'] if price['recurring'] else ''}</td></tr>"
            )
        if session["status"] != "open":
            return _page(
                "Checkout", f"<p id='status'>This checkout session is {session['status']}.</p>"
            )
        cancel = (
            f"<a id='cancel' href='{html.escape(session['cancel_url'])}'>Cancel</a>"
            if session["cancel_url"]
            else ""
        )
        message = f"<p id='error' role='alert'>{html.escape(error)}</p>" if error else ""
        action = "Pay and subscribe" if session["mode"] == "subscription" else "Save card"
        return _page(
            "Checkout",
            f"{message}<table id='items'>{rows}</table>"
            f"<form method='post' action='/checkout/{session['id']}/pay'>"
            "<label><input type='radio' name='card' value='success' checked> 4242 4242 4242 4242</label>"
            "<label><input type='radio' name='card' value='declined'> 4000 0000 0000 0002 (declined)</label>"
            f"<button id='pay' type='submit'>{action}</button></form>{cancel}",
        )

    async def portal_page(self, request: Request) -> Response:
        with self.store.lock:
            try:
                portal = self.store.get(
                    request.path_params["id"], "billing_portal.session", "billing_portal.session"
                )
            except StripeError as error:
                return HTMLResponse(_page("Billing portal", html.escape(error.message)), 404)
            customer = self.store.objects[portal["customer"]]
            subs = "".join(
                f"<li>{html.escape(s['id'])}: {s['status']}"
                f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}</li>"
                for s in self.store.all("subscription")
                if s["customer"] == customer["id"]
            )
            cards = "".join(
                f"<li>{pm['card']['brand']} •••• {pm['card']['last4']}</li>"
                for pm in self.store.all("payment_method")
                if pm["customer"] == customer["id"]
            )
            back = (
                f"<a id='return' href='{html.escape(portal['return_url'])}'>Return</a>"
                if portal["return_url"]
                else ""
            )
            return HTMLResponse(
                _page(
                    "Billing portal",
                    f"<p>{html.escape(customer['email'] or customer['id'])}</p>"
                    f"<ul id='subscriptions'>{subs}</ul><ul id='cards'>{cards}</ul>{back}",
                )
            )

    async def invoice_page(self, request: Request) -> Response:
        with self.store.lock:
            try:
                invoice = self.store.get(request.path_params["id"], "invoice", "invoice")
            except StripeError as error:
                return HTMLResponse(_page("Invoice", html.escape(error.message)), 404)
            rows = "".join(
                f"<tr><td>{html.escape(line['description'])}</td>"
                f"<td>{billing.money(line['amount'], line['currency'])}</td></tr>"
                for line in invoice["lines"]["data"]
            )
            return HTMLResponse(
                _page(
                    f"Invoice {invoice['number']}",
                    f"<p id='status'>{invoice['status']}</p><table>{rows}</table>"
                    f"<p>Amount due: {billing.money(invoice['amount_due'], invoice['currency'])}</p>",
                )
            )

    async def invoice_pdf(self, request: Request) -> Response:
        with self.store.lock:
            try:
                invoice = self.store.get(request.path_params["id"], "invoice", "invoice")
            except StripeError as error:
                return _json(error.body(), 404)
            text = f"Invoice {invoice['number']} {invoice['status']} {billing.money(invoice['total'], invoice['currency'])}"
        return Response(_pdf(text), media_type="application/pdf")


_DELIVERY_HANDLERS = {
    StripeApp._pause,
    StripeApp._resume,
    StripeApp._flush,
    StripeApp._wait,
    StripeApp._deliver,
    StripeApp._resend,
    StripeApp._deliveries,
}


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _pdf(text: str) -> bytes:
    """A one-page PDF with one line of text (enough for a download link to be real)."""
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def create_app(
    base_url: str, webhook_url: str | None = None, webhook_secret: str | None = None
) -> Starlette:
    store = Store(base_url)

    def payload_of(event_id: str) -> tuple[str, str]:
        with store.lock:
            return store.objects[event_id]["type"], store.event_payloads[event_id]

    deliverer = Deliverer(
        payload_of, lambda: store.settings.webhook_retries, webhook_url, webhook_secret
    )
    server = StripeApp(store, deliverer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        deliverer.stop()

    app = Starlette(
        routes=[
            Route("/v1/{path:path}", server.v1, methods=["GET", "POST", "DELETE"]),
            Route("/_test/{path:path}", server.control, methods=["GET", "POST"]),
            Route("/checkout/{id}", server.checkout_page, methods=["GET"]),
            Route("/checkout/{id}/pay", server.checkout_pay, methods=["POST"]),
            Route("/portal/{id}", server.portal_page, methods=["GET"]),
            Route("/invoices/{id}", server.invoice_page, methods=["GET"]),
            Route("/invoices/{id}/pdf", server.invoice_pdf, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.stripe = server
    return app
