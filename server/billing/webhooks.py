"""Stripe's webhooks: verified and stored once by the API, processed once by a worker.

Receiving (``receive``): the signature is checked on the raw body with the SDK's
``stripe.Webhook.construct_event`` (a bad or missing signature, or a timestamp older than
``TOLERANCE_SECONDS``, is refused and nothing is stored); the event is stored under the
unique key (source, event id), so a resent event is answered 200 and stored no second time.

Processing (``process_event``, in the worker): the event row is claimed and its effects
committed in one transaction (``BillingRepository.claim_event``), so each event acts
exactly once however often its message is delivered. Events only say *that* something
changed: the object (subscription, invoice, checkout session) is fetched again from Stripe
and its **current** state applied, so events that arrive twice or out of order converge on
the same rows. The user's tier is then derived from their subscriptions (``entitled_tier``):
the only place, besides an operator's ``notefall admin set-tier``, that changes
``users.tier``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
import stripe
from notefall.common.tiers import Tier, limits_for
from notefall.server.accounts.models import User
from notefall.server.activity import ActivityKind, record
from notefall.server.kit.db import Database, after_commit, transaction_scope
from notefall.server.kit.mail import Mailer, compose, send_after_commit
from notefall.server.kit.settings import Settings
from notefall.server.profile.service import notification_preferences
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import metrics
from .errors import BillingNotConfiguredError, InvalidWebhookError
from .models import EventStatus, Invoice, Subscription, WebhookEvent
from .repository import ENDED_STATUSES, ENTITLED_STATUSES, BillingRepository
from .stripe_gateway import (
    StripeGateway,
    invoice_subscription_id,
    object_id,
    subscription_item,
    subscription_period,
    timestamp,
)

log = logging.getLogger("notefall.server.billing")

SOURCE = "stripe"
# Stripe's own default: a signed timestamp older than this is a replay.
TOLERANCE_SECONDS = 300
# Attempts at processing one event before it is marked failed for an operator.
MAX_ATTEMPTS = 8

RANK = {Tier.FREE.value: 0, Tier.PRO.value: 1, Tier.ENTERPRISE.value: 2}

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.pending_update_applied",
        "customer.subscription.pending_update_expired",
    }
)
INVOICE_EVENTS = frozenset(
    {
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)
CHECKOUT_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | CHECKOUT_EVENTS


# -- receiving ----------------------------------------------------------------------------


def verify(settings: Settings, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in ``payload`` if its ``Stripe-Signature`` checks out, else InvalidWebhookError."""
    if settings.stripe_webhook_secret is None:
        raise BillingNotConfiguredError(
            "This server takes no Stripe webhooks (NOTEFALL_STRIPE_WEBHOOK_SECRET is unset)."
        )
    if not signature:
        raise InvalidWebhookError(
            "The Stripe-Signature header is missing; only Stripe's signed webhooks are taken."
        )
    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            settings.stripe_webhook_secret.get_secret_value(),
            tolerance=TOLERANCE_SECONDS,
        )
    except ValueError:
        raise InvalidWebhookError("The body is not a Stripe event (not valid JSON).") from None
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhookError(
            f"The signature does not check out ({exc.user_message or exc}): the body was "
            "changed, the signing secret differs (NOTEFALL_STRIPE_WEBHOOK_SECRET), or the "
            f"timestamp is more than {TOLERANCE_SECONDS} seconds old."
        ) from None
    # The body as sent (the SDK's object turns numbers into Decimal, which JSON cannot store).
    body = json.loads(payload)
    if not isinstance(body, dict) or not body.get("id") or not body.get("type") or not event:
        raise InvalidWebhookError("The body is not a Stripe event (no id or type).")
    return body


def store(session: Session, event: dict[str, Any], now: datetime) -> tuple[WebhookEvent, bool]:
    """Store a verified event once; (its row, True when it is new)."""
    repository = BillingRepository(session)
    data_object = (event.get("data") or {}).get("object") or {}
    row = WebhookEvent(
        source=SOURCE,
        event_id=str(event["id"]),
        type=str(event["type"]),
        object_id=object_id(data_object.get("id")),
        payload=event,
        created_at=timestamp(event.get("created")) or now,
        received_at=now,
        status=(
            EventStatus.PENDING.value
            if event["type"] in HANDLED_EVENTS
            else EventStatus.IGNORED.value
        ),
        attempts=0,
    )
    if repository.add_event(row):
        return row, True
    existing = repository.event_by_key(SOURCE, str(event["id"]))
    assert existing is not None
    return existing, False


