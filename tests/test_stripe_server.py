"""The Stripe test server, driven through the official SDK against its real process.

A small HTTP receiver in the test plays our app's webhook endpoint: it verifies every delivery
with ``stripe.Webhook.construct_event`` and keeps the events it accepted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from tests.support.stripe_fixture import (
    WEBHOOK_SECRET,
    StripeControlError,
    StripeServer,
    running_stripe_server,
)

DAY = 86400


class Receiver:
    """A real webhook endpoint: signature checked on the raw body, events kept in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.refused = 0
        # When set, each event's object is read back through the API while the delivery waits
        # for our answer, as an app acting on the object's current state does.
        self.read_back: Any = None
        self.read: list[Any] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        body, self.headers.get("Stripe-Signature"), WEBHOOK_SECRET
                    )
                except stripe.SignatureVerificationError:
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.events.append(event)
                if receiver.read_back is not None and event.type.startswith(
                    "customer.subscription."
                ):
                    current = receiver.read_back.v1.subscriptions.retrieve(event.data.object.id)
                    with receiver.lock:
                        receiver.read.append(current)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, customer: str) -> list[Any]:
        """Events about one customer's objects, in arrival order."""
        with self.lock:
            return [e for e in self.events if _customer_of(e) == customer]

    def types(self, customer: str) -> list[str]:
        return [e.type for e in self.of(customer)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _customer_of(event: Any) -> str | None:
    obj = event.data.object.to_dict()
    if obj.get("object") == "customer":
        return str(obj["id"])
    return obj.get("customer")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def server(receiver: Receiver) -> Iterator[StripeServer]:
    with running_stripe_server(webhook_url=receiver.url) as server:
        yield server


@pytest.fixture(scope="module")
def catalog(server: StripeServer) -> dict[str, Any]:
    client: Any = server.client()
    prices = {}
    for tier, amount in (("pro", 999), ("enterprise", 2999)):
        product = client.v1.products.create(
            params={"name": tier.title(), "metadata": {"tier": tier}}
        )
        prices[tier] = client.v1.prices.create(
            params={
                "product": product.id,
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "lookup_key": f"t_{tier}_monthly",
            }
        )
    return prices


def subscribe(server: StripeServer, price_id: str, email: str) -> tuple[Any, Any]:
    """A customer subscribed through Checkout: (customer, subscription)."""
    client: Any = server.client()
    customer = client.v1.customers.create(params={"email": email})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": "http://app.test/billing/done?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://app.test/billing/cancelled",
            "client_reference_id": "user-1",
            "subscription_data": {"metadata": {"user_id": "user-1"}},
        }
    )
    server.control.complete_checkout(session.id)
    session = client.v1.checkout.sessions.retrieve(session.id)
    return customer, client.v1.subscriptions.retrieve(session.subscription)


def test_catalog_is_created_listed_by_lookup_key_and_idempotent(server: StripeServer) -> None:
    client: Any = server.client()
    product = client.v1.products.create(params={"name": "Catalog Pro", "metadata": {"tier": "pro"}})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 999,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "catalog_pro",
        }
    )
    assert (price.object, price.livemode, price.recurring.interval) == ("price", False, "month")
    found = client.v1.prices.list(
        params={"lookup_keys": ["catalog_pro"], "expand": ["data.product"]}
    )
    assert [p.id for p in found.data] == [price.id]
    assert found.data[0].product.metadata["tier"] == "pro"
    assert found.object == "list" and found.has_more is False and found.url == "/v1/prices"

    with pytest.raises(stripe.InvalidRequestError) as taken:
        client.v1.prices.create(
            params={
                "product": product.id,
                "unit_amount": 1099,
                "currency": "usd",
                "recurring": {"interval": "month"},
                "lookup_key": "catalog_pro",
            }
        )
    assert taken.value.param == "lookup_key"
    newer = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1099,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "catalog_pro",
            "transfer_lookup_key": True,
        }
    )
    assert client.v1.prices.retrieve(price.id).lookup_key is None
    client.v1.prices.update(price.id, params={"active": False})
    active = client.v1.prices.list(params={"product": product.id, "active": True})
    assert [p.id for p in active.data] == [newer.id]

    # The same Idempotency-Key gives the same object; other parameters with it are refused.
    options = {"idempotency_key": "catalog-product-1"}
    first = client.v1.products.create(params={"name": "Once"}, options=options)
    again = client.v1.products.create(params={"name": "Once"}, options=options)
    assert first.id == again.id
    with pytest.raises(stripe.IdempotencyError):
        client.v1.products.create(params={"name": "Twice"}, options=options)

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.products.create(params={"name": "X", "colour": "red"})
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "colour")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_live_nope", base_addresses={"api": server.url}).v1.customers.list()


