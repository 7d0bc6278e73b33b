"""Queries of the billing rows. Never commits."""

from __future__ import annotations

import uuid
from datetime import datetime

from notefall.server.accounts.models import User
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import BillingCustomer, EventStatus, Invoice, Subscription, WebhookEvent

# Statuses in which a subscription is still the customer's (it may be charged again).
OPEN_STATUSES = ("active", "trialing", "past_due", "unpaid", "paused")
# Statuses that keep the paid tier: Stripe is still trying to collect (past_due) or paid.
ENTITLED_STATUSES = ("active", "trialing", "past_due")
ENDED_STATUSES = ("canceled", "incomplete_expired")


class BillingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_account(self, user_id: uuid.UUID) -> None:
        """Hold the user's row until the request ends (on SQLite every transaction already
        holds the single writer's lock from its BEGIN IMMEDIATE: kit/db.py).

        Billing requests call Stripe in the middle of their transaction, and Stripe's webhooks
        for what they do may be stored meanwhile. Writing first serializes two requests of
        one user (one customer, one checkout at a time).
        """
        self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(tier=User.tier)
            .execution_options(synchronize_session=False)
        )

    # -- customers -----------------------------------------------------------------------

    def customer_of(self, user_id: uuid.UUID) -> BillingCustomer | None:
        return self.session.get(BillingCustomer, user_id)

    def add_customer(self, user_id: uuid.UUID, stripe_customer_id: str) -> BillingCustomer:
        """The user's customer row; a concurrent request that stored it first wins."""
        try:
            with self.session.begin_nested():
                row = BillingCustomer(user_id=user_id, stripe_customer_id=stripe_customer_id)
                self.session.add(row)
        except IntegrityError:
            existing = self.customer_of(user_id)
            assert existing is not None
            return existing
        return row

    def user_of_customer(self, stripe_customer_id: str) -> uuid.UUID | None:
        return self.session.scalar(
            select(BillingCustomer.user_id).where(
                BillingCustomer.stripe_customer_id == stripe_customer_id
            )
        )

    # -- subscriptions -------------------------------------------------------------------

    def subscriptions_of(self, user_id: uuid.UUID) -> list[Subscription]:
        return list(
            self.session.scalars(
                select(Subscription)
                .where(Subscription.user_id == user_id)
                .order_by(Subscription.updated_at.desc())
            )
        )

    def open_subscription_of(
        self, user_id: uuid.UUID, *, lock: bool = False
    ) -> Subscription | None:
        statement = (
            select(Subscription)
            .where(Subscription.user_id == user_id, Subscription.status.in_(OPEN_STATUSES))
            .order_by(Subscription.updated_at.desc())
            .limit(1)
        )
        if lock:
            statement = statement.with_for_update()
        return self.session.scalar(statement)

    def subscription_for_update(self, subscription_id: str) -> Subscription | None:
        return self.session.scalar(
            select(Subscription)
            .where(Subscription.id == subscription_id)
            .with_for_update()
            # Read again once locked: a copy loaded before may predate another's commit.
            .execution_options(populate_existing=True)
        )

    def subscriptions_to_cancel(self) -> list[str]:
        """Subscriptions an account deletion asked to end that Stripe has not ended yet."""
        return list(
            self.session.scalars(
                select(Subscription.id).where(
                    Subscription.cancel_requested_at.is_not(None),
                    Subscription.status.not_in(ENDED_STATUSES),
                )
            )
        )

    # -- invoices ------------------------------------------------------------------------

    def invoice_for_update(self, invoice_id: str) -> Invoice | None:
        return self.session.scalar(
            select(Invoice).where(Invoice.id == invoice_id).with_for_update()
        )

    def invoices_of(self, user_id: uuid.UUID, limit: int) -> list[Invoice]:
        return list(
            self.session.scalars(
                select(Invoice)
                .where(Invoice.user_id == user_id, Invoice.status != "draft")
                .order_by(Invoice.created_at.desc(), Invoice.id.desc())
                .limit(limit)
            )
        )

    # -- webhook events ------------------------------------------------------------------

    def add_event(self, event: WebhookEvent) -> bool:
        """Store ``event``; False when (source, event_id) is stored already."""
        try:
            with self.session.begin_nested():
                self.session.add(event)
        except IntegrityError:
            return False
        return True

    def event_by_key(self, source: str, event_id: str) -> WebhookEvent | None:
        return self.session.scalar(
            select(WebhookEvent).where(
                WebhookEvent.source == source, WebhookEvent.event_id == event_id
            )
        )

    def claim_event(self, event_uuid: uuid.UUID, now: datetime) -> WebhookEvent | None:
        """Mark a pending event processed, first thing in the processing transaction.

        The conditional update takes the row's lock (PostgreSQL) or the database's write
        lock (SQLite) until the transaction ends, so a second worker on the same event waits
        and then finds it processed; if this transaction rolls back, the event is pending
        again. Effects and the status commit together: exactly once.
        """
        result = self.session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.id == event_uuid,
                WebhookEvent.status == EventStatus.PENDING.value,
            )
            .values(status=EventStatus.PROCESSED.value, processed_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None
        return self.session.get(WebhookEvent, event_uuid, populate_existing=True)

    def pending_events_before(
        self, received_before: datetime, max_attempts: int
    ) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(WebhookEvent.id)
                .where(
                    WebhookEvent.status == EventStatus.PENDING.value,
                    WebhookEvent.received_at < received_before,
                    WebhookEvent.attempts < max_attempts,
                )
                .order_by(WebhookEvent.received_at)
                .limit(500)
            )
        )