# -- processing ---------------------------------------------------------------------------


@dataclass
class Effects:
    """What a processed event did, told to metrics and mail once it has committed."""

    counters: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """Stripe's current state of what an event is about, read before any row is locked:
    a worker never holds a database lock while it waits for Stripe."""

    kind: str
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    invoice: dict[str, Any] | None = None
    checkout_completed: bool = False


def gather(gateway: StripeGateway, kind: str, target: str | None) -> Snapshot:
    """Fetch the event's objects from Stripe as they are now (never the event's copy)."""
    snapshot = Snapshot(kind)
    if not target:
        return snapshot
    if kind in CHECKOUT_EVENTS:
        checkout = gateway.checkout_session(target)
        if checkout.get("status") != "complete":
            return snapshot
        if checkout.get("mode") == "subscription":
            subscription_id = object_id(checkout.get("subscription"))
            if subscription_id:
                snapshot.checkout_completed = True
                snapshot.subscriptions.append(gateway.subscription(subscription_id))
        elif checkout.get("mode") == "setup":
            _default_added_card(gateway, checkout)
    elif kind in SUBSCRIPTION_EVENTS:
        snapshot.subscriptions.append(gateway.subscription(target))
    elif kind in INVOICE_EVENTS:
        snapshot.invoice = gateway.invoice(target)
        subscription_id = invoice_subscription_id(snapshot.invoice)
        if subscription_id:
            snapshot.subscriptions.append(gateway.subscription(subscription_id))
    return snapshot


def _default_added_card(gateway: StripeGateway, checkout: dict[str, Any]) -> None:
    """A card added through Checkout's setup mode becomes the default when there is none
    (idempotent: a second run finds a default)."""
    intent_id = object_id(checkout.get("setup_intent"))
    customer_id = object_id(checkout.get("customer"))
    if not intent_id or not customer_id:
        return
    method = object_id(gateway.setup_intent(intent_id).get("payment_method"))
    customer = gateway.customer(customer_id)
    current = object_id((customer.get("invoice_settings") or {}).get("default_payment_method"))
    if method and not current:
        gateway.set_default_payment_method(customer_id, method)


def _shape(subscription: dict[str, Any]) -> tuple[Any, ...]:
    """What we keep of a subscription: two fetches that agree on it need no second write."""
    item = subscription_item(subscription)
    return (
        subscription.get("status"),
        (item.get("price") or {}).get("id"),
        subscription_period(subscription),
        bool(subscription.get("cancel_at_period_end")),
        subscription.get("canceled_at"),
    )


