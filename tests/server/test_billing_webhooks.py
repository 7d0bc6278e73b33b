"""Billing's webhook door and its bookkeeping, without Stripe: signatures checked on the raw
body (forged, missing, stale and tampered ones refused with nothing stored), each event
stored once under (source, id), the entitlement rule, the deletion hook marking the
subscription for cancellation, the reconciler finding lost messages, and the counters."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from notefall.server.accounts.models import User
from notefall.server.billing import metrics
from notefall.server.billing.models import Subscription, WebhookEvent
from notefall.server.billing.repository import BillingRepository
from notefall.server.billing.webhooks import entitled_tier
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.settings import Settings
from sqlalchemy import func, select

from .conftest import TestClient, create_app, make_settings, signed_in_headers
from .test_app import assert_problem

WEBHOOK_SECRET = "whsec_unit_test_secret_0123456789"
WEBHOOK = "/api/v1/billing/webhook"


@pytest.fixture
def billing_settings(tmp_path, migrated_url: str, redis_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        migrated_url,
        redis_url=redis_url,
        rate_limit_scale=1000.0,
        stripe_secret_key="sk_test_unit",
        stripe_webhook_secret=WEBHOOK_SECRET,
        # Nothing answers here: these tests never reach Stripe.
        stripe_api_base="http://127.0.0.1:9",
        stripe_price_pro="price_pro_unit",
        stripe_price_enterprise="price_enterprise_unit",
    )


@pytest.fixture
def billing_client(billing_settings: Settings):
    with TestClient(create_app(billing_settings)) as test_client:
        yield test_client


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """Stripe's scheme: ``t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>``."""
    stamp = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def event_body(event_id: str = "evt_unit_1", kind: str = "customer.subscription.updated") -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()) - 2,
        "livemode": False,
        "data": {"object": {"id": "sub_unit_1", "object": "subscription", "status": "active"}},
    }
    return json.dumps(event).encode()


def stored_events(settings: Settings) -> list[WebhookEvent]:
    database = Database(settings.database_url)
    try:
        with transaction_scope(database) as session:
            return list(session.scalars(select(WebhookEvent)))
    finally:
        database.dispose()


def post(client: TestClient, payload: bytes, signature: str | None) -> object:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(WEBHOOK, content=payload, headers=headers)


def test_a_signed_event_is_stored_once_and_a_resend_is_answered_as_a_duplicate(
    billing_client: TestClient, billing_settings: Settings
):
    payload = event_body()
    first = post(billing_client, payload, sign(payload))
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False}
    again = post(billing_client, payload, sign(payload))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    rows = stored_events(billing_settings)
    assert [(r.source, r.event_id, r.type, r.object_id, r.status) for r in rows] == [
        ("stripe", "evt_unit_1", "customer.subscription.updated", "sub_unit_1", "pending")
    ]


def test_an_event_type_we_do_not_act_on_is_stored_as_ignored(
    billing_client: TestClient, billing_settings: Settings
):
    payload = event_body("evt_unit_2", "customer.created")
    assert post(billing_client, payload, sign(payload)).status_code == 200
    assert [r.status for r in stored_events(billing_settings)] == ["ignored"]


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong_secret", "stale", "tampered", "garbage_header", "future_forged"],
)
def test_forged_missing_and_stale_signatures_are_refused_and_nothing_is_stored(
    billing_client: TestClient, billing_settings: Settings, case: str
):
    payload = event_body()
    signature: str | None
    body = payload
    if case == "missing":
        signature = None
    elif case == "wrong_secret":
        signature = sign(payload, secret="whsec_someone_else")
    elif case == "stale":
        signature = sign(payload, at=int(time.time()) - 301)
    elif case == "tampered":
        signature = sign(payload)
        body = payload.replace(b"active", b"canceled")
    elif case == "garbage_header":
        signature = "not a signature"
    else:
        # A signature made with our secret cannot be guessed; a made-up one must fail.
        signature = f"t={int(time.time())},v1={'0' * 64}"
    response = post(billing_client, body, signature)
    problem = assert_problem(response, 400, "invalid_webhook")
    assert "signature" in problem["detail"].lower() or "Stripe-Signature" in problem["detail"]
    assert stored_events(billing_settings) == []


def test_a_body_that_is_not_json_is_refused(billing_client: TestClient, billing_settings):
    payload = b"{not json"
    assert_problem(post(billing_client, payload, sign(payload)), 400, "invalid_webhook")
    assert stored_events(billing_settings) == []


def test_without_a_webhook_secret_the_door_is_closed(client: TestClient, settings: Settings):
    payload = event_body()
    response = post(client, payload, sign(payload))
    assert_problem(response, 503, "billing_not_configured")
    assert stored_events(settings) == []


def test_billing_without_stripe_configured_shows_free_and_refuses_checkout(
    client: TestClient, settings: Settings
):
    ada = signed_in_headers(client, settings, "ada@example.com")
    body = client.get("/api/v1/billing", headers=ada).json()
    assert body["tier"] == "free" and body["available"] is False
    assert body["subscription"] is None and body["banner"] is None
    assert body["billing_url"] == "http://notefall.test/billing"
    problem = assert_problem(
        client.post("/api/v1/billing/checkout", json={"tier": "pro"}, headers=ada),
        503,
        "billing_not_configured",
    )
    assert "NOTEFALL_STRIPE_SECRET_KEY" in problem["detail"]
    assert_problem(
        client.post("/api/v1/billing/checkout", json={"tier": "free"}, headers=ada),
        422,
        "invalid_request",
    )
    assert client.get("/api/v1/billing/invoices", headers=ada).json() == {"items": []}
    assert_problem(client.get("/api/v1/billing"), 401, "invalid_access_token")


