"""The billing pages: ``/billing`` (plan, usage, plans, invoices, cards), the plan-change
confirmation, and the pages Stripe Checkout returns to.

Every action is a form that POSTs here (CSRF-checked by the layout) and calls the billing
service, as the API does; handing over to Stripe (Checkout, the Customer Portal) is a 303 to
Stripe's URL. Nothing on these pages changes a user's plan: only Stripe's webhook does
(server/billing/webhooks.py), so the return pages say what is true right now and
billing.js watches ``GET /api/v1/billing`` until the webhook has landed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Response
from notefall.common.tiers import TIERS, Tier, TierLimits, limits_for
from notefall.server.billing.errors import (
    BillingNotConfiguredError,
    NoCustomerError,
    PaymentProviderError,
    PaymentProviderUnavailableError,
    SubscriptionExistsError,
)
from notefall.server.billing.router import billing_service
from notefall.server.billing.schemas import BillingOut, PaymentMethodOut, PlanChangeOut
from notefall.server.billing.service import BillingService
from notefall.server.billing.webhooks import RANK
from notefall.server.kit.errors import ProblemError
from notefall.server.renders.service import render_usage
from notefall.server.usage import UsageService

from .layout import Page, SignedInPage

billing_pages = APIRouter(include_in_schema=False)

Billing = Annotated[BillingService, Depends(billing_service)]

# Stripe's ids, checked before Stripe is asked (as the API's path patterns do).
CHECKOUT_SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,250}$")
PAYMENT_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,200}$")
INVOICES_SHOWN = 24
STRIPE_DOWN = (PaymentProviderUnavailableError, PaymentProviderError)

# What the billing page says after an action it redirected back from (?done=...).
DONE_MESSAGES = {
    "plan_now": "Your plan change is made. Your plan here changes as soon as Stripe "
    "confirms the payment, usually within seconds.",
    "plan_scheduled": "Your plan changes at the end of the current period; you keep "
    "everything you have until then.",
    "plan_kept": "The scheduled change is undone: you stay on your plan.",
    "cancelled": "Your subscription ends at the end of the period you paid for. You keep "
    "your plan until then, and you can resume it any time before.",
    "resumed": "Your subscription continues; nothing else changes.",
    "card_default": "That card pays from now on.",
    "card_removed": "The card is removed.",
}

# The services' own words speak to API clients ("POST /api/v1/..."); on the page, the
# same refusal in terms of the page's buttons.
PAGE_WORDS = {
    SubscriptionExistsError: "You already have a subscription; switch plans with the "
    "buttons in the plans table instead of buying a second one.",
    NoCustomerError: "You have no billing account yet; it is made when you first subscribe "
    "or add a card.",
    BillingNotConfiguredError: "This Notefall server does not sell paid plans, so there is "
    "nothing to pay for here.",
}


def money(cents: int, currency: str = "usd") -> str:
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    amount = f"{abs(cents) / 100:,.2f}"
    sign = "−" if cents < 0 else ""
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency.upper()}"


def size(n_bytes: int) -> str:
    gb = 1024**3
    if n_bytes >= gb:
        return f"{n_bytes / gb:.1f} GB".replace(".0 GB", " GB")
    return f"{n_bytes / 1024**2:.0f} MB"


def day(value: datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value is not None else ""


def page_words(error: ProblemError) -> str:
    for kind, words in PAGE_WORDS.items():
        if isinstance(error, kind):
            return words
    return error.detail


@dataclass(frozen=True)
class Meter:
    """One usage figure against its limit (``limit`` None: unlimited)."""

    label: str
    used: int
    limit: int | None
    used_text: str
    limit_text: str

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used >= self.limit


@dataclass(frozen=True)
class PlanRow:
    limits: TierLimits
    # "current", "checkout", "change", "keep" (undo a scheduled change), "scheduled",
    # "cancel" (Free while subscribed: cancel at period end), or "" (no button).
    action: str
    label: str


def usage_meters(page: Page) -> list[Meter]:
    limits = limits_for(page.user.tier)
    renders = render_usage(page.session, page.user, page.request.app.state.clock())
    stored = UsageService(page.session).stored_bytes(page.user.id)
    month_limit = renders.limit
    return [
        Meter(
            "Renders this month",
            renders.used,
            month_limit,
            str(renders.used),
            "unlimited" if month_limit is None else str(month_limit),
        ),
        Meter(
            "Storage",
            stored,
            limits.storage_quota_bytes,
            size(stored),
            size(limits.storage_quota_bytes),
        ),
        Meter(
            "Renders at once",
            renders.running,
            renders.concurrent_limit,
            str(renders.running),
            str(renders.concurrent_limit),
        ),
    ]


def plan_rows(overview: BillingOut) -> list[PlanRow]:
    """Each plan with the one thing the user can do about it from where they are."""
    subscription = overview.subscription
    subscribed = subscription is not None and subscription.status in ("active", "trialing")
    blocked = subscription is not None and subscription.status in ("past_due", "unpaid", "paused")
    paid_for = subscription.tier if subscription is not None else overview.tier
    scheduled = subscription.scheduled_change if subscription is not None else None
    rows = []
    for tier, limits in TIERS.items():
        action, label = "", ""
        if not overview.available:
            action = "current" if tier.value == overview.tier else ""
            label = "Your plan" if action else ""
        elif subscribed:
            if scheduled is not None and tier.value == scheduled.tier:
                action, label = "scheduled", f"From {day(scheduled.at)}"
            elif tier.value == paid_for:
                if scheduled is not None:
                    action, label = "keep", f"Keep {limits.title}"
                else:
                    action, label = "current", "Your plan"
            elif tier is Tier.FREE:
                action, label = "cancel", "Cancel to move to Free"
            else:
                up = RANK[tier.value] > RANK[paid_for]
                action = "change"
                label = f"Upgrade to {limits.title}" if up else f"Downgrade to {limits.title}"
        elif blocked:
            action = "current" if tier.value == overview.tier else ""
            label = "Your plan" if action else ""
        elif tier.value == overview.tier:
            action, label = "current", "Your plan"
        elif tier is not Tier.FREE:
            action, label = "checkout", f"Upgrade to {limits.title}"
        rows.append(PlanRow(limits=limits, action=action, label=label))
    return rows


def _cards(service: BillingService, page: Page) -> tuple[list[PaymentMethodOut], str]:
    if not service.settings.stripe_secret_key:
        return [], ""
    try:
        return service.payment_methods(page.user), ""
    except STRIPE_DOWN:
        return (
            [],
            "Stripe does not answer right now, so your cards cannot be listed; try again in a minute.",
        )


def billing_page(
    page: Page,
    service: Billing,
    *,
    status_code: int = 200,
    error: str = "",
    done: str = "",
) -> Response:
    overview = service.overview(page.user)
    cards, cards_error = _cards(service, page)
    subscription = overview.subscription
    return page.render(
        "billing.html",
        nav="billing",
        status_code=status_code,
        overview=overview,
        plan_title=limits_for(overview.tier).title,
        subscription=subscription,
        subscription_title=limits_for(subscription.tier).title if subscription else "",
        scheduled_title=(
            limits_for(subscription.scheduled_change.tier).title
            if subscription and subscription.scheduled_change
            else ""
        ),
        plans=plan_rows(overview),
        meters=usage_meters(page),
        invoices=service.invoices(page.user, INVOICES_SHOWN),
        cards=cards,
        cards_error=cards_error,
        has_customer=service.billing.customer_of(page.user.id) is not None,
        error=error,
        done=DONE_MESSAGES.get(done, ""),
        money=money,
        day=day,
        size=size,
    )


def attempt(
    page: Page,
    service: Billing,
    action: Callable[[], Response],
) -> Response:
    """Run ``action``; a refusal shows the billing page with the reason, and undoes whatever
    the attempt had written (a savepoint: the request's transaction still commits)."""
    try:
        with page.session.begin_nested():
            return action()
    except ProblemError as error:
        return billing_page(page, service, status_code=int(error.status), error=page_words(error))


# The page ------------------------------------------------------------------------------------


@billing_pages.get("/billing")
def billing(
    page: SignedInPage,
    service: Billing,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    return billing_page(page, service, done=done)


@billing_pages.post("/billing/checkout")
def checkout(
    page: SignedInPage, service: Billing, tier: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    """Free to a paid plan: off to Stripe Checkout (the plan follows Stripe's webhook)."""
    return attempt(page, service, lambda: page.redirect(service.checkout(page.user, _tier(tier))))


def _tier(value: str) -> str:
    if value not in {t.value for t in TIERS}:
        raise _UnknownPlanError(
            f"There is no plan called {value[:20]!r}; choose one in the plans table."
        )
    return value


class _UnknownPlanError(ProblemError):
    status = 422
    code = "unknown_plan"
    title = "No such plan"


When = Literal["now", "period_end"]


def _when(value: str) -> When | None:
    if value == "now":
        return "now"
    if value == "period_end":
        return "period_end"
    return None


@billing_pages.post("/billing/change-plan")
def change_plan_preview(
    page: SignedInPage,
    service: Billing,
    tier: Annotated[str, Form(max_length=20)] = "",
    when: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Stripe's preview of the change, on a page that asks to confirm it."""

    def preview() -> Response:
        change = service.change_plan(page.user, _tier(tier), _when(when), confirm=False)
        return _confirm_page(page, service, change)

    return attempt(page, service, preview)


def _confirm_page(page: Page, service: BillingService, change: PlanChangeOut) -> Response:
    overview = service.overview(page.user)
    subscription = overview.subscription
    paid_for = subscription.tier if subscription is not None else overview.tier
    scheduled = subscription.scheduled_change if subscription is not None else None
    undo = scheduled is not None and change.tier == paid_for
    upgrade = RANK[change.tier] > RANK[paid_for]
    return page.render(
        "billing_confirm.html",
        nav="billing",
        change=change,
        title=limits_for(change.tier).title,
        current_title=limits_for(paid_for).title,
        upgrade=upgrade,
        undo=undo,
        money=money,
        day=day,
    )


@billing_pages.post("/billing/change-plan/confirm")
def change_plan_confirm(
    page: SignedInPage,
    service: Billing,
    tier: Annotated[str, Form(max_length=20)] = "",
    when: Annotated[str, Form(max_length=20)] = "",
    proration_date: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The change the user saw previewed, charged exactly as previewed (its proration
    moment goes back to Stripe); a stale preview is refused with a fresh one to look at."""

    def confirm() -> Response:
        moment = int(proration_date) if proration_date.isdigit() else None
        before = service.overview(page.user).subscription
        change = service.change_plan(
            page.user, _tier(tier), _when(when), confirm=True, proration_date=moment
        )
        undid = (
            before is not None
            and before.scheduled_change is not None
            and (change.tier == before.tier)
        )
        done = "plan_kept" if undid else ("plan_now" if change.when == "now" else "plan_scheduled")
        return page.redirect(f"/billing?done={done}")

    return attempt(page, service, confirm)


@billing_pages.post("/billing/cancel")
def cancel(page: SignedInPage, service: Billing) -> Response:
    def run() -> Response:
        service.cancel(page.user)
        return page.redirect("/billing?done=cancelled")

    return attempt(page, service, run)


@billing_pages.post("/billing/resume")
def resume(page: SignedInPage, service: Billing) -> Response:
    def run() -> Response:
        service.resume(page.user)
        return page.redirect("/billing?done=resumed")

    return attempt(page, service, run)


@billing_pages.post("/billing/portal")
def portal(page: SignedInPage, service: Billing) -> Response:
    return attempt(page, service, lambda: page.redirect(service.portal(page.user)))


@billing_pages.post("/billing/payment-methods")
def add_payment_method(page: SignedInPage, service: Billing) -> Response:
    return attempt(page, service, lambda: page.redirect(service.add_payment_method(page.user)))


def _method_id(value: str) -> str:
    if not PAYMENT_METHOD_ID.match(value):
        raise _NoSuchCardError("You have no card with this id; pick one from your list.")
    return value


class _NoSuchCardError(ProblemError):
    status = 404
    code = "not_found"
    title = "No such card"


@billing_pages.post("/billing/payment-methods/{method_id}/remove")
def remove_payment_method(method_id: str, page: SignedInPage, service: Billing) -> Response:
    def run() -> Response:
        service.remove_payment_method(page.user, _method_id(method_id))
        return page.redirect("/billing?done=card_removed")

    return attempt(page, service, run)


@billing_pages.post("/billing/payment-methods/{method_id}/default")
def default_payment_method(method_id: str, page: SignedInPage, service: Billing) -> Response:
    def run() -> Response:
        service.make_default(page.user, _method_id(method_id))
        return page.redirect("/billing?done=card_default")

    return attempt(page, service, run)


# Coming back from Stripe -----------------------------------------------------------------------


def _own_checkout(service: BillingService, page: Page, session_id: str) -> dict[str, Any] | None:
    """The Checkout session, if it is this user's; None for a made-up, foreign or unknown id.

    Read only: whatever it says, nothing here changes the plan (the webhook does)."""
    if not CHECKOUT_SESSION_ID.match(session_id) or not service.settings.stripe_secret_key:
        return None
    try:
        checkout = service.gateway.checkout_session(session_id)
    except PaymentProviderError:
        return None  # Stripe: no such session
    customer = service.billing.customer_of(page.user.id)
    owner = checkout.get("client_reference_id") or (checkout.get("metadata") or {}).get("user_id")
    customer_id = checkout.get("customer")
    if isinstance(customer_id, dict):
        customer_id = customer_id.get("id")
    mine = owner == str(page.user.id) or (
        customer is not None and customer_id == customer.stripe_customer_id
    )
    return checkout if mine else None


def _return_page(page: Page, status_code: int = 200, **context: Any) -> Response:
    return page.render("billing_return.html", nav="billing", status_code=status_code, **context)


@billing_pages.get("/billing/return")
def checkout_return(
    page: SignedInPage,
    service: Billing,
    session_id: Annotated[str, Query(max_length=300)] = "",
    canceled: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    plan = limits_for(page.user.tier).title
    if canceled == "true":
        return _return_page(
            page,
            tone="info",
            heading="No charge was made",
            message=f"You left the checkout before paying. You are still on the {plan} plan.",
        )
    try:
        checkout = _own_checkout(service, page, session_id)
    except PaymentProviderUnavailableError:
        return _return_page(
            page,
            status_code=503,
            tone="error",
            heading="We cannot check your payment right now",
            message="Stripe does not answer at the moment. If you paid, your plan changes as "
            "soon as Stripe confirms it; reload this page in a minute.",
            refresh=True,
        )
    if checkout is None or checkout.get("mode") != "subscription":
        return _return_page(
            page,
            status_code=404,
            tone="error",
            heading="We could not find this checkout",
            message="This address names no checkout of yours. Your plan is unchanged "
            f"({plan}); your billing page shows where you stand.",
        )
    target = str((checkout.get("metadata") or {}).get("tier") or "")
    title = limits_for(target).title if target in {t.value for t in TIERS} else "your new plan"
    if checkout.get("status") != "complete":
        return _return_page(
            page,
            tone="info",
            heading="This checkout is not finished",
            message=f"No payment was taken. You are still on the {plan} plan.",
        )
    if page.user.tier == target:
        return _return_page(
            page,
            tone="success",
            heading=f"You are on {title}",
            message=f"Thank you! Everything {title} includes is yours now.",
        )
    # Paid, but the webhook has not landed: say exactly that, and let billing.js watch.
    return _return_page(
        page,
        tone="pending",
        heading="Payment received",
        message=f"Your plan changes to {title} as soon as Stripe confirms the payment, "
        "usually within seconds.",
        await_tier=target,
        await_title=title,
        refresh=True,
    )


@billing_pages.get("/billing/payment-methods/return")
def payment_method_return(
    page: SignedInPage,
    service: Billing,
    session_id: Annotated[str, Query(max_length=300)] = "",
    canceled: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    if canceled == "true":
        return _return_page(
            page,
            tone="info",
            heading="No card was added",
            message="You left before saving a card; your cards are as they were.",
        )
    try:
        checkout = _own_checkout(service, page, session_id)
        cards = service.payment_methods(page.user) if checkout is not None else []
    except PaymentProviderUnavailableError:
        return _return_page(
            page,
            status_code=503,
            tone="error",
            heading="We cannot check your card right now",
            message="Stripe does not answer at the moment; reload this page in a minute.",
            refresh=True,
        )
    if checkout is None or checkout.get("mode") != "setup":
        return _return_page(
            page,
            status_code=404,
            tone="error",
            heading="We could not find this card set-up",
            message="This address names no card set-up of yours; your billing page lists "
            "your cards.",
        )
    if checkout.get("status") != "complete":
        return _return_page(
            page,
            tone="info",
            heading="No card was added",
            message="The card set-up was not finished; your cards are as they were.",
        )
    added = _added_card(service, checkout, cards)
    if added is not None:
        default = " It pays your plan from now on." if added.default else ""
        return _return_page(
            page,
            tone="success",
            heading="Your card is saved",
            message=f"{(added.brand or 'Card').title()} ending {added.last4} is on your account."
            + default,
        )
    return _return_page(
        page,
        tone="pending",
        heading="Card received",
        message="It shows in your list as soon as Stripe confirms it, usually within seconds.",
        await_cards=len(cards),
        refresh=True,
    )


def _added_card(
    service: BillingService, checkout: dict[str, Any], cards: list[PaymentMethodOut]
) -> PaymentMethodOut | None:
    intent = checkout.get("setup_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if not intent_id:
        return None
    try:
        method = service.gateway.setup_intent(str(intent_id)).get("payment_method")
    except STRIPE_DOWN:
        return None
    method_id = method.get("id") if isinstance(method, dict) else method
    return next((card for card in cards if card.id == method_id), None)