class Processor:
    """Applies Stripe's state inside the processing transaction (no Stripe calls here)."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        gateway: StripeGateway,
        mailer: Mailer,
        now: datetime,
    ) -> None:
        self.session = session
        self.settings = settings
        self.gateway = gateway
        self.mailer = mailer
        self.now = now
        self.billing = BillingRepository(session)
        self.effects = Effects()

    def apply(self, snapshot: Snapshot) -> None:
        if snapshot.checkout_completed:
            self.effects.counters.append("checkouts_completed")
        rows = [self.sync_subscription(s) for s in snapshot.subscriptions]
        if snapshot.invoice is not None:
            self._invoice(snapshot.kind, snapshot.invoice, rows[0] if rows else None)

    # -- subscriptions -------------------------------------------------------------------

    def _owner(self, subscription: dict[str, Any], row: Subscription | None) -> uuid.UUID | None:
        if row is not None and row.user_id is not None:
            return row.user_id
        if row is not None and row.cancel_requested_at is not None:
            return None  # its account was deleted
        customer_id = object_id(subscription.get("customer"))
        owner = self.billing.user_of_customer(customer_id) if customer_id else None
        if owner is not None:
            return owner
        named = (subscription.get("metadata") or {}).get("user_id")
        try:
            candidate = uuid.UUID(str(named)) if named else None
        except ValueError:
            return None
        if candidate is not None and self.session.get(User, candidate) is not None:
            return candidate
        return None

    def sync_subscription(self, subscription: dict[str, Any]) -> Subscription:
        """Store Stripe's current state of ``subscription`` and re-derive its owner's tier."""
        # Locks in the API's order, the user's row before the subscription's, or the two
        # deadlock on PostgreSQL: read the row, lock its owner, then lock the row.
        owner = self._owner(subscription, self.session.get(Subscription, subscription["id"]))
        if owner is not None:
            self.session.execute(select(User.id).where(User.id == owner).with_for_update())
        row = self.billing.subscription_for_update(subscription["id"])
        owner = self._owner(subscription, row) if owner is None else owner
        item = subscription_item(subscription)
        price = item.get("price") or {}
        tier = self.gateway.tier_of_price(price)
        if tier is None:
            log.error(
                "subscription %s has price %s, which sells no tier we know; treated as Free",
                subscription["id"],
                price.get("id"),
            )
        start, end = subscription_period(subscription)
        status = str(subscription.get("status"))
        previous_status = row.status if row is not None else None
        if row is None:
            row = self._insert_subscription(subscription, owner, tier, price)
        row.stripe_customer_id = object_id(subscription.get("customer")) or ""
        row.status = status
        row.tier = (tier or Tier.FREE).value
        row.price_id = str(price.get("id") or "")
        row.current_period_start, row.current_period_end = start, end
        row.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
        row.canceled_at = timestamp(subscription.get("canceled_at"))
        row.updated_at = self.now
        if row.scheduled_at is not None and (
            status in ENDED_STATUSES
            or (start is not None and start >= row.scheduled_at)
            or RANK[row.tier] >= RANK.get(row.scheduled_from_tier or "free", 0)
        ):
            # The new period began (or the change was overtaken): the downgrade has happened.
            row.scheduled_from_tier, row.scheduled_at = None, None
        if status == "canceled" and previous_status not in (None, "canceled"):
            self.effects.counters.append("cancellations")
        if status not in ENTITLED_STATUSES:
            row.action_url = None
        self.session.flush()
        ours = bool((subscription.get("metadata") or {}).get("user_id"))
        if (
            owner is None
            and ours
            and status not in ENDED_STATUSES
            and row.cancel_requested_at is None
        ):
            # Made by our checkout for an account deleted while it was open: nobody to bill
            # it to, so it ends. (A subscription made elsewhere is left alone, and logged.)
            log.warning("subscription %s belongs to no account; cancelling it", row.id)
            row.cancel_requested_at = self.now
            self.session.flush()
            after_commit(self.session, lambda: request_cancellation(self.settings, row.id))
        if owner is not None:
            self.entitle(owner)
        elif not ours:
            log.warning("subscription %s names no Notefall account; left alone", row.id)
        return row

    def _insert_subscription(
        self,
        subscription: dict[str, Any],
        owner: uuid.UUID | None,
        tier: Tier | None,
        price: dict[str, Any],
    ) -> Subscription:
        """A new row, or the one another worker inserted first (then locked, like any)."""
        row = Subscription(
            id=subscription["id"],
            user_id=owner,
            stripe_customer_id=object_id(subscription.get("customer")) or "",
            status="incomplete",
            tier=(tier or Tier.FREE).value,
            price_id=str(price.get("id") or ""),
            cancel_at_period_end=False,
            updated_at=self.now,
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            # Another worker inserted it first (a second event of a new subscription).
            existing = self.billing.subscription_for_update(subscription["id"])
            assert existing is not None
            return existing
        return row

    def entitle(self, user_id: uuid.UUID) -> None:
        """Set the user's tier from their subscriptions, and record a change."""
        user = self.session.scalar(select(User).where(User.id == user_id).with_for_update())
        if user is None:
            return
        tier = entitled_tier(self.billing.subscriptions_of(user_id))
        if tier == user.tier:
            return
        before = user.tier
        user.tier = tier
        record(
            self.session,
            user.id,
            ActivityKind.BILLING_CHANGED,
            at=self.now,
            tier=tier,
            previous=before,
            by="stripe",
        )
        if RANK[tier] > RANK.get(before, 0):
            self.effects.counters.append("upgrades")
            if before == Tier.FREE.value:
                self.effects.counters.append("conversions")
        else:
            self.effects.counters.append("downgrades")
        self.session.flush()

    # -- invoices ------------------------------------------------------------------------

    def _invoice(self, kind: str, invoice: dict[str, Any], row: Subscription | None) -> None:
        customer_id = object_id(invoice.get("customer"))
        owner = self.billing.user_of_customer(customer_id) if customer_id else None
        if owner is not None:
            self._store_invoice(owner, invoice)
        if kind == "invoice.paid":
            self.effects.counters.append("payments_succeeded")
            if row is not None:
                row.action_url = None
        elif kind == "invoice.payment_failed":
            self.effects.counters.append("payments_failed")
            if owner is not None:
                record(
                    self.session,
                    owner,
                    ActivityKind.PAYMENT_FAILED,
                    at=self.now,
                    invoice=invoice.get("number") or invoice["id"],
                    amount=invoice.get("amount_due"),
                    currency=invoice.get("currency"),
                )
                # Acting on the current state: a failure reported after the invoice got
                # paid (events out of order) mails nobody.
                if invoice.get("status") == "open":
                    self._dunning_mail(owner, invoice, row)
        elif kind == "invoice.payment_action_required" and invoice.get("status") == "open":
            if row is not None:
                row.action_url = invoice.get("hosted_invoice_url")
            if owner is not None:
                self._action_required_mail(owner, invoice)
        self.session.flush()

    def _store_invoice(self, owner: uuid.UUID, invoice: dict[str, Any]) -> None:
        row = self.billing.invoice_for_update(invoice["id"])
        if row is None:
            row = Invoice(
                id=invoice["id"],
                user_id=owner,
                status="draft",
                currency="usd",
                amount_due=0,
                amount_paid=0,
                total=0,
                created_at=self.now,
            )
            try:
                with self.session.begin_nested():
                    self.session.add(row)
            except IntegrityError:
                # Another worker stored it first: update that row (locked) instead.
                existing = self.billing.invoice_for_update(invoice["id"])
                assert existing is not None
                row = existing
        row.subscription_id = invoice_subscription_id(invoice)
        row.number = invoice.get("number")
        row.status = str(invoice.get("status") or "draft")
        row.currency = str(invoice.get("currency") or "usd")
        row.amount_due = int(invoice.get("amount_due") or 0)
        row.amount_paid = int(invoice.get("amount_paid") or 0)
        row.total = int(invoice.get("total") or 0)
        row.period_start = timestamp(invoice.get("period_start"))
        row.period_end = timestamp(invoice.get("period_end"))
        row.hosted_invoice_url = invoice.get("hosted_invoice_url")
        row.invoice_pdf = invoice.get("invoice_pdf")
        row.created_at = timestamp(invoice.get("created")) or self.now
        row.updated_at = self.now

    # -- mail ----------------------------------------------------------------------------

    def _wants_billing_mail(self, user: User) -> bool:
        return notification_preferences(self.session, user.id)["billing"]

    def _dunning_mail(
        self, owner: uuid.UUID, invoice: dict[str, Any], row: Subscription | None
    ) -> None:
        user = self.session.get(User, owner)
        if user is None or not self._wants_billing_mail(user):
            return
        plan = limits_for(row.tier if row is not None else Tier.PRO).title
        amount = _money(invoice.get("amount_due"), invoice.get("currency"))
        retry = timestamp(invoice.get("next_payment_attempt"))
        when = f" We will try again on {retry:%B %d, %Y}." if retry else ""
        message = compose(
            user.email,
            "Your Notefall payment failed",
            f"Hello {user.name},\n\n"
            f"We could not collect {amount} for your Notefall {plan} plan.{when} Your plan "
            "keeps working meanwhile; if the payment keeps failing, the account moves to the "
            "Free plan (your projects are kept).\n\n"
            "Update your card here:\n"
            f"{self.settings.public_url}/billing\n",
        )
        send_after_commit(self.session, self.mailer, message)

    def _action_required_mail(self, owner: uuid.UUID, invoice: dict[str, Any]) -> None:
        user = self.session.get(User, owner)
        url = invoice.get("hosted_invoice_url")
        if user is None or not url or not self._wants_billing_mail(user):
            return
        amount = _money(invoice.get("amount_due"), invoice.get("currency"))
        message = compose(
            user.email,
            "Confirm your Notefall payment",
            f"Hello {user.name},\n\nYour bank asks you to confirm the payment of {amount} for "
            f"Notefall. Confirm it here:\n{url}\n",
        )
        send_after_commit(self.session, self.mailer, message)


