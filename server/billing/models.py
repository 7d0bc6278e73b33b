"""Billing rows: the Stripe customer of a user, their subscriptions as Stripe last described
them, invoices as their webhooks arrive, and every webhook event received (stored once).

Stripe is the truth; these rows are what its webhooks told us, re-read from Stripe when an
event is processed (``webhooks.process_event``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from notefall.server.kit.models import Base, utcnow
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column


class BillingCustomer(Base):
    """The one Stripe customer of a user, created at the first checkout and reused."""

    __tablename__ = "billing_customers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A Stripe subscription as its latest processed event found it (re-fetched from Stripe)."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (Index("ix_billing_subscriptions_user_status", "user_id", "status"),)

    # Stripe's id (sub_...).
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SET NULL, not CASCADE: a deleted account's subscription must still be cancelled in
    # Stripe (``cancel_requested_at``) after the user row is gone.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    stripe_customer_id: Mapped[str] = mapped_column(String(255), index=True)
    # Stripe's status: incomplete, incomplete_expired, trialing, active, past_due, canceled,
    # unpaid, paused.
    status: Mapped[str] = mapped_column(String(30))
    # The tier its price is for (notefall.common.tiers), and the price itself.
    tier: Mapped[str] = mapped_column(String(20))
    price_id: Mapped[str] = mapped_column(String(255))
    current_period_start: Mapped[datetime | None] = mapped_column()
    current_period_end: Mapped[datetime | None] = mapped_column()
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column()
    # A downgrade confirmed with when="period_end": Stripe's price already changed (without
    # proration), and the paid-for tier ``scheduled_from_tier`` lasts until the period that
    # starts at ``scheduled_at`` begins (by Stripe's period, not our clock).
    scheduled_from_tier: Mapped[str | None] = mapped_column(String(20))
    scheduled_at: Mapped[datetime | None] = mapped_column()
    # The hosted invoice page of a payment that needs the customer (3-D Secure), or None.
    action_url: Mapped[str | None] = mapped_column(String(1000))
    # Set by account deletion: cancel it in Stripe now (a task does, the reconciler retries).
    cancel_requested_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Invoice(Base):
    """An invoice as its webhooks described it (re-fetched from Stripe when processed)."""

    __tablename__ = "billing_invoices"
    __table_args__ = (Index("ix_billing_invoices_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    number: Mapped[str | None] = mapped_column(String(100))
    # draft, open, paid, uncollectible, void
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None] = mapped_column()
    period_end: Mapped[datetime | None] = mapped_column()
    hosted_invoice_url: Mapped[str | None] = mapped_column(String(1000))
    invoice_pdf: Mapped[str | None] = mapped_column(String(1000))
    # Stripe's creation time of the invoice.
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventStatus(StrEnum):
    PENDING = "pending"  # stored, not yet processed (or a failed attempt waits for a retry)
    PROCESSED = "processed"  # its effects are committed; never processed again
    IGNORED = "ignored"  # a type we do not act on
    FAILED = "failed"  # gave up after MAX_ATTEMPTS; an operator looks at ``last_error``


class WebhookEvent(Base):
    """A webhook event, stored once under (source, event_id) before it is answered."""

    __tablename__ = "billing_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_billing_events_source_event_id"),
        Index("ix_billing_events_status_received", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Who sent it: "stripe" (the key leaves room for another provider).
    source: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    # The id of the object the event is about (sub_..., in_..., cs_...).
    object_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Stripe's ``created`` of the event (the lag is measured from it).
    created_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(12), default=EventStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column()