def test_checkout_sends_signed_events_in_order(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer = client.v1.customers.create(params={"email": "checkout@example.com"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": catalog["pro"].id, "quantity": 1}],
            "success_url": "http://app.test/done?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://app.test/cancelled",
            "client_reference_id": "user-7",
            "subscription_data": {"metadata": {"user_id": "user-7"}},
            "metadata": {"tier": "pro"},
        }
    )
    assert session.url.startswith(f"{server.url}/checkout/") and session.status == "open"
    assert "Pay" in httpx.get(session.url).text

    # A declined card on the Checkout page creates nothing.
    with pytest.raises(StripeControlError) as declined:
        server.control.complete_checkout(session.id, card="declined")
    assert (declined.value.status, declined.value.body["error"]["code"]) == (402, "card_declined")

    server.control.complete_checkout(session.id)
    assert receiver.types(customer.id) == [
        "customer.created",
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
    ]
    completed = receiver.of(customer.id)[1].data.object
    assert (completed.client_reference_id, completed.metadata["tier"]) == ("user-7", "pro")
    assert completed.payment_status == "paid"
    delivered = server.control.deliveries(event_id=receiver.of(customer.id)[1].id)
    assert [d["status"] for d in delivered] == [200]

    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription.latest_invoice"]}
    )
    subscription = session.subscription
    assert subscription.status == "active" and subscription.metadata["user_id"] == "user-7"
    item = subscription["items"].data[0]
    assert item.price.id == catalog["pro"].id
    assert item.current_period_start == subscription.current_period_start
    assert 28 * DAY <= item.current_period_end - item.current_period_start <= 31 * DAY
    invoice = subscription.latest_invoice
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        999,
        "subscription_create",
    )
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert httpx.get(invoice.hosted_invoice_url).status_code == 200
    assert httpx.get(invoice.invoice_pdf).content.startswith(b"%PDF-")

    again = client.v1.invoices.retrieve(invoice.id, params={"expand": ["subscription"]})
    assert again.subscription.id == subscription.id
    customer = client.v1.customers.retrieve(
        customer.id, params={"expand": ["invoice_settings.default_payment_method"]}
    )
    card = customer.invoice_settings.default_payment_method
    assert (card.card.brand, card.card.last4, card.customer) == ("visa", "4242", customer.id)
    cards = client.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [pm.id for pm in cards.data] == [card.id]
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "http://app.test/account"}
    )
    assert httpx.get(portal.url).status_code == 200

    # The SDK's own objects for the stored events.
    listed = client.v1.events.list(params={"type": "invoice.*", "limit": 100})
    assert invoice.id in {e.data.object.id for e in listed.data}