def _row(status: str, tier: str, **extra: object) -> Subscription:
    return Subscription(
        id=f"sub_{uuid.uuid4().hex[:8]}",
        stripe_customer_id="cus_x",
        status=status,
        tier=tier,
        price_id="price_x",
        cancel_at_period_end=False,
        **extra,
    )


@pytest.mark.parametrize(
    ("status", "tier", "expected"),
    [
        ("active", "pro", "pro"),
        ("trialing", "enterprise", "enterprise"),
        ("past_due", "pro", "pro"),  # Stripe still retrying: paid features stay
        ("unpaid", "pro", "free"),
        ("canceled", "enterprise", "free"),
        ("incomplete", "pro", "free"),
        ("incomplete_expired", "pro", "free"),
        ("paused", "pro", "free"),
    ],
)
def test_the_tier_follows_the_subscription_status(status: str, tier: str, expected: str):
    assert entitled_tier([_row(status, tier)]) == expected


def test_a_scheduled_downgrade_keeps_the_paid_tier_and_the_best_subscription_wins():
    end = datetime(2026, 12, 1, tzinfo=UTC)
    scheduled = _row("active", "pro", scheduled_from_tier="enterprise", scheduled_at=end)
    assert entitled_tier([scheduled]) == "enterprise"
    assert entitled_tier([_row("canceled", "enterprise"), _row("active", "pro")]) == "pro"
    assert entitled_tier([]) == "free"


def _add_subscription(settings: Settings, email: str, status: str = "active") -> str:
    database = Database(settings.database_url)
    try:
        with transaction_scope(database) as session:
            user = session.scalar(select(User).where(User.email == email))
            assert user is not None
            row = _row(status, "pro", user_id=user.id)
            session.add(row)
            user.tier = "pro"
            return row.id
    finally:
        database.dispose()


def test_account_deletion_marks_the_subscription_for_cancellation_and_keeps_its_row(
    billing_client: TestClient, billing_settings: Settings
):
    headers = signed_in_headers(billing_client, billing_settings, "del@example.com")
    subscription_id = _add_subscription(billing_settings, "del@example.com")
    response = billing_client.request(
        "DELETE",
        "/api/v1/me",
        json={"password": "falling notes over a grand piano"},
        headers=headers,
    )
    assert response.status_code == 204, response.text
    database = Database(billing_settings.database_url)
    try:
        with transaction_scope(database) as session:
            row = session.get(Subscription, subscription_id)
            assert row is not None and row.user_id is None
            assert row.cancel_requested_at is not None
            # What the reconciler sends again until Stripe confirms the end.
            assert BillingRepository(session).subscriptions_to_cancel() == [subscription_id]
            assert session.scalar(select(func.count()).select_from(User)) == 0
    finally:
        database.dispose()
    # The request queued the cancellation for a worker (the real Redis broker's queue).
    queued = redis.Redis.from_url(str(billing_settings.redis_url)).lrange("default", 0, -1)
    assert any(subscription_id.encode() in message for message in queued)


def test_the_reconciler_queues_events_whose_message_was_lost(
    billing_client: TestClient, billing_settings: Settings
):
    from notefall.server.billing.tasks import PROCESS_TASK, reconcile

    payload = event_body("evt_lost")
    assert post(billing_client, payload, sign(payload)).status_code == 200
    client = redis.Redis.from_url(str(billing_settings.redis_url))
    client.delete("default")  # the message is lost
    now = datetime.now(UTC)
    assert reconcile(billing_settings, now) == 0  # too young: its own message may still come
    assert reconcile(billing_settings, now + timedelta(minutes=2)) == 1
    queued = client.lrange("default", 0, -1)
    event = stored_events(billing_settings)[0]
    assert any(str(event.id).encode() in m and PROCESS_TASK.encode() in m for m in queued)


def test_counters_add_up_across_clients_and_show_the_success_ratio(redis_url: str):
    first = redis.Redis.from_url(redis_url)
    second = redis.Redis.from_url(redis_url)
    metrics.count(first, "payments_succeeded", 3)
    metrics.count(second, "payments_failed")
    metrics.count(second, "not_a_counter")
    metrics.observe_lag(first, 0.5)
    metrics.observe_lag(second, 120.0)
    recorded = metrics.read(first)
    assert recorded.counters["payments_succeeded"] == 3
    assert recorded.counters["payments_failed"] == 1
    assert recorded.payment_success_ratio == 0.75
    assert recorded.lag_count == 2 and recorded.lag_sum == 120.5
    assert dict(recorded.lag_buckets)["1"] == 1 and dict(recorded.lag_buckets)["+Inf"] == 2
    names = {family.name for family in metrics.BillingCollector(first).collect()}
    assert "notefall_billing_payments_succeeded" in names
    assert "notefall_billing_webhook_lag_seconds" in names
    # Redis down: the collector yields nothing rather than failing the scrape.
    dead = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    assert list(metrics.BillingCollector(dead).collect()) == []
