"""What a user does with their plan through the API. Never commits.

Nothing here changes ``users.tier``: checkout, plan changes, cancel and resume ask Stripe,
and the tier follows when Stripe's webhook says the subscription changed (webhooks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from notefall.common.tiers import Tier, limits_for
from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import InvalidRequestError, NotFoundError
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

from .errors import (
    NoCustomerError,
    NoSubscriptionError,
    NotAPaidTierError,
    PaymentMethodInUseError,
    PaymentProviderError,
    PaymentProviderUnavailableError,
    SamePlanError,
    StalePreviewError,
    SubscriptionExistsError,
    SubscriptionStateError,
)
from .models import BillingCustomer, Invoice, Subscription
from .repository import BillingRepository
from .schemas import (
    Banner,
    BillingOut,
    PaymentMethodOut,
    PlanChangeOut,
    ScheduledChange,
    SubscriptionOut,
)
from .stripe_gateway import StripeGateway, object_id, subscription_period
from .webhooks import RANK

log = logging.getLogger("notefall.server.billing")

Clock = Callable[[], datetime]

# A confirmed plan change may name a preview this old; older ones are shown again.
PREVIEW_LIFETIME_SECONDS = 3600
GatewayFactory = Callable[[], StripeGateway]
CountFn = Callable[[str], None]


def checkout_return_url(settings: Settings) -> str:
    # {CHECKOUT_SESSION_ID} is filled in by Stripe; the page reads the session's outcome.
    return f"{settings.public_url}/billing/return?session_id={{CHECKOUT_SESSION_ID}}"


def checkout_cancel_url(settings: Settings) -> str:
    return f"{settings.public_url}/billing/return?canceled=true"


def billing_page(settings: Settings) -> str:
    return f"{settings.public_url}/billing"


def _paid_tier(value: str) -> Tier:
    tier = Tier(value)
    if tier is Tier.FREE:
        raise NotAPaidTierError(
            "Free is not bought: cancel your subscription (POST /api/v1/billing/cancel) to "
            "move to Free at the end of the period you paid for."
        )
    return tier


def _card(method: dict[str, Any], default_id: str | None) -> PaymentMethodOut:
    card = method.get("card") or {}
    return PaymentMethodOut(
        id=str(method["id"]),
        brand=card.get("brand"),
        last4=card.get("last4"),
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
        default=method["id"] == default_id,
    )


class BillingService:
    def __init__(
        self,
        session: Session,
        settings: Settings,
        gateway: GatewayFactory,
        clock: Clock,
        count: CountFn,
    ) -> None:
        self.session = session
        self.settings = settings
        self._gateway_factory = gateway
        self._gateway: StripeGateway | None = None
        self.clock = clock
        self.count = count
        self.billing = BillingRepository(session)

    @property
    def gateway(self) -> StripeGateway:
        if self._gateway is None:
            self._gateway = self._gateway_factory()
        return self._gateway

    # -- overview ------------------------------------------------------------------------

    def overview(self, user: User) -> BillingOut:
        available = self.settings.stripe_secret_key is not None
        subscriptions = self.billing.subscriptions_of(user.id)
        current = self.billing.open_subscription_of(user.id) or (
            subscriptions[0] if subscriptions else None
        )
        method = None
        customer = self.billing.customer_of(user.id)
        if available and customer is not None:
            method = self._default_method(customer)
        return BillingOut(
            tier=user.tier,
            available=available,
            subscription=self._subscription_out(current) if current is not None else None,
            banner=self._banner(current) if current is not None else None,
            payment_method=method,
            billing_url=billing_page(self.settings),
        )

    def banner(self, user: User) -> Banner | None:
        """The overview's banner alone, from our rows only: every browser page shows it, so
        it must not wait for Stripe."""
        current = self.billing.open_subscription_of(user.id) or next(
            iter(self.billing.subscriptions_of(user.id)), None
        )
        return self._banner(current) if current is not None else None

    def _default_method(self, customer: BillingCustomer) -> PaymentMethodOut | None:
        # A summary only: the page still works when Stripe does not answer right now.
        try:
            details = self.gateway.customer(customer.stripe_customer_id)
            default_id = object_id(
                (details.get("invoice_settings") or {}).get("default_payment_method")
            )
            if not default_id:
                return None
            method = self.gateway.payment_method(default_id)
        except (PaymentProviderUnavailableError, PaymentProviderError):
            return None
        return _card(method, default_id) if method else None

    def _subscription_out(self, row: Subscription) -> SubscriptionOut:
        scheduled = None
        if row.scheduled_from_tier and row.scheduled_at is not None:
            scheduled = ScheduledChange(tier=row.tier, at=row.scheduled_at)
        return SubscriptionOut(
            tier=row.scheduled_from_tier or row.tier,
            status=row.status,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            scheduled_change=scheduled,
        )

    def _banner(self, row: Subscription) -> Banner | None:
        page = billing_page(self.settings)
        if row.action_url and row.status in ("active", "past_due", "incomplete"):
            return Banner(
                kind="action_required",
                message="Your bank asks you to confirm your latest payment; confirm it to "
                "keep your plan.",
                action_url=row.action_url,
            )
        if row.status == "past_due":
            return Banner(
                kind="past_due",
                message="Your latest payment failed. Your plan keeps working while we retry; "
                "update your card so it does not move to Free.",
                action_url=page,
            )
        if row.status == "unpaid":
            return Banner(
                kind="unpaid",
                message="We could not collect your payments, so your account is on the Free "
                "plan. Update your card and pay the open invoice to get your plan back.",
                action_url=page,
            )
        return None

    # -- customer ------------------------------------------------------------------------

    def customer_id(self, user: User) -> str:
        """The user's Stripe customer, created once (the first checkout) and reused."""
        row = self.billing.customer_of(user.id)
        if row is not None:
            return row.stripe_customer_id
        created = self.gateway.create_customer(str(user.id), user.email, user.name)
        return self.billing.add_customer(user.id, created).stripe_customer_id

    def _existing_customer(self, user: User) -> str:
        row = self.billing.customer_of(user.id)
        if row is None:
            raise NoCustomerError(
                "You have no billing account yet; it is created with your first checkout "
                "(POST /api/v1/billing/checkout) or when you add a card "
                "(POST /api/v1/billing/payment-methods)."
            )
        return row.stripe_customer_id

    # -- checkout ------------------------------------------------------------------------

    def checkout(self, user: User, tier_name: str) -> str:
        tier = _paid_tier(tier_name)
        price = self.gateway.price_for(tier)
        self.billing.lock_account(user.id)
        existing = self.billing.open_subscription_of(user.id)
        if existing is not None:
            raise SubscriptionExistsError(
                f"You already have a {limits_for(existing.tier).title} subscription "
                f"({existing.status}); change it with POST /api/v1/billing/change-plan "
                "instead of buying a second one."
            )
        session = self.gateway.subscription_checkout(
            customer_id=self.customer_id(user),
            price_id=price,
            user_id=str(user.id),
            tier=tier,
            success_url=checkout_return_url(self.settings),
            cancel_url=checkout_cancel_url(self.settings),
        )
        after_commit(self.session, lambda: self.count("checkouts_started"))
        return str(session["url"])

    def portal(self, user: User) -> str:
        return self.gateway.portal(self._existing_customer(user), billing_page(self.settings))

    # -- plan changes --------------------------------------------------------------------

    def _open_subscription(self, user: User) -> Subscription:
        self.billing.lock_account(user.id)
        row = self.billing.open_subscription_of(user.id, lock=True)
        if row is None:
            raise NoSubscriptionError(
                "You have no subscription; start one with POST /api/v1/billing/checkout."
            )
        return row

    def change_plan(
        self,
        user: User,
        tier_name: str,
        when: Literal["now", "period_end"] | None,
        confirm: bool,
        proration_date: int | None = None,
    ) -> PlanChangeOut:
        target = _paid_tier(tier_name)
        row = self._open_subscription(user)
        if row.status not in ("active", "trialing"):
            raise SubscriptionStateError(
                f"Your subscription is {row.status.replace('_', ' ')}; settle the open invoice "
                "(update your card on the billing page) before changing plans."
            )
        paid_for = row.scheduled_from_tier or row.tier
        if target.value == row.tier:
            scheduled = " from your next period on" if row.scheduled_from_tier else ""
            raise SamePlanError(
                f"You are on the {limits_for(target).title} plan{scheduled} already."
            )
        subscription = self.gateway.subscription(row.id)
        price = self.gateway.price_for(target)
        if row.scheduled_from_tier and target.value == paid_for:
            return self._undo_scheduled(row, subscription, price, target, confirm)
        upgrade = RANK[target.value] > RANK[paid_for]
        when = when or ("now" if upgrade else "period_end")
        if upgrade and when == "period_end":
            raise InvalidRequestError(
                "Upgrades start now (the rest of this period is prorated); send when=now."
            )
        proration = (
            "always_invoice" if upgrade else ("create_prorations" if when == "now" else "none")
        )
        period_start, period_end = subscription_period(subscription)
        prorate_at = self._proration_moment(proration_date, confirm, period_start, period_end)
        preview = self.gateway.preview_price_change(subscription, price, proration, prorate_at)
        # Stripe's own "now" when none was named (its clock is the one that prorates).
        prorate_at = prorate_at or int(
            preview.get("subscription_proration_date") or self.clock().timestamp()
        )
        currency = str(preview.get("currency") or "usd")
        if proration == "always_invoice":
            # The preview is the invoice charged now; the next one is the new price.
            amount_now = int(preview.get("amount_due") or 0)
            next_amount = int(self.gateway.price(price).get("unit_amount") or 0)
        else:
            amount_now, next_amount = 0, int(preview.get("amount_due") or 0)
        title = limits_for(target).title
        if not confirm:
            detail = (
                f"Moving to {title} now charges the prorated difference today."
                if upgrade
                else (
                    f"You move to {title} when your current period ends; you keep your plan "
                    "until then."
                    if when == "period_end"
                    else f"You move to {title} now; the unused part of this period is credited "
                    "to your next invoice."
                )
            ) + " Send the same request with confirm=true to make the change."
        else:
            if when == "period_end":
                # Kept before Stripe is asked, under the row's lock: the webhook of the price
                # change waits for this transaction and then sees the change as scheduled.
                row.scheduled_from_tier = paid_for
                row.scheduled_at = period_end or row.current_period_end
                self.session.flush()
            changed = self.gateway.change_price(subscription, price, proration, prorate_at)
            if when == "period_end":
                _s, changed_end = subscription_period(changed)
                row.scheduled_at = changed_end or row.scheduled_at
                self.session.flush()
            detail = (
                f"Done: your plan becomes {title} as soon as Stripe confirms the payment (seconds)."
                if when == "now"
                else f"Done: you move to {title} on {row.scheduled_at:%B %d, %Y}."
            )
        return PlanChangeOut(
            tier=target.value,
            when=when,
            confirmed=confirm,
            currency=currency,
            amount_due_now=amount_now,
            next_invoice_amount=next_amount,
            next_invoice_at=period_end,
            proration_date=prorate_at,
            detail=detail,
        )

    def _proration_moment(
        self,
        proration_date: int | None,
        confirm: bool,
        period_start: datetime | None,
        period_end: datetime | None,
    ) -> int | None:
        """When a confirmed change is prorated at: the preview's moment when the confirmation
        names it, so the charge is exactly what the user saw; None lets Stripe take its now.
        A preview over an hour old or from another period is refused rather than silently
        re-priced. (Only the age is checked against our clock: Stripe's may run ahead, as a
        test clock does.)"""
        if proration_date is None or not confirm:
            return None
        too_old = proration_date < self.clock().timestamp() - PREVIEW_LIFETIME_SECONDS
        outside = (period_start is not None and proration_date < period_start.timestamp()) or (
            period_end is not None and proration_date >= period_end.timestamp()
        )
        if too_old or outside:
            raise StalePreviewError(
                "The price preview is out of date; look at the new preview and confirm again."
            )
        return proration_date

    def _undo_scheduled(
        self,
        row: Subscription,
        subscription: dict[str, Any],
        price: str,
        target: Tier,
        confirm: bool,
    ) -> PlanChangeOut:
        """Back to the plan paid for this period: its price again, nothing charged now."""
        title = limits_for(target).title
        if confirm:
            self.gateway.change_price(subscription, price, "none")
            row.scheduled_from_tier, row.scheduled_at = None, None
            self.session.flush()
        return PlanChangeOut(
            tier=target.value,
            when="now",
            confirmed=confirm,
            currency="usd",
            amount_due_now=0,
            proration_date=int(self.clock().timestamp()),
            next_invoice_amount=int(self.gateway.price(price).get("unit_amount") or 0),
            next_invoice_at=row.current_period_end,
            detail=f"Done: you stay on {title}; the scheduled change is undone."
            if confirm
            else f"You stay on {title} and the scheduled change is undone; send confirm=true.",
        )

    def cancel(self, user: User) -> BillingOut:
        row = self._open_subscription(user)
        # Asked of Stripe every time (it is idempotent there): our row may lag behind a
        # webhook still being processed, and Stripe's state is the one that counts.
        changed = self.gateway.set_cancel_at_period_end(row.id, True)
        row.cancel_at_period_end = bool(changed.get("cancel_at_period_end", True))
        self.session.flush()
        return self.overview(user)

    def resume(self, user: User) -> BillingOut:
        row = self._open_subscription(user)
        current = self.gateway.subscription(row.id)
        if not current.get("cancel_at_period_end"):
            row.cancel_at_period_end = False
            raise SubscriptionStateError(
                "Your subscription is not cancelled, so there is nothing to resume."
            )
        changed = self.gateway.set_cancel_at_period_end(row.id, False)
        row.cancel_at_period_end = bool(changed.get("cancel_at_period_end", False))
        self.session.flush()
        return self.overview(user)

    # -- payment methods -----------------------------------------------------------------

    def payment_methods(self, user: User) -> list[PaymentMethodOut]:
        row = self.billing.customer_of(user.id)
        if row is None:
            return []
        customer = self.gateway.customer(row.stripe_customer_id)
        default_id = object_id(
            (customer.get("invoice_settings") or {}).get("default_payment_method")
        )
        return [_card(m, default_id) for m in self.gateway.payment_methods(row.stripe_customer_id)]

    def add_payment_method(self, user: User) -> str:
        self.billing.lock_account(user.id)
        session = self.gateway.setup_checkout(
            customer_id=self.customer_id(user),
            user_id=str(user.id),
            success_url=f"{billing_page(self.settings)}/payment-methods/return?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{billing_page(self.settings)}/payment-methods/return?canceled=true",
        )
        return str(session["url"])

    def _own_method(self, user: User, method_id: str) -> tuple[str, dict[str, Any]]:
        customer_id = self.billing.customer_of(user.id)
        method = self.gateway.payment_method(method_id) if customer_id is not None else None
        if (
            customer_id is None
            or method is None
            or object_id(method.get("customer")) != customer_id.stripe_customer_id
        ):
            raise NotFoundError(
                "You have no payment method with this id; list yours with "
                "GET /api/v1/billing/payment-methods."
            )
        return customer_id.stripe_customer_id, method

    def remove_payment_method(self, user: User, method_id: str) -> None:
        customer_id, _method = self._own_method(user, method_id)
        customer = self.gateway.customer(customer_id)
        default_id = object_id(
            (customer.get("invoice_settings") or {}).get("default_payment_method")
        )
        if method_id == default_id and self.billing.open_subscription_of(user.id) is not None:
            raise PaymentMethodInUseError(
                "This card pays your subscription; make another card the default first "
                "(POST /api/v1/billing/payment-methods/{id}/default), then remove this one."
            )
        self.gateway.detach_payment_method(method_id)

    def make_default(self, user: User, method_id: str) -> list[PaymentMethodOut]:
        customer_id, _method = self._own_method(user, method_id)
        self.gateway.set_default_payment_method(customer_id, method_id)
        return self.payment_methods(user)

    # -- invoices ------------------------------------------------------------------------

    def invoices(self, user: User, limit: int) -> list[Invoice]:
        return self.billing.invoices_of(user.id, limit)