def test_plan_change_preview_matches_the_invoice(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer, subscription = subscribe(server, catalog["pro"].id, "upgrade@example.com")
    item = subscription["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    server.control.advance(10 * DAY)
    at = server.control.now()
    fraction = (end - at) / (end - start)
    expected = round(2999 * fraction) - round(999 * fraction)

    change = {
        "items": [{"id": item.id, "price": catalog["enterprise"].id}],
        "proration_date": at,
        "proration_behavior": "always_invoice",
    }
    preview = client.v1.invoices.create_preview(
        params={"subscription": subscription.id, "subscription_details": change}
    )
    prorations = [
        line for line in preview.lines.data if line.parent.subscription_item_details.proration
    ]
    assert sorted(line.amount for line in prorations) == [
        -round(999 * fraction),
        round(2999 * fraction),
    ]
    assert preview.amount_due == expected
    # A preview saves nothing.
    assert (
        client.v1.subscriptions.retrieve(subscription.id)["items"].data[0].price.id
        == catalog["pro"].id
    )

    updated = client.v1.subscriptions.update(
        subscription.id, params={**change, "expand": ["latest_invoice"]}
    )
    assert updated["items"].data[0].price.id == catalog["enterprise"].id
    assert updated.current_period_end == end
    invoice = updated.latest_invoice
    assert (invoice.amount_due, invoice.status, invoice.billing_reason) == (
        expected,
        "paid",
        "subscription_update",
    )
    server.control.wait_webhooks()
    types = receiver.types(customer.id)
    tail = types[types.index("customer.subscription.updated") :]
    assert tail[:4] == [
        "customer.subscription.updated",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
    ]
    changed = receiver.of(customer.id)[types.index("customer.subscription.updated")].data
    assert changed.previous_attributes["items"].data[0].price.id == catalog["pro"].id

    # Downgrade with create_prorations: the credit waits for the renewal invoice.
    client.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": item.id, "price": catalog["pro"].id}],
            "proration_behavior": "create_prorations",
        },
    )
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert len(pending.data) == 2 and sum(i.amount for i in pending.data) < 0
    server.control.advance(to_period_end=subscription.id)
    renewed = client.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}
    )
    assert renewed.current_period_start == end and renewed.status == "active"
    renewal = renewed.latest_invoice
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.total == 999 + sum(i.amount for i in pending.data)
    assert renewal.lines.total_count == 3


def test_cancel_at_period_end_then_the_clock_ends_it(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer, subscription = subscribe(server, catalog["pro"].id, "leaving@example.com")
    updated = client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    assert updated.cancel_at_period_end and updated.cancel_at == updated.current_period_end
    preview_error = None
    try:
        client.v1.invoices.create_preview(params={"subscription": subscription.id})
    except stripe.InvalidRequestError as error:
        preview_error = error.code
    assert preview_error == "invoice_upcoming_none"
    server.control.advance(to_period_end=subscription.id)
    ended = client.v1.subscriptions.retrieve(subscription.id)
    assert (ended.status, ended.ended_at) == ("canceled", updated.current_period_end)
    assert receiver.types(customer.id)[-1] == "customer.subscription.deleted"
    invoices = client.v1.invoices.list(params={"customer": customer.id})
    assert len(invoices.data) == 1
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []
    assert (
        len(
            client.v1.subscriptions.list(
                params={"customer": customer.id, "status": "canceled"}
            ).data
        )
        == 1
    )


def test_payment_failure_goes_past_due_and_recovers_by_paying(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer, subscription = subscribe(server, catalog["pro"].id, "late@example.com")
    server.control.set_card(customer.id, "declined")
    server.control.advance(to_period_end=subscription.id)
    current = client.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}
    )
    invoice = current.latest_invoice
    assert (current.status, invoice.status, invoice.attempt_count) == ("past_due", "open", 1)
    assert invoice.next_payment_attempt == current.current_period_start + 3 * DAY
    types = receiver.types(customer.id)
    assert "invoice.payment_failed" in types
    assert receiver.of(customer.id)[-1].type == "customer.subscription.updated"
    assert receiver.of(customer.id)[-1].data.previous_attributes.status == "active"

    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(invoice.id)
    assert declined.value.code == "card_declined"

    server.control.set_card(customer.id, "success")
    paid = client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.amount_remaining) == ("paid", 0)
    assert client.v1.subscriptions.retrieve(subscription.id).status == "active"
    server.control.wait_webhooks()
    assert receiver.types(customer.id)[-4:] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "customer.subscription.updated",
    ]

    # A card that needs authentication asks for action instead.
    server.control.set_card(customer.id, "requires_action")
    server.control.advance(to_period_end=subscription.id)
    assert "invoice.payment_action_required" in receiver.types(customer.id)[-5:]
    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"