def _money(cents: Any, currency: Any) -> str:
    amount = int(cents or 0) / 100
    code = str(currency or "usd").upper()
    return f"${amount:,.2f}" if code == "USD" else f"{amount:,.2f} {code}"


def entitled_tier(subscriptions: list[Subscription]) -> str:
    """The best tier any of these subscriptions pays for; Free without one.

    active, trialing and past_due (Stripe still retrying a failed payment) keep the price's
    tier; unpaid, canceled, incomplete, incomplete_expired and paused give nothing. A
    downgrade scheduled for the period end keeps the paid-for tier until Stripe's next
    period begins.
    """
    best = Tier.FREE.value
    for row in subscriptions:
        if row.status not in ENTITLED_STATUSES:
            continue
        tier = row.tier
        if row.scheduled_from_tier and row.scheduled_at is not None:
            tier = row.scheduled_from_tier
        if RANK.get(tier, 0) > RANK[best]:
            best = tier
    return best


# -- the transaction around one event -------------------------------------------------------

CANCEL_TASK = "notefall.billing.cancel_subscription"


def request_cancellation(settings: Settings, subscription_id: str) -> None:
    """Ask a worker to cancel ``subscription_id`` in Stripe (the reconciler retries)."""
    from notefall.server.jobs.enqueue import enqueue

    try:
        enqueue(settings, CANCEL_TASK, args=[subscription_id], ignore_result=True)
    except Exception as exc:  # the reconciler sends it again
        log.warning("could not queue the cancellation of %s: %s", subscription_id, exc)


