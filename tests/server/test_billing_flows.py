"""Billing end to end: the official stripe SDK against the local Stripe-compatible server
(tests/support/stripe_server), the API as a real uvicorn server receiving its signed
webhooks over HTTP, and a real ``notefall worker`` process processing them.

Each test: a free user checks out, Stripe's webhooks land, the worker re-reads Stripe and
sets the tier; then plan changes with proration, a downgrade at period end, dunning (past
due then recovered, or canceled to Free with the projects kept), webhooks duplicated and out
of order, cancel/resume, payment methods, account deletion, and the catalog sync.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from notefall.common.tiers import TIERS, Tier
from notefall.server.billing import catalog, metrics
from notefall.server.billing.models import BillingCustomer, WebhookEvent
from notefall.server.kit.app import create_app
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.support.render_farm import Worker, worker_env
from tests.support.stripe_fixture import StripeServer, running_stripe_server

from .conftest import body_of, make_settings, outbox_messages, signed_in_headers
from .test_projects import PRELUDE

PASSWORD = "falling notes over a grand piano"
# Polling bounds (not speed assertions): how long a webhook may take to be processed.
SETTLE_SECONDS = 30.0


@dataclass
class Stack:
    settings: Settings
    stripe: StripeServer
    http: httpx.Client
    worker: Worker

    @property
    def control(self) -> Any:
        return self.stripe.control

    def events_unsettled(self) -> int:
        database = Database(self.settings.database_url)
        try:
            with transaction_scope(database) as session:
                return int(
                    session.scalar(
                        select(func.count())
                        .select_from(WebhookEvent)
                        .where(WebhookEvent.status == "pending")
                    )
                    or 0
                )
        finally:
            database.dispose()

    def settle(self) -> None:
        """Wait until Stripe delivered every event and the worker processed every one."""
        self.control.wait_webhooks()
        wait_for(lambda: self.events_unsettled() == 0, self, "events still pending")

    def billing(self, headers: dict[str, str]) -> dict[str, Any]:
        response = self.http.get("/api/v1/billing", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
        return self.http.post(f"/api/v1/billing{path}", json=body, headers=headers)

    def counters(self) -> dict[str, float]:
        return metrics.read(redis.Redis.from_url(str(self.settings.redis_url))).counters

    def scraped(self) -> dict[str, float]:
        """The billing samples Prometheus scrapes from ``/metrics``, by sample name."""
        response = self.http.get("/metrics")
        assert response.status_code == 200, response.text
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name.startswith("notefall_billing_") and not sample.labels
        }

    def rows(self, model: Any) -> list[Any]:
        database = Database(self.settings.database_url)
        try:
            with transaction_scope(database) as session:
                return list(session.scalars(select(model)))
        finally:
            database.dispose()


def wait_for(check: Callable[[], bool], stack: Stack, what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} after {SETTLE_SECONDS} s; worker log:\n{stack.worker.log()[-4000:]}"
            )
        time.sleep(0.1)


def _stripe_env(settings: Settings) -> dict[str, str]:
    assert settings.stripe_secret_key and settings.stripe_webhook_secret
    return worker_env(
        settings,
        NOTEFALL_STRIPE_SECRET_KEY=settings.stripe_secret_key.get_secret_value(),
        NOTEFALL_STRIPE_WEBHOOK_SECRET=settings.stripe_webhook_secret.get_secret_value(),
        NOTEFALL_STRIPE_API_BASE=str(settings.stripe_api_base),
        NOTEFALL_STRIPE_PRICE_PRO=str(settings.stripe_price_pro),
        NOTEFALL_STRIPE_PRICE_ENTERPRISE=str(settings.stripe_price_enterprise),
    )


@pytest.fixture
def stack(tmp_path: Path, migrated_url: str, redis_url: str) -> Iterator[Stack]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    api_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    with running_stripe_server(webhook_url=f"{api_url}/api/v1/billing/webhook") as server:
        stripe_settings = {
            "stripe_secret_key": server.api_key,
            "stripe_webhook_secret": server.webhook_secret,
            "stripe_api_base": server.url,
        }
        base = make_settings(
            tmp_path / "data",
            migrated_url,
            redis_url=redis_url,
            rate_limit_scale=1000.0,
            **stripe_settings,
        )
        prices = {line.tier: line.price_id for line in catalog.sync_catalog(base)}
        settings = make_settings(
            tmp_path / "data",
            migrated_url,
            redis_url=redis_url,
            rate_limit_scale=1000.0,
            stripe_price_pro=prices[Tier.PRO],
            stripe_price_enterprise=prices[Tier.ENTERPRISE],
            **stripe_settings,
        )
        api = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
        thread = threading.Thread(target=api.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        worker = Worker(settings, tmp_path, env=_stripe_env(settings))
        http = httpx.Client(base_url=api_url, timeout=30.0)
        try:
            deadline = time.monotonic() + 20
            while not api.started:
                assert time.monotonic() < deadline, "the API did not start"
                time.sleep(0.05)
            yield Stack(settings, server, http, worker)
        finally:
            http.close()
            api.should_exit = True
            thread.join(15)
            worker.terminate()
            listener.close()


def _session_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def subscribe(stack: Stack, headers: dict[str, str], tier: str = "pro") -> dict[str, Any]:
    """Checkout for ``tier``, paid with a good card; returns GET /billing once it shows."""
    response = stack.post("/checkout", headers, {"tier": tier})
    assert response.status_code == 200, response.text
    stack.control.complete_checkout(_session_id(response.json()["url"]))
    stack.settle()
    body = stack.billing(headers)
    assert body["tier"] == tier, body
    return body


def _user(stack: Stack, email: str) -> dict[str, str]:
    return signed_in_headers(stack.http, stack.settings, email)  # type: ignore[arg-type]


def _customer_id(stack: Stack) -> str:
    (row,) = stack.rows(BillingCustomer)
    return row.stripe_customer_id


def _subscription(stack: Stack) -> dict[str, Any]:
    client = stack.stripe.client()
    listing = client.v1.subscriptions.list(
        params={"customer": _customer_id(stack), "status": "all"}
    )
    (subscription,) = listing.data
    return subscription.to_dict()


def test_checkout_makes_the_user_pro_when_the_webhook_lands_not_on_the_redirect(stack: Stack):
    ada = _user(stack, "ada@example.com")
    assert stack.billing(ada)["tier"] == "free"
    response = stack.post("/checkout", ada, {"tier": "pro"})
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    session = stack.stripe.client().v1.checkout.sessions.retrieve(_session_id(url)).to_dict()
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == session["metadata"]["user_id"]
    assert session["success_url"] == (
        "http://notefall.test/billing/return?session_id={CHECKOUT_SESSION_ID}"
    )
    # Paid, but Stripe's webhooks are held back: the redirect alone changes nothing.
    stack.control.pause_webhooks()
    stack.control.complete_checkout(_session_id(url))
    assert stack.billing(ada)["tier"] == "free"
    stack.control.resume_webhooks()
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "pro"
    assert body["subscription"]["status"] == "active"
    assert body["subscription"]["cancel_at_period_end"] is False
    assert body["subscription"]["current_period_end"] is not None
    assert body["banner"] is None
    assert body["payment_method"]["last4"] and body["payment_method"]["default"] is True
    # One customer, reused: a second checkout is refused and points to change-plan.
    again = stack.post("/checkout", ada, {"tier": "enterprise"})
    assert again.status_code == 409 and again.json()["code"] == "subscription_exists"
    assert "change-plan" in again.json()["detail"]
    assert len(stack.rows(BillingCustomer)) == 1
    invoices = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"]
    assert [(i["status"], i["amount_paid"]) for i in invoices] == [("paid", 999)]
    assert invoices[0]["hosted_invoice_url"] and invoices[0]["invoice_pdf"]
    counters = stack.counters()
    assert counters["checkouts_started"] == 2 - 1  # the refused one started nothing
    assert counters["checkouts_completed"] == 1 and counters["conversions"] == 1
    assert counters["payments_succeeded"] == 1 and counters["upgrades"] == 1
    scraped = stack.scraped()
    assert scraped["notefall_billing_checkouts_started_total"] == 1
    assert scraped["notefall_billing_checkouts_completed_total"] == 1
    assert scraped["notefall_billing_conversions_total"] == 1
    assert scraped["notefall_billing_payment_success_ratio"] == 1.0
    assert scraped["notefall_billing_webhook_lag_seconds_count"] >= 1
    activity = stack.http.get("/api/v1/me/activity", headers=ada).json()["items"]
    assert any(e["kind"] == "billing_changed" and e["detail"]["tier"] == "pro" for e in activity)


def test_pro_to_enterprise_now_with_a_proration_preview(stack: Stack):
    ada = _user(stack, "ada@example.com")
    subscribe(stack, ada, "pro")
    stack.control.advance(15 * 86400)  # half-way through the month
    stack.settle()
    preview = stack.post("/change-plan", ada, {"tier": "enterprise"})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["confirmed"] is False and body["when"] == "now"
    # About half of the difference between $29.99 and $9.99.
    assert 500 < body["amount_due_now"] < 1500, body
    assert body["next_invoice_amount"] == 2999
    assert stack.billing(ada)["tier"] == "pro"  # a preview changes nothing
    # The user reads the preview for a while: prorated now, the charge would be smaller.
    stack.control.advance(3 * 86400)
    later = stack.post("/change-plan", ada, {"tier": "enterprise"}).json()
    assert later["amount_due_now"] < body["amount_due_now"]
    stale = stack.post(
        "/change-plan",
        ada,
        {"tier": "enterprise", "confirm": True, "proration_date": int(time.time()) - 7200},
    )
    assert stale.status_code == 409 and stale.json()["code"] == "stale_preview"
    done = stack.post(
        "/change-plan",
        ada,
        {"tier": "enterprise", "confirm": True, "proration_date": body["proration_date"]},
    )
    assert done.status_code == 200, done.text
    stack.settle()
    assert stack.billing(ada)["tier"] == "enterprise"
    invoices = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"]
    assert len(invoices) == 2 and invoices[0]["status"] == "paid"
    # Exactly what the first preview said, not what a confirmation three days later costs.
    assert invoices[0]["amount_paid"] == body["amount_due_now"]
    assert stack.counters()["upgrades"] == 2
    same = stack.post("/change-plan", ada, {"tier": "enterprise"})
    assert same.status_code == 409 and same.json()["code"] == "same_plan"


def test_downgrade_at_period_end_keeps_enterprise_until_the_period_renews(stack: Stack):
    ada = _user(stack, "ada@example.com")
    subscribe(stack, ada, "enterprise")
    preview = stack.post("/change-plan", ada, {"tier": "pro"}).json()
    assert preview["when"] == "period_end" and preview["amount_due_now"] == 0
    assert preview["next_invoice_amount"] == 999
    done = stack.post("/change-plan", ada, {"tier": "pro", "confirm": True})
    assert done.status_code == 200, done.text
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "enterprise"
    assert body["subscription"]["scheduled_change"]["tier"] == "pro"
    subscription = _subscription(stack)
    stack.control.advance(to_period_end=subscription["id"])
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "pro" and body["subscription"]["scheduled_change"] is None
    invoices = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"]
    assert invoices[0]["amount_paid"] == 999  # the renewal bills the new price
    assert stack.counters()["downgrades"] == 1


def test_a_failed_payment_keeps_pro_as_past_due_mails_and_recovers(stack: Stack):
    ada = _user(stack, "ada@example.com")
    subscribe(stack, ada, "pro")
    customer = _customer_id(stack)
    stack.control.set_card(customer, "declined")
    stack.control.advance(to_period_end=_subscription(stack)["id"])
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "pro" and body["subscription"]["status"] == "past_due"
    assert body["banner"]["kind"] == "past_due"
    assert body["banner"]["action_url"] == "http://notefall.test/billing"
    mail = [m for m in outbox_messages(stack.settings) if "payment failed" in m["Subject"]]
    assert len(mail) == 1 and "http://notefall.test/billing" in body_of(mail[0])
    counters = stack.counters()
    assert counters["payments_failed"] == 1 and counters["payments_succeeded"] == 1
    # The card is fixed and the open invoice paid: active again, the banner gone.
    open_invoice = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"][0]
    assert open_invoice["status"] == "open"
    stack.control.set_card(customer, "success")
    assert stack.control.pay_invoice(open_invoice["id"])["outcome"] == "success"
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "pro" and body["subscription"]["status"] == "active"
    assert body["banner"] is None
    assert stack.counters()["payments_succeeded"] == 2
    scraped = stack.scraped()
    assert scraped["notefall_billing_payments_failed_total"] == 1
    assert scraped["notefall_billing_payment_success_ratio"] == 2 / 3


def test_payment_failures_until_stripe_gives_up_drop_to_free_and_keep_the_projects(stack: Stack):
    ada = _user(stack, "ada@example.com")
    project = stack.http.post("/api/v1/projects", json={"name": "Nocturne"}, headers=ada)
    assert project.status_code == 201
    project_id = project.json()["id"]
    midi = {"file": ("song.mid", PRELUDE.read_bytes(), "audio/midi")}
    uploaded = stack.http.put(f"/api/v1/projects/{project_id}/midi", files=midi, headers=ada)
    assert uploaded.status_code == 200, uploaded.text
    subscribe(stack, ada, "pro")
    stack.control.set_card(_customer_id(stack), "declined")
    stack.control.advance(to_period_end=_subscription(stack)["id"])
    stack.settle()
    for _ in range(3):  # Stripe's retries, then it cancels
        invoice = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"][0]
        if stack.billing(ada)["subscription"]["status"] == "canceled":
            break
        stack.control.advance(to_next_payment_attempt=invoice["id"])
        stack.settle()
    body = stack.billing(ada)
    assert body["subscription"]["status"] == "canceled"
    assert body["tier"] == "free"
    projects = stack.http.get("/api/v1/projects", headers=ada).json()
    assert [p["name"] for p in projects["items"]] == ["Nocturne"]
    assert projects["items"][0]["song"]["note_count"] > 0  # its MIDI is still there
    # Free's limits hold from now on: a 1080p render is refused at submit.
    render = stack.http.post(
        "/api/v1/renders",
        json={"project_id": project_id, "settings": {"resolution": "1080p"}},
        headers=ada,
    )
    assert render.status_code in (403, 409, 422), render.text
    assert render.json()["code"] == "resolution_not_in_plan"
    counters = stack.counters()
    assert counters["cancellations"] == 1 and counters["downgrades"] == 1
    assert counters["payments_failed"] >= 2


def test_duplicate_and_reordered_webhooks_act_once_on_the_current_state(stack: Stack):
    ada = _user(stack, "ada@example.com")
    stack.control.pause_webhooks()
    response = stack.post("/checkout", ada, {"tier": "pro"})
    stack.control.complete_checkout(_session_id(response.json()["url"]), wait=False)
    events = stack.control.events()
    stack.control.flush_webhooks(drop=True)
    stack.control.resume_webhooks()
    # Newest first, each twice.
    ids = [e["id"] for e in reversed(events)]
    stack.control.deliver(ids)
    stack.control.deliver(ids)
    stack.settle()
    assert stack.billing(ada)["tier"] == "pro"
    stored = stack.rows(WebhookEvent)
    assert sorted(r.event_id for r in stored) == sorted(ids)  # once each
    assert stack.counters()["conversions"] == 1 and stack.counters()["upgrades"] == 1
    # A failure reported after the recovery (out of order): the state stays active, no mail.
    customer = _customer_id(stack)
    stack.control.set_card(customer, "declined")
    stack.control.pause_webhooks()
    stack.control.advance(to_period_end=_subscription(stack)["id"], wait=False)
    failed = stack.http.get("/api/v1/billing/invoices", headers=ada).json()["items"]
    stack.control.set_card(customer, "success")
    client = stack.stripe.client()
    (open_invoice,) = client.v1.invoices.list(params={"customer": customer, "status": "open"}).data
    stack.control.pay_invoice(open_invoice.id)
    later = [e["id"] for e in stack.control.events() if e["id"] not in ids]
    stack.control.flush_webhooks(drop=True)
    stack.control.resume_webhooks()
    stack.control.deliver(list(reversed(later)))
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "pro" and body["subscription"]["status"] == "active"
    assert body["banner"] is None
    assert not [m for m in outbox_messages(stack.settings) if "payment failed" in m["Subject"]]
    assert failed is not None


def test_a_webhook_signed_with_another_secret_is_refused(stack: Stack):
    ada = _user(stack, "ada@example.com")
    stack.control.pause_webhooks()
    response = stack.post("/checkout", ada, {"tier": "pro"})
    stack.control.complete_checkout(_session_id(response.json()["url"]), wait=False)
    event = stack.control.events("checkout.session.completed")[0]
    payload, signature = stack.control.signed(event["id"], secret="whsec_forger")
    forged = stack.http.post(
        "/api/v1/billing/webhook",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert forged.status_code == 400 and forged.json()["code"] == "invalid_webhook"
    payload, signature = stack.control.signed(event["id"], timestamp=int(time.time()) - 3600)
    stale = stack.http.post(
        "/api/v1/billing/webhook",
        content=payload,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )
    assert stale.status_code == 400
    # (The catalog's product and price events, stored as ignored, are all there is.)
    assert {r.type.split(".")[0] for r in stack.rows(WebhookEvent)} <= {"product", "price"}
    assert stack.billing(ada)["tier"] == "free"


def test_cancel_and_resume_then_cancel_until_the_period_ends(stack: Stack):
    ada = _user(stack, "ada@example.com")
    subscribe(stack, ada, "pro")
    cancelled = stack.post("/cancel", ada)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["subscription"]["cancel_at_period_end"] is True
    assert cancelled.json()["tier"] == "pro"
    resumed = stack.post("/resume", ada)
    assert (
        resumed.status_code == 200
        and resumed.json()["subscription"]["cancel_at_period_end"] is False
    )
    again = stack.post("/resume", ada)
    assert again.status_code == 409 and again.json()["code"] == "subscription_state"
    stack.post("/cancel", ada)
    stack.settle()
    assert stack.billing(ada)["tier"] == "pro"
    stack.control.advance(to_period_end=_subscription(stack)["id"])
    stack.settle()
    body = stack.billing(ada)
    assert body["tier"] == "free" and body["subscription"]["status"] == "canceled"
    assert stack.counters()["cancellations"] == 1
    # With no subscription left, a new checkout is allowed again.
    assert stack.post("/checkout", ada, {"tier": "pro"}).status_code == 200


def test_payment_methods_add_list_default_and_remove(stack: Stack):
    ada = _user(stack, "ada@example.com")
    assert stack.http.get("/api/v1/billing/payment-methods", headers=ada).json() == {"items": []}
    subscribe(stack, ada, "pro")
    (first,) = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    assert first["default"] is True
    added = stack.post("/payment-methods", ada)
    assert added.status_code == 200, added.text
    stack.control.complete_checkout(_session_id(added.json()["url"]))
    stack.settle()
    methods = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    assert len(methods) == 2
    second = next(m for m in methods if m["id"] != first["id"])
    refused = stack.http.delete(f"/api/v1/billing/payment-methods/{first['id']}", headers=ada)
    assert refused.status_code == 409 and refused.json()["code"] == "payment_method_in_use"
    made = stack.post(f"/payment-methods/{second['id']}/default", ada)
    assert made.status_code == 200
    assert {m["id"]: m["default"] for m in made.json()["items"]} == {
        first["id"]: False,
        second["id"]: True,
    }
    removed = stack.http.delete(f"/api/v1/billing/payment-methods/{first['id']}", headers=ada)
    assert removed.status_code == 204
    methods = stack.http.get("/api/v1/billing/payment-methods", headers=ada).json()["items"]
    assert [m["id"] for m in methods] == [second["id"]]
    other = _user(stack, "bob@example.com")
    stranger = stack.http.delete(f"/api/v1/billing/payment-methods/{second['id']}", headers=other)
    assert stranger.status_code == 404
    stranger = stack.post(f"/payment-methods/{second['id']}/default", other)
    assert stranger.status_code == 404 and stranger.json()["code"] == "not_found"
    portal = stack.post("/portal", ada)
    assert portal.status_code == 200 and portal.json()["url"].startswith(stack.stripe.url)
    assert stack.post("/portal", other).json()["code"] == "no_billing_account"


def test_account_deletion_cancels_the_subscription_in_stripe(stack: Stack):
    ada = _user(stack, "ada@example.com")
    subscribe(stack, ada, "pro")
    subscription_id = _subscription(stack)["id"]
    response = stack.http.request("DELETE", "/api/v1/me", json={"password": PASSWORD}, headers=ada)
    assert response.status_code == 204, response.text
    client = stack.stripe.client()
    wait_for(
        lambda: client.v1.subscriptions.retrieve(subscription_id).status == "canceled",
        stack,
        "the subscription was not cancelled in Stripe",
    )
    stack.settle()


@pytest.fixture
def stripe_only(tmp_path: Path) -> Iterator[tuple[StripeServer, Settings]]:
    """The Stripe test server and settings for it: the catalog needs no database."""
    with running_stripe_server() as server:
        yield (
            server,
            make_settings(
                tmp_path / "data",
                f"sqlite:///{tmp_path / 'unused.db'}",
                stripe_secret_key=server.api_key,
                stripe_webhook_secret=server.webhook_secret,
                stripe_api_base=server.url,
            ),
        )


def test_sync_catalog_is_idempotent_and_a_new_amount_moves_the_lookup_key(
    stripe_only: tuple[StripeServer, Settings], monkeypatch: pytest.MonkeyPatch
):
    server, settings = stripe_only
    first = catalog.sync_catalog(settings)
    assert [(line.product, line.price) for line in first] == [("created", "created")] * 2
    again = catalog.sync_catalog(settings)
    assert [(line.product, line.price) for line in again] == [("unchanged", "unchanged")] * 2
    assert [line.price_id for line in again] == [line.price_id for line in first]
    dearer = dict(TIERS)
    dearer[Tier.PRO] = dataclasses.replace(TIERS[Tier.PRO], monthly_price_cents=1299)
    monkeypatch.setattr(catalog, "TIERS", dearer)
    changed = catalog.sync_catalog(settings)
    assert changed[0].price == "created" and changed[0].price_id != again[0].price_id
    assert changed[1].price == "unchanged"
    client = server.client()
    old = client.v1.prices.retrieve(again[0].price_id).to_dict()
    new = client.v1.prices.retrieve(changed[0].price_id).to_dict()
    assert old["unit_amount"] == 999 and old.get("lookup_key") in (None, "")
    assert new["unit_amount"] == 1299 and new["lookup_key"] == "notefall_pro_monthly"
    assert new["metadata"]["notefall_tier"] == "pro"


def test_events_are_processed_exactly_once_by_concurrent_workers(stack: Stack, tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    from notefall.server.billing.webhooks import process_event
    from notefall.server.kit.mail import mailer_for
    from notefall.server.kit.models import utcnow

    stack.worker.terminate()  # no worker: the events wait in the database
    ada = _user(stack, "ada@example.com")
    response = stack.post("/checkout", ada, {"tier": "pro"})
    stack.control.complete_checkout(_session_id(response.json()["url"]))
    pending = [r.id for r in stack.rows(WebhookEvent) if r.status == "pending"]
    assert len(pending) >= 4
    database = Database(stack.settings.database_url)
    client = redis.Redis.from_url(str(stack.settings.redis_url))

    def run(event_id: Any) -> str:
        return process_event(
            database,
            stack.settings,
            event_id,
            utcnow,
            mailer=mailer_for(stack.settings),
            redis_client=client,
        )

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(run, [e for e in pending for _ in range(4)]))
    finally:
        database.dispose()
    assert outcomes.count("processed") == len(pending)
    assert outcomes.count("skipped") == 3 * len(pending)
    assert stack.billing(ada)["tier"] == "pro"
    counters = stack.counters()
    assert counters["conversions"] == 1 and counters["checkouts_completed"] == 1
    assert counters["payments_succeeded"] == 1
    assert metrics.read(client).lag_count == len(pending)


def test_the_reconciler_recovers_events_whose_messages_were_lost(stack: Stack):
    """Events stored without a message (the API died between its commit and Redis, or
    Redis lost the message): nothing happens until the reconciler sends them again."""
    import json
    from datetime import timedelta

    from notefall.server.billing.tasks import reconcile
    from notefall.server.billing.webhooks import store
    from notefall.server.kit.models import utcnow

    ada = _user(stack, "ada@example.com")
    stack.control.pause_webhooks()
    response = stack.post("/checkout", ada, {"tier": "pro"})
    stack.control.complete_checkout(_session_id(response.json()["url"]), wait=False)
    stack.control.flush_webhooks(drop=True)  # Stripe's deliveries never reach us...
    database = Database(stack.settings.database_url)
    try:
        for event in stack.control.events():
            payload, _signature = stack.control.signed(event["id"])
            with transaction_scope(database) as session:  # ...but the rows were stored
                store(session, json.loads(payload), utcnow())
    finally:
        database.dispose()
    assert stack.events_unsettled() >= 4 and stack.billing(ada)["tier"] == "free"
    assert reconcile(stack.settings, utcnow()) == 0  # too young: a message may still come
    assert reconcile(stack.settings, utcnow() + timedelta(minutes=2)) >= 4
    stack.settle()
    assert stack.billing(ada)["tier"] == "pro"


def test_sync_catalog_command_prints_the_settings(stripe_only: tuple[StripeServer, Settings]):
    import os
    import subprocess
    import sys

    server, _settings = stripe_only
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEFALL_")}
    env.update(
        NOTEFALL_STRIPE_SECRET_KEY=server.api_key,
        NOTEFALL_STRIPE_API_BASE=server.url,
        NOTEFALL_ENVIRONMENT="test",
    )
    command = [sys.executable, "-m", "notefall.cli", "billing", "sync-catalog"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    prices = [p.to_dict() for p in server.client().v1.prices.list(params={"limit": 10}).data]
    pro = next(p for p in prices if p.get("lookup_key") == "notefall_pro_monthly")
    assert f"NOTEFALL_STRIPE_PRICE_PRO={pro['id']}" in done.stdout
    assert "pro: product notefall_pro created" in done.stdout
    del env["NOTEFALL_STRIPE_SECRET_KEY"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "NOTEFALL_STRIPE_SECRET_KEY" in refused.stderr