@pytest.mark.parametrize("final", ["canceled", "unpaid"])
def test_failed_retries_end_the_subscription(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any], final: str
) -> None:
    client: Any = server.client()
    server.control.settings(dunning_final=final)
    try:
        customer, subscription = subscribe(server, catalog["pro"].id, f"gone-{final}@example.com")
        server.control.set_card(customer.id, "declined")
        server.control.advance(to_period_end=subscription.id)
        invoice_id = client.v1.subscriptions.retrieve(subscription.id).latest_invoice
        for _retry in range(3):
            assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"
            server.control.advance(to_next_payment_attempt=invoice_id)
        invoice = client.v1.invoices.retrieve(invoice_id)
        assert (invoice.attempt_count, invoice.next_payment_attempt) == (4, None)
        ended = client.v1.subscriptions.retrieve(subscription.id)
        assert ended.status == final
        last = receiver.of(customer.id)[-1]
        if final == "canceled":
            assert last.type == "customer.subscription.deleted"
            assert ended.cancellation_details.reason == "payment_failed"
        else:
            assert (last.type, last.data.object.status) == (
                "customer.subscription.updated",
                "unpaid",
            )
        assert receiver.types(customer.id).count("invoice.payment_failed") == 4
    finally:
        server.control.settings(dunning_final="canceled")


def test_resend_duplicates_and_chosen_order(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    server.control.pause_webhooks()
    try:
        customer = client.v1.customers.create(params={"email": "order@example.com"})
        client.v1.customers.update(customer.id, params={"name": "Order"})
        assert receiver.of(customer.id) == []
        queued = server.control.webhook_state()["pending"]
        assert len(queued) == 2
        server.control.flush_webhooks(drop=True)
        attempts = server.control.deliver(list(reversed(queued)))
        assert [a["status"] for a in attempts] == [200, 200]
        assert receiver.types(customer.id) == ["customer.updated", "customer.created"]
    finally:
        server.control.resume_webhooks()
    server.control.resend(queued[0])
    assert [e.id for e in receiver.of(customer.id)].count(queued[0]) == 2


def test_forged_and_stale_signatures_are_refused(server: StripeServer, receiver: Receiver) -> None:
    client: Any = server.client()
    customer = client.v1.customers.create(params={"email": "forged@example.com"})
    event_id = server.control.events(type="customer.created")[-1]["id"]
    payload, header = server.control.signed(event_id)
    assert (
        stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET).data.object.id
        == customer.id
    )
    assert json.loads(payload)["id"] == event_id

    forged_payload, forged = server.control.signed(event_id, secret="whsec_attacker")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(forged_payload, forged, WEBHOOK_SECRET)
    tampered = payload.replace("forged@example.com", "other@example.com")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, header, WEBHOOK_SECRET)
    stale_payload, stale = server.control.signed(
        event_id, timestamp=server.control.now() - 3600 * 24 * 400
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale_payload, stale, WEBHOOK_SECRET)

    # Delivered with the wrong secret, the receiver refuses it and the attempt records its 400.
    refused_before = receiver.refused
    server.control.set_webhook(secret="whsec_wrong")
    try:
        attempts = server.control.resend(event_id)
    finally:
        server.control.set_webhook(secret=WEBHOOK_SECRET)
    assert [a["status"] for a in attempts] == [400]
    assert receiver.refused == refused_before + 1


