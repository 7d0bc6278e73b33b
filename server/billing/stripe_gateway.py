"""The only module that talks to Stripe (the official ``stripe`` SDK's ``StripeClient``).

Every answer is handed back as a plain ``dict`` (the API's JSON), so the rest of billing
reads Stripe's objects one way and never holds SDK objects. Stripe's errors become
problem+json errors here: a Stripe that does not answer is 503
``payment_provider_unavailable`` (try again), a declined card 402 ``payment_declined``, and
a request Stripe refuses 502 ``payment_provider_error`` (our bug or the account's set-up;
logged with Stripe's message).

``NOTEFALL_STRIPE_API_BASE`` points the client at another address (the tests' local
Stripe-compatible server); unset, it is Stripe's own ``https://api.stripe.com``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import stripe
from notefall.common.tiers import Tier
from notefall.server.kit.settings import Settings

from .errors import (
    BillingNotConfiguredError,
    PaymentDeclinedError,
    PaymentProviderError,
    PaymentProviderUnavailableError,
)

log = logging.getLogger("notefall.server.billing")

# Stripe's SDK retries idempotent-safe failures itself (with idempotency keys it adds).
NETWORK_RETRIES = 2
# The metadata key on products and prices that names the tier (notefall.common.tiers.Tier).
TIER_METADATA = "notefall_tier"


def lookup_key(tier: Tier | str) -> str:
    """The monthly price's lookup key of ``tier``: ``notefall_pro_monthly``."""
    return f"notefall_{Tier(tier).value}_monthly"


def product_id(tier: Tier | str) -> str:
    """Our products have fixed ids, so finding one again needs no search."""
    return f"notefall_{Tier(tier).value}"


def timestamp(value: Any) -> datetime | None:
    """A Stripe Unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


def plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as the plain JSON dict it came from."""
    if obj is None:
        return {}
    if isinstance(obj, dict) and not hasattr(obj, "to_dict"):
        return obj
    return dict(obj.to_dict())


def subscription_item(subscription: dict[str, Any]) -> dict[str, Any]:
    """The subscription's one item (we sell one price per subscription)."""
    items = (subscription.get("items") or {}).get("data") or []
    return items[0] if items else {}