def process_event(
    database: Database,
    settings: Settings,
    event_uuid: uuid.UUID,
    now: Callable[[], datetime],
    *,
    mailer: Mailer,
    redis_client: redis.Redis | None,
    gateway: StripeGateway | None = None,
) -> str:
    """Process one stored event exactly once: "processed", "skipped" (done before, or not
    pending) or "missing"; raises on failure after recording the attempt."""
    gateway = gateway or StripeGateway(settings)
    effects = Effects()
    lag: float | None = None
    try:
        with transaction_scope(database) as session:
            event = session.get(WebhookEvent, event_uuid)
            if event is None:
                return "missing"
            if event.status != EventStatus.PENDING.value:
                return "skipped"
            kind, target = event.type, event.object_id
        snapshot = gather(gateway, kind, target)
        with transaction_scope(database) as session:
            started = now()
            claimed = BillingRepository(session).claim_event(event_uuid, started)
            if claimed is None:
                return "skipped"  # another delivery of this message got there first
            processor = Processor(session, settings, gateway, mailer, started)
            processor.apply(snapshot)
            effects = processor.effects
            lag = (started - claimed.created_at).total_seconds()
        _converge(database, settings, gateway, mailer, now, snapshot, effects)
    except Exception as exc:
        _record_failure(database, event_uuid, exc)
        metrics.count(redis_client, "webhook_errors")
        raise
    for name in effects.counters:
        metrics.count(redis_client, name)
    if lag is not None:
        metrics.observe_lag(redis_client, lag)
    return "processed"


CONVERGE_ROUNDS = 3


def _converge(
    database: Database,
    settings: Settings,
    gateway: StripeGateway,
    mailer: Mailer,
    now: Callable[[], datetime],
    snapshot: Snapshot,
    effects: Effects,
) -> None:
    """Read the subscriptions again after the commit and store them again if they moved.

    Two workers may apply two events of one subscription at once, the older state last;
    whichever commits last then finds Stripe's newer state here and stores it, so the rows
    always end on Stripe's current state.
    """
    applied = {s["id"]: _shape(s) for s in snapshot.subscriptions}
    for _round in range(CONVERGE_ROUNDS):
        moved = []
        for subscription_id, shape in applied.items():
            current = gateway.subscription(subscription_id)
            if _shape(current) != shape:
                moved.append(current)
        if not moved:
            return
        with transaction_scope(database) as session:
            processor = Processor(session, settings, gateway, mailer, now())
            for current in moved:
                processor.sync_subscription(current)
                applied[current["id"]] = _shape(current)
            effects.counters.extend(processor.effects.counters)


def _record_failure(database: Database, event_uuid: uuid.UUID, exc: Exception) -> None:
    log.warning("billing event %s failed: %s: %s", event_uuid, type(exc).__name__, exc)
    with transaction_scope(database) as session:
        event = session.get(WebhookEvent, event_uuid)
        if event is None or event.status != EventStatus.PENDING.value:
            return
        attempts = event.attempts + 1
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_uuid)
            .values(
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                status=(
                    EventStatus.FAILED.value
                    if attempts >= MAX_ATTEMPTS
                    else EventStatus.PENDING.value
                ),
            )
        )


def cancel_requested(
    database: Database,
    settings: Settings,
    subscription_id: str,
    now: datetime,
    *,
    mailer: Mailer,
    gateway: StripeGateway | None = None,
) -> str:
    """End in Stripe a subscription whose account was deleted; stores what Stripe answers."""
    gateway = gateway or StripeGateway(settings)
    with transaction_scope(database) as session:
        row = session.get(Subscription, subscription_id)
        if row is None or row.cancel_requested_at is None:
            return "not requested"
        if row.status in ENDED_STATUSES:
            return "already ended"
    ended = gateway.cancel_now(subscription_id)
    with transaction_scope(database) as session:
        Processor(session, settings, gateway, mailer, now).sync_subscription(ended)
    return "cancelled"