def test_setup_checkout_page_and_payment_methods(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer, subscription = subscribe(server, catalog["pro"].id, "cards@example.com")
    first_card = client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer.id,
            "payment_method_types": ["card"],
            "success_url": "http://app.test/cards?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://app.test/cards",
        }
    )
    # The payer's browser: the page, then its form.
    page = httpx.get(session.url)
    assert "Save card" in page.text
    paid = httpx.post(f"{server.url}/checkout/{session.id}/pay", data={"card": "success"})
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://app.test/cards?session={session.id}"
    session = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["setup_intent"]})
    assert (session.status, session.payment_status) == ("complete", "no_payment_required")
    added = session.setup_intent.payment_method
    server.control.wait_webhooks()
    assert receiver.types(customer.id)[-3:] == [
        "checkout.session.completed",
        "payment_method.attached",
        "setup_intent.succeeded",
    ]
    # Saving a card does not make it the default (as on Stripe).
    assert (
        client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
        == first_card
    )

    listed = client.v1.customers.payment_methods.list(customer.id, params={"limit": 100})
    assert {pm.id for pm in listed.data} == {first_card, added}
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": added}}
    )
    detached = client.v1.payment_methods.detach(first_card)
    assert detached.customer is None
    assert client.v1.subscriptions.retrieve(subscription.id).default_payment_method is None
    spare = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer.id})
    assert (spare.card.brand, spare.card.last4, spare.customer) == (
        "mastercard",
        "4444",
        customer.id,
    )
    assert client.v1.payment_methods.retrieve(spare.id).card.exp_year > 2000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.update(
            customer.id, params={"invoice_settings": {"default_payment_method": first_card}}
        )

    # The renewal charges the new default card.
    server.control.advance(to_period_end=subscription.id)
    renewed = client.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice.payment_intent"]}
    )
    assert renewed.latest_invoice.payment_intent.payment_method == added
    assert renewed.latest_invoice.period_end == renewed.current_period_start

    cancelled = client.v1.subscriptions.cancel(subscription.id)
    assert cancelled.status == "canceled"
    server.control.wait_webhooks()
    assert receiver.types(customer.id)[-1] == "customer.subscription.deleted"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(subscription.id)


def test_concurrent_requests_with_one_idempotency_key_make_one_customer(
    server: StripeServer,
) -> None:
    client: Any = server.client()
    results: list[str] = []

    def create() -> None:
        customer = client.v1.customers.create(
            params={"email": "race@example.com"}, options={"idempotency_key": "race-customer"}
        )
        results.append(customer.id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert len(client.v1.customers.list(params={"email": "race@example.com"}).data) == 1


def test_checkout_sessions_expire_and_authenticated_cards_ask_again_later(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    client: Any = server.client()
    customer = client.v1.customers.create(params={"email": "sca@example.com"})
    params = {
        "mode": "subscription",
        "customer": customer.id,
        "line_items": [{"price": catalog["pro"].id, "quantity": 1}],
        "success_url": "http://app.test/done",
    }
    abandoned = client.v1.checkout.sessions.create(params=params)
    authenticated = client.v1.checkout.sessions.create(params=params)
    # The payer authenticates on the page, so the first payment succeeds...
    server.control.complete_checkout(authenticated.id, card="requires_action")
    subscription_id = client.v1.checkout.sessions.retrieve(authenticated.id).subscription
    assert client.v1.subscriptions.retrieve(subscription_id).status == "active"
    server.control.advance(DAY + 1)
    expired = client.v1.checkout.sessions.retrieve(abandoned.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert "checkout.session.expired" in receiver.types(customer.id)
    with pytest.raises(StripeControlError):
        server.control.complete_checkout(abandoned.id)
    # ...and the renewal, charged with nobody there, needs the payer's action.
    server.control.advance(to_period_end=subscription_id)
    renewal = client.v1.invoices.retrieve(
        client.v1.subscriptions.retrieve(subscription_id).latest_invoice
    )
    assert renewal.status == "open"
    assert receiver.types(customer.id)[-3:] == [
        "invoice.payment_action_required",
        "payment_intent.requires_action",
        "customer.subscription.updated",
    ]


def test_the_receiver_may_call_the_api_while_a_delivery_waits(
    server: StripeServer, receiver: Receiver, catalog: dict[str, Any]
) -> None:
    receiver.read_back = server.client()
    try:
        _customer, subscription = subscribe(server, catalog["pro"].id, "reader@example.com")
        server.control.advance(to_period_end=subscription.id)
        # Delivered inside the flush request itself.
        server.control.pause_webhooks()
        try:
            server.client().v1.subscriptions.update(
                subscription.id, params={"metadata": {"n": "1"}}
            )
            flushed = server.control.flush_webhooks()["attempts"]
        finally:
            server.control.resume_webhooks()
        assert [a["status"] for a in flushed] == [200]
    finally:
        receiver.read_back = None
    read = [s for s in receiver.read if s.id == subscription.id]
    assert [s.status for s in read] == ["active", "active", "active"]
    assert read[1].current_period_start == subscription.current_period_end
    assert read[2].metadata["n"] == "1"