def subscription_period(subscription: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The current period: on the item since API version 2025-03-31, on the subscription before."""
    item = subscription_item(subscription)
    start = item.get("current_period_start", subscription.get("current_period_start"))
    end = item.get("current_period_end", subscription.get("current_period_end"))
    return timestamp(start), timestamp(end)


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: under ``parent`` since 2025-03-31, top level before."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    found = details.get("subscription") or invoice.get("subscription")
    if isinstance(found, dict):
        found = found.get("id")
    return str(found) if found else None


def object_id(value: Any) -> str | None:
    """An id from a field that holds either the id or the expanded object."""
    if isinstance(value, dict):
        return str(value["id"]) if value.get("id") else None
    return str(value) if value else None


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        if settings.stripe_secret_key is None:
            raise BillingNotConfiguredError(
                "Paid plans are not available on this server (NOTEFALL_STRIPE_SECRET_KEY is "
                "unset); ask its operator."
            )
        self.settings = settings
        base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=NETWORK_RETRIES,
        )

    # -- tiers and prices ----------------------------------------------------------------

    def price_for(self, tier: Tier) -> str:
        price = {
            Tier.PRO: self.settings.stripe_price_pro,
            Tier.ENTERPRISE: self.settings.stripe_price_enterprise,
        }.get(tier)
        if not price:
            raise BillingNotConfiguredError(
                f"The {tier.value} plan has no price on this server "
                f"(NOTEFALL_STRIPE_PRICE_{tier.value.upper()} is unset; `notefall billing "
                "sync-catalog` prints it); ask its operator."
            )
        return price

    def tier_of_price(self, price: dict[str, Any]) -> Tier | None:
        """The tier a price sells: its metadata (kept by old prices after a price change),
        then the configured price ids, then the lookup key."""
        named = (price.get("metadata") or {}).get(TIER_METADATA)
        if named in (Tier.PRO.value, Tier.ENTERPRISE.value):
            return Tier(named)
        if price.get("id") and price.get("id") == self.settings.stripe_price_pro:
            return Tier.PRO
        if price.get("id") and price.get("id") == self.settings.stripe_price_enterprise:
            return Tier.ENTERPRISE
        for tier in (Tier.PRO, Tier.ENTERPRISE):
            if price.get("lookup_key") == lookup_key(tier):
                return tier
        return None

    # -- customers -----------------------------------------------------------------------

    def create_customer(self, user_id: str, email: str, name: str) -> str:
        with _stripe_errors("create the customer"):
            customer = self.client.v1.customers.create(
                params={"email": email, "name": name, "metadata": {"user_id": user_id}},
                # One customer per user even when two checkouts race: Stripe answers the
                # second create with the first one's result (for 24 hours).
                options={"idempotency_key": f"notefall-customer-{user_id}"},
            )
        return str(customer.id)

    def customer(self, customer_id: str) -> dict[str, Any]:
        with _stripe_errors("read the customer"):
            return plain(self.client.v1.customers.retrieve(customer_id))

    # -- checkout and portal -------------------------------------------------------------

    def subscription_checkout(
        self,
        *,
        customer_id: str,
        price_id: str,
        user_id: str,
        tier: Tier,
        success_url: str,
        cancel_url: str,
    ) -> dict[str, Any]:
        metadata = {"user_id": user_id, "tier": tier.value}
        with _stripe_errors("start the checkout"):
            session = self.client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": user_id,
                    "line_items": [{"price": price_id, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "metadata": metadata,
                    "subscription_data": {"metadata": metadata},
                }
            )
        return plain(session)

    def setup_checkout(
        self, *, customer_id: str, user_id: str, success_url: str, cancel_url: str
    ) -> dict[str, Any]:
        with _stripe_errors("start adding a payment method"):
            session = self.client.v1.checkout.sessions.create(
                params={  # type: ignore[arg-type]
                    "mode": "setup",
                    "customer": customer_id,
                    "client_reference_id": user_id,
                    "payment_method_types": ["card"],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "metadata": {"user_id": user_id, "purpose": "add_payment_method"},
                }
            )
        return plain(session)

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        with _stripe_errors("read the checkout session"):
            return plain(self.client.v1.checkout.sessions.retrieve(session_id))

    def setup_intent(self, setup_intent_id: str) -> dict[str, Any]:
        with _stripe_errors("read the setup intent"):
            return plain(self.client.v1.setup_intents.retrieve(setup_intent_id))

    def portal(self, customer_id: str, return_url: str) -> str:
        with _stripe_errors("open the customer portal"):
            session = self.client.v1.billing_portal.sessions.create(
                params={"customer": customer_id, "return_url": return_url}
            )
        return str(session.url)

    # -- subscriptions -------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        with _stripe_errors("read the subscription"):
            return plain(self.client.v1.subscriptions.retrieve(subscription_id))

    def preview_price_change(
        self,
        subscription: dict[str, Any],
        price_id: str,
        proration: str,
        proration_date: int | None = None,
    ) -> dict[str, Any]:
        """Stripe's invoice preview of moving ``subscription`` to ``price_id`` with
        ``proration`` (``always_invoice``: charged now; ``none``: from the next period),
        prorated at ``proration_date`` (Unix seconds) when given."""
        item = subscription_item(subscription)
        details: dict[str, Any] = {
            "items": [{"id": item["id"], "price": price_id}],
            "proration_behavior": proration,
        }
        if proration_date is not None and proration != "none":
            details["proration_date"] = proration_date
        with _stripe_errors("preview the plan change"):
            preview = self.client.v1.invoices.create_preview(
                params={
                    "customer": object_id(subscription.get("customer")) or "",
                    "subscription": subscription["id"],
                    "subscription_details": details,
                }  # type: ignore[arg-type]
            )
        return plain(preview)

    def change_price(
        self,
        subscription: dict[str, Any],
        price_id: str,
        proration: str,
        proration_date: int | None = None,
    ) -> dict[str, Any]:
        item = subscription_item(subscription)
        params: dict[str, Any] = {
            "items": [{"id": item["id"], "price": price_id}],
            "proration_behavior": proration,
        }
        if proration_date is not None and proration != "none":
            # The moment the preview was prorated at: the charge equals what the user saw.
            params["proration_date"] = proration_date
        if proration == "always_invoice":
            # An upgrade is paid now or not made: a declined card leaves the plan as it was.
            params["payment_behavior"] = "error_if_incomplete"
        with _stripe_errors("change the plan"):
            return plain(
                self.client.v1.subscriptions.update(subscription["id"], params=params)  # type: ignore[arg-type]
            )

    def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> dict[str, Any]:
        with _stripe_errors("cancel the subscription" if cancel else "resume the subscription"):
            return plain(
                self.client.v1.subscriptions.update(
                    subscription_id, params={"cancel_at_period_end": cancel}
                )
            )

    def cancel_now(self, subscription_id: str) -> dict[str, Any]:
        """End the subscription at once (account deletion); one already ended is fine."""
        try:
            with _stripe_errors("cancel the subscription"):
                return plain(self.client.v1.subscriptions.cancel(subscription_id))
        except PaymentProviderError:
            current = self.subscription(subscription_id)
            if current.get("status") in ("canceled", "incomplete_expired"):
                return current
            raise

    # -- invoices ------------------------------------------------------------------------

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        with _stripe_errors("read the invoice"):
            return plain(self.client.v1.invoices.retrieve(invoice_id))

    # -- payment methods -----------------------------------------------------------------

    def payment_methods(self, customer_id: str) -> list[dict[str, Any]]:
        with _stripe_errors("list the payment methods"):
            listing = self.client.v1.customers.payment_methods.list(
                customer_id, params={"limit": 100}
            )
        return [plain(method) for method in listing.data]

    def payment_method(self, payment_method_id: str) -> dict[str, Any] | None:
        try:
            with _stripe_errors("read the payment method"):
                return plain(self.client.v1.payment_methods.retrieve(payment_method_id))
        except PaymentProviderError:
            return None

    def detach_payment_method(self, payment_method_id: str) -> None:
        with _stripe_errors("remove the payment method"):
            self.client.v1.payment_methods.detach(payment_method_id)

    def set_default_payment_method(self, customer_id: str, payment_method_id: str) -> None:
        with _stripe_errors("change the default payment method"):
            self.client.v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": payment_method_id}},
            )

    # -- catalog (``notefall billing sync-catalog``) ---------------------------------------

    def product(self, product: str) -> dict[str, Any] | None:
        try:
            found = self.client.v1.products.retrieve(product)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise _refused("read the product", exc) from exc
        except stripe.StripeError as exc:
            raise _translated("read the product", exc) from exc
        return plain(found)

    def create_product(self, params: dict[str, Any]) -> dict[str, Any]:
        with _stripe_errors("create the product"):
            return plain(self.client.v1.products.create(params=params))  # type: ignore[arg-type]

    def update_product(self, product: str, params: dict[str, Any]) -> dict[str, Any]:
        with _stripe_errors("update the product"):
            return plain(self.client.v1.products.update(product, params=params))  # type: ignore[arg-type]

    def price(self, price_id: str) -> dict[str, Any]:
        with _stripe_errors("read the price"):
            return plain(self.client.v1.prices.retrieve(price_id))

    def prices_with_lookup_key(self, key: str) -> list[dict[str, Any]]:
        with _stripe_errors("list the prices"):
            listing = self.client.v1.prices.list(params={"lookup_keys": [key], "limit": 10})
        return [plain(price) for price in listing.data]

    def create_price(self, params: dict[str, Any]) -> dict[str, Any]:
        with _stripe_errors("create the price"):
            return plain(self.client.v1.prices.create(params=params))  # type: ignore[arg-type]


def _refused(action: str, exc: stripe.StripeError) -> PaymentProviderError:
    log.error("Stripe refused to %s: %s", action, exc.user_message or str(exc))
    return PaymentProviderError(
        f"The payment provider refused to {action} ({exc.user_message or 'see the server log'}); "
        "nothing was changed. Try again later or contact support."
    )


def _translated(action: str, exc: stripe.StripeError) -> Exception:
    if isinstance(exc, stripe.CardError):
        return PaymentDeclinedError(
            f"Your card was declined ({exc.user_message or 'no reason given'}); nothing was "
            "changed. Add or choose another card under payment methods and try again."
        )
    if isinstance(
        exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError
    ) and not isinstance(exc, stripe.InvalidRequestError):
        log.warning("Stripe did not answer when asked to %s: %s", action, exc)
        return PaymentProviderUnavailableError(
            f"The payment provider does not answer, so we could not {action}; nothing was "
            "changed. Try again in a minute."
        )
    return _refused(action, exc)


@contextmanager
def _stripe_errors(action: str) -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise _translated(action, exc) from exc
