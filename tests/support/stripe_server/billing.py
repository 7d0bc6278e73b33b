"""Subscriptions, invoices, payments, prorations, renewals and dunning, over the ``Store``.

Proration (what Stripe does, per second): a price change at time ``t`` inside the period
``[start, end)`` credits the old item and charges the new one for the time left::

    fraction = (end - t) / (end - start)
    credit   = -round(old_unit_amount * old_quantity * fraction)   # "Unused time on ..."
    charge   =  round(new_unit_amount * new_quantity * fraction)   # "Remaining time on ..."

``t`` is ``proration_date`` when given, else the test clock's now. Both become pending invoice
items (``create_prorations``: billed on the next renewal invoice), an invoice billed at once
(``always_invoice``), or nothing (``none``). A customer's credit (negative ``balance``) is
applied to the next invoices.

Dunning: a failed renewal payment sets the subscription ``past_due`` and schedules retries
``Settings.retry_days`` days apart (default 3, 5, 7); when the last retry fails the subscription
becomes ``Settings.dunning_final`` (``canceled`` or ``unpaid``). The clock only moves with
``advance``; due renewals and retries run in time order, each at its own instant.
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime
from typing import Any

from .state import Obj, Store, StripeError, invalid

DAY = 86400

# Test card numbers and tokens (Stripe's documented ones) and how charges on them end.
CARD_NUMBERS: dict[str, tuple[str, str]] = {
    "4242424242424242": ("visa", "success"),
    "4000056655665556": ("visa", "success"),
    "5555555555554444": ("mastercard", "success"),
    "378282246310005": ("amex", "success"),
    "4000000000000002": ("visa", "declined"),
    "4000000000009995": ("visa", "declined"),
    "4000000000000341": ("visa", "declined"),
    "4000002760003184": ("visa", "requires_action"),
    "4000002500003155": ("visa", "requires_action"),
}
CARD_TOKENS: dict[str, tuple[str, str]] = {
    "tok_visa": ("visa", "success"),
    "tok_mastercard": ("mastercard", "success"),
    "tok_amex": ("amex", "success"),
    "tok_chargeDeclined": ("visa", "declined"),
    "tok_chargeCustomerFail": ("visa", "declined"),
    "tok_chargeDeclinedInsufficientFunds": ("visa", "declined"),
    "tok_threeDSecureRequired": ("visa", "requires_action"),
}
# ``pm_card_*`` shortcuts accepted wherever a payment method id is: each use makes a new one.
PM_SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "pm_card_visa": ("visa", "4242", "success"),
    "pm_card_mastercard": ("mastercard", "4444", "success"),
    "pm_card_amex": ("amex", "0005", "success"),
    "pm_card_chargeDeclined": ("visa", "0002", "declined"),
    "pm_card_chargeCustomerFail": ("visa", "0341", "declined"),
    "pm_card_authenticationRequired": ("visa", "3184", "requires_action"),
    "pm_card_threeDSecureRequired": ("visa", "3155", "requires_action"),
}
LAST4_BY_OUTCOME = {"success": "4242", "declined": "0002", "requires_action": "3184"}
OUTCOMES = ("success", "declined", "requires_action")


# ---- time -------------------------------------------------------------------------------


def add_interval(start: int, interval: str, count: int) -> int:
    moment = datetime.fromtimestamp(start, UTC)
    if interval == "day":
        return start + count * DAY
    if interval == "week":
        return start + count * 7 * DAY
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


# ---- payment methods --------------------------------------------------------------------


def new_payment_method(
    store: Store, brand: str, last4: str, outcome: str, *, exp_month: int = 12, exp_year: int = 0
) -> Obj:
    now_year = datetime.fromtimestamp(store.now(), UTC).year
    pm = store.base(
        "pm",
        "payment_method",
        type="card",
        allow_redisplay="unspecified",
        billing_details={
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
        },
        card={
            "brand": brand,
            "display_brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "exp_month": exp_month,
            "exp_year": exp_year or now_year + 3,
            "fingerprint": store.new_id("fp")[3:19],
            "funding": "credit",
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "wallet": None,
        },
        customer=None,
        metadata={},
    )
    store.add(pm)
    store.card_outcomes[pm["id"]] = outcome
    return pm


def resolve_payment_method(store: Store, pm_id: str, param: str) -> Obj:
    """An existing payment method, or a new one for a ``pm_card_*`` shortcut."""
    if pm_id in PM_SHORTCUTS:
        brand, last4, outcome = PM_SHORTCUTS[pm_id]
        return new_payment_method(store, brand, last4, outcome)
    return store.get(pm_id, "payment_method", "PaymentMethod", param)


def attach(store: Store, pm: Obj, customer: Obj) -> None:
    if pm["customer"] == customer["id"]:
        return
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            "payment_method",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = customer["id"]
    store.emit("payment_method.attached", pm)


def default_payment_method(store: Store, subscription: Obj | None, customer: Obj) -> str | None:
    if subscription is not None and subscription.get("default_payment_method"):
        return str(subscription["default_payment_method"])
    value = customer["invoice_settings"].get("default_payment_method")
    return str(value) if value else None


def card_declined(message: str = "Your card was declined.") -> StripeError:
    return StripeError(
        402,
        message,
        type="card_error",
        code="card_declined",
        decline_code="generic_decline",
    )


# ---- customers --------------------------------------------------------------------------


def customer_of(store: Store, customer_id: str) -> Obj:
    return store.get(customer_id, "customer", "customer", "customer")


def new_customer(store: Store, email: str | None = None, name: str | None = None) -> Obj:
    prefix = store.new_id("x")[2:10].upper()
    customer = store.base(
        "cus",
        "customer",
        address=None,
        balance=0,
        currency=None,
        default_source=None,
        delinquent=False,
        description=None,
        discount=None,
        email=email,
        invoice_prefix=prefix,
        invoice_settings={
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        metadata={},
        name=name,
        next_invoice_sequence=1,
        phone=None,
        preferred_locales=[],
        shipping=None,
        tax_exempt="none",
        test_clock=None,
    )
    return store.add(customer)


# ---- subscriptions ----------------------------------------------------------------------


def price_of(store: Store, price_id: str, param: str) -> Obj:
    return store.get(price_id, "price", "price", param)


def new_item(store: Store, subscription_id: str, price: Obj, quantity: int, start: int) -> Obj:
    recurring = price["recurring"]
    return store.base(
        "si",
        "subscription_item",
        current_period_start=start,
        current_period_end=add_interval(start, recurring["interval"], recurring["interval_count"]),
        discounts=[],
        metadata={},
        plan=legacy_plan(price),
        price=copy.deepcopy(price),
        quantity=quantity,
        subscription=subscription_id,
        tax_rates=[],
    )


def legacy_plan(price: Obj) -> Obj:
    """The pre-2018 ``plan`` view of a recurring price some code still reads."""
    recurring = price["recurring"] or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "product": price["product"],
        "nickname": price.get("nickname"),
        "metadata": price.get("metadata", {}),
        "livemode": False,
        "created": price["created"],
    }


def new_subscription(
    store: Store,
    customer: Obj,
    lines: list[tuple[Obj, int]],
    *,
    metadata: dict[str, str],
    default_payment_method: str | None,
    description: str | None = None,
) -> Obj:
    now = store.now()
    currency = lines[0][0]["currency"]
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p, _ in lines}
    if len(intervals) > 1:
        raise invalid(
            "All prices on a subscription must have the same recurring interval.", "items"
        )
    subscription = store.base(
        "sub",
        "subscription",
        application=None,
        automatic_tax={"enabled": False, "liability": None},
        billing_cycle_anchor=now,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically",
        currency=currency,
        customer=customer["id"],
        days_until_due=None,
        default_payment_method=default_payment_method,
        description=description,
        discounts=[],
        ended_at=None,
        latest_invoice=None,
        metadata=metadata,
        pause_collection=None,
        pending_setup_intent=None,
        pending_update=None,
        schedule=None,
        start_date=now,
        status="incomplete",
        test_clock=None,
        trial_end=None,
        trial_start=None,
    )
    items = [new_item(store, subscription["id"], price, qty, now) for price, qty in lines]
    for item in items:
        store.add(item)
    subscription["items"] = {
        "object": "list",
        "data": items,
        "has_more": False,
        "total_count": len(items),
        "url": f"/v1/subscription_items?subscription={subscription['id']}",
    }
    sync_periods(subscription)
    return store.add(subscription)


def sync_periods(subscription: Obj) -> None:
    """Mirror the first item's period and price on the subscription (pre-2025 fields)."""
    items = subscription["items"]["data"]
    subscription["items"]["total_count"] = len(items)
    if items:
        subscription["current_period_start"] = items[0]["current_period_start"]
        subscription["current_period_end"] = items[0]["current_period_end"]
        subscription["plan"] = items[0]["plan"]
        subscription["quantity"] = items[0]["quantity"]


def set_status(store: Store, subscription: Obj, status: str) -> Obj | None:
    """Change the status; the ``previous_attributes`` for the update event, if it changed."""
    if subscription["status"] == status:
        return None
    previous = {"status": subscription["status"]}
    subscription["status"] = status
    return previous


def end_subscription(store: Store, subscription: Obj, reason: str, at: int | None = None) -> None:
    now = store.now() if at is None else at
    subscription["status"] = "canceled"
    subscription["ended_at"] = now
    subscription["canceled_at"] = subscription["canceled_at"] or now
    subscription["cancellation_details"]["reason"] = reason
    # Pending prorations of an ended subscription are never billed, nor its open invoices retried.
    for invoice in store.all("invoice"):
        if invoice["subscription"] == subscription["id"] and invoice["status"] == "open":
            invoice["next_payment_attempt"] = None
    for item in store.all("invoiceitem"):
        if item["invoice"] is None and item_subscription(item) == subscription["id"]:
            item["deleted_pending"] = True
    store.emit("customer.subscription.deleted", subscription)


def item_subscription(invoice_item: Obj) -> str | None:
    details = (invoice_item.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription")


# ---- prorations -------------------------------------------------------------------------


# (subscription item id, old price, new price, old quantity, new quantity)
Change = tuple[str, Obj | None, Obj | None, int, int]


def proration_lines(store: Store, subscription: Obj, changes: list[Change], at: int) -> list[Obj]:
    """Unsaved invoice items for each price or quantity change at ``at``."""
    start = subscription["current_period_start"]
    end = subscription["current_period_end"]
    if not start <= at <= end:
        raise invalid(
            "proration_date must be within the subscription's current period.", "proration_date"
        )
    fraction = (end - at) / (end - start) if end > start else 0.0
    when = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    items: list[Obj] = []
    for item_id, old_price, new_price, old_qty, new_qty in changes:
        if old_price is not None and old_qty:
            amount = -round(old_price["unit_amount"] * old_qty * fraction)
            items.append(
                _invoice_item(
                    store,
                    subscription,
                    item_id,
                    old_price,
                    old_qty,
                    amount,
                    f"Unused time on {product_name(store, old_price)} after {when}",
                    at,
                    end,
                )
            )
        if new_price is not None and new_qty:
            amount = round(new_price["unit_amount"] * new_qty * fraction)
            items.append(
                _invoice_item(
                    store,
                    subscription,
                    item_id,
                    new_price,
                    new_qty,
                    amount,
                    f"Remaining time on {new_qty} × {product_name(store, new_price)} after {when}",
                    at,
                    end,
                )
            )
    return items


def product_name(store: Store, price: Obj) -> str:
    product = store.objects.get(price["product"])
    return str(product["name"]) if product else str(price["product"])


def _invoice_item(
    store: Store,
    subscription: Obj,
    item_id: str,
    price: Obj,
    quantity: int,
    amount: int,
    description: str,
    start: int,
    end: int,
) -> Obj:
    return store.base(
        "ii",
        "invoiceitem",
        amount=amount,
        currency=price["currency"],
        customer=subscription["customer"],
        date=store.now(),
        description=description,
        discountable=False,
        discounts=[],
        invoice=None,
        metadata={},
        parent={
            "type": "subscription_details",
            "subscription_details": {
                "subscription": subscription["id"],
                "subscription_item": item_id,
            },
        },
        period={"start": start, "end": end},
        pricing={
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": str(price["unit_amount"]),
        },
        proration=True,
        quantity=quantity,
        subscription=subscription["id"],
        test_clock=None,
    )


def pending_items(store: Store, customer_id: str, subscription_id: str | None) -> list[Obj]:
    return [
        item
        for item in store.all("invoiceitem")
        if item["invoice"] is None
        and not item.get("deleted_pending")
        and item["customer"] == customer_id
        and (subscription_id is None or item_subscription(item) in (None, subscription_id))
    ]


# ---- invoices ---------------------------------------------------------------------------


def _line(
    store: Store,
    *,
    amount: int,
    currency: str,
    description: str,
    period: Obj,
    price: Obj,
    quantity: int,
    subscription: Obj | None,
    subscription_item: str | None,
    proration: bool,
    invoice_item: str | None,
) -> Obj:
    line = store.base(
        "il",
        "line_item",
        amount=amount,
        currency=currency,
        description=description,
        discount_amounts=[],
        discountable=not proration,
        discounts=[],
        invoice=None,
        metadata={},
        parent={
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": invoice_item,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"] if subscription else None,
                "subscription_item": subscription_item,
            },
        },
        period=period,
        pretax_credit_amounts=[],
        pricing={
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": str(price["unit_amount"]),
        },
        # Pre-2025 fields, kept for code written against older API versions.
        price=copy.deepcopy(price),
        proration=proration,
        quantity=quantity,
        subscription=subscription["id"] if subscription else None,
        taxes=[],
    )
    del line["created"]
    return line


def line_from_item(store: Store, invoice_item: Obj, subscription: Obj | None) -> Obj:
    price = store.objects[invoice_item["pricing"]["price_details"]["price"]]
    details = invoice_item["parent"]["subscription_details"]
    return _line(
        store,
        amount=invoice_item["amount"],
        currency=invoice_item["currency"],
        description=invoice_item["description"],
        period=dict(invoice_item["period"]),
        price=price,
        quantity=invoice_item["quantity"],
        subscription=subscription,
        subscription_item=details.get("subscription_item"),
        proration=bool(invoice_item["proration"]),
        invoice_item=invoice_item["id"],
    )


def period_lines(store: Store, subscription: Obj, start: int, items: list[Obj]) -> list[Obj]:
    """One line per subscription item for the period starting at ``start``."""
    lines = []
    for item in items:
        price = item["price"]
        recurring = price["recurring"]
        end = add_interval(start, recurring["interval"], recurring["interval_count"])
        amount = price["unit_amount"] * item["quantity"]
        lines.append(
            _line(
                store,
                amount=amount,
                currency=price["currency"],
                description=f"{item['quantity']} × {product_name(store, price)} "
                f"(at {money(price['unit_amount'], price['currency'])} / {recurring['interval']})",
                period={"start": start, "end": end},
                price=price,
                quantity=item["quantity"],
                subscription=subscription,
                subscription_item=item["id"],
                proration=False,
                invoice_item=None,
            )
        )
    return lines


def invoice_shape(
    store: Store,
    customer: Obj,
    subscription: Obj | None,
    lines: list[Obj],
    billing_reason: str,
    *,
    invoice_id: str | None = None,
) -> Obj:
    """A draft invoice (not stored) with totals and the customer's balance applied."""
    currency = lines[0]["currency"] if lines else (subscription or {}).get("currency") or "usd"
    total = sum(line["amount"] for line in lines)
    balance = customer["balance"]
    applied = total + balance
    amount_due = max(0, applied)
    period_start = min((line["period"]["start"] for line in lines), default=store.now())
    period_end = max((line["period"]["end"] for line in lines), default=store.now())
    if subscription is not None:
        # Stripe's invoice period is the period that just ended (or the start instant).
        period_start = subscription["current_period_start"]
        period_end = subscription["current_period_start"]
    invoice = store.base(
        "in",
        "invoice",
        account_country="US",
        account_name="Notefall test account",
        amount_due=amount_due,
        amount_overpaid=0,
        amount_paid=0,
        amount_remaining=amount_due,
        amount_shipping=0,
        attempt_count=0,
        attempted=False,
        auto_advance=True,
        automatic_tax={"enabled": False, "liability": None, "status": None},
        billing_reason=billing_reason,
        collection_method="charge_automatically",
        currency=currency,
        customer=customer["id"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        default_payment_method=None,
        description=None,
        discounts=[],
        due_date=None,
        effective_at=None,
        ending_balance=None,
        hosted_invoice_url=None,
        invoice_pdf=None,
        last_finalization_error=None,
        lines={"object": "list", "data": lines, "has_more": False, "total_count": len(lines)},
        metadata={},
        next_payment_attempt=None,
        number=None,
        parent=(
            {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(subscription["metadata"]),
                    "subscription": subscription["id"],
                },
            }
            if subscription is not None
            else None
        ),
        payment_intent=None,
        period_end=period_end,
        period_start=period_start,
        starting_balance=balance,
        status="draft",
        status_transitions={
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        subscription=subscription["id"] if subscription is not None else None,
        subtotal=total,
        subtotal_excluding_tax=total,
        test_clock=None,
        total=total,
        total_excluding_tax=total,
        total_taxes=[],
        webhooks_delivered_at=None,
    )
    if invoice_id is not None:
        invoice["id"] = invoice_id
    invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
    for line in lines:
        line["invoice"] = invoice["id"]
    return invoice


def create_invoice(
    store: Store,
    customer: Obj,
    subscription: Obj | None,
    lines: list[Obj],
    billing_reason: str,
    invoice_items: list[Obj],
    period: tuple[int, int] | None = None,
) -> Obj:
    invoice = invoice_shape(store, customer, subscription, lines, billing_reason)
    if period is not None:
        invoice["period_start"], invoice["period_end"] = period
    for item in invoice_items:
        item["invoice"] = invoice["id"]
    store.add(invoice)
    store.emit("invoice.created", invoice)
    return invoice


def finalize(store: Store, invoice: Obj) -> None:
    customer = store.objects[invoice["customer"]]
    applied = invoice["total"] + customer["balance"]
    invoice["starting_balance"] = customer["balance"]
    invoice["ending_balance"] = min(0, applied) if customer["balance"] <= 0 or applied < 0 else 0
    customer["balance"] = invoice["ending_balance"]
    invoice["amount_due"] = invoice["amount_remaining"] = max(0, applied)
    invoice["status"] = "open"
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    now = store.now()
    invoice["effective_at"] = now
    invoice["status_transitions"]["finalized_at"] = now
    invoice["hosted_invoice_url"] = f"{store.base_url}/invoices/{invoice['id']}"
    invoice["invoice_pdf"] = f"{store.base_url}/invoices/{invoice['id']}/pdf"
    store.emit("invoice.finalized", invoice)


def attempt_payment(
    store: Store, invoice: Obj, payment_method: str | None = None
) -> tuple[str, Obj | None]:
    """Charge an open invoice: ("success" | "declined" | "requires_action", payment intent)."""
    customer = store.objects[invoice["customer"]]
    subscription = store.objects.get(invoice["subscription"] or "")
    invoice["attempted"] = True
    if invoice["amount_due"] == 0:
        _mark_paid(store, invoice, None)
        return "success", None
    pm_id = payment_method or default_payment_method(store, subscription, customer)
    outcome = store.card_outcomes.get(pm_id, "declined") if pm_id else "declined"
    invoice["attempt_count"] += 1
    intent = store.base(
        "pi",
        "payment_intent",
        amount=invoice["amount_due"],
        amount_received=0,
        currency=invoice["currency"],
        customer=customer["id"],
        description=f"Payment for Invoice {invoice['number']}",
        invoice=invoice["id"],
        last_payment_error=None,
        metadata={},
        next_action=None,
        payment_method=pm_id,
        payment_method_types=["card"],
        status="requires_payment_method",
    )
    store.add(intent)
    invoice["payment_intent"] = intent["id"]
    if outcome == "success":
        intent["status"] = "succeeded"
        intent["amount_received"] = intent["amount"]
        _mark_paid(store, invoice, intent)
        store.emit("payment_intent.succeeded", intent)
        return outcome, intent
    if outcome == "requires_action":
        intent["status"] = "requires_action"
        intent["next_action"] = {
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect"},
        }
        store.emit("invoice.payment_action_required", invoice)
        store.emit("payment_intent.requires_action", intent)
        return outcome, intent
    intent["last_payment_error"] = {
        "type": "card_error",
        "code": "card_declined" if pm_id else "payment_method_missing",
        "decline_code": "generic_decline" if pm_id else None,
        "message": "Your card was declined." if pm_id else "No payment method on file.",
        "payment_method": store.objects.get(pm_id or ""),
    }
    store.emit("invoice.payment_failed", invoice)
    store.emit("payment_intent.payment_failed", intent)
    return "declined", intent


def _mark_paid(store: Store, invoice: Obj, intent: Obj | None) -> None:
    now = store.now()
    invoice["status"] = "paid"
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = now
    if intent is not None:
        invoice["payments"] = {
            "object": "list",
            "data": [
                {
                    "id": store.new_id("inpay"),
                    "object": "invoice_payment",
                    "amount_paid": invoice["amount_paid"],
                    "amount_requested": invoice["amount_due"],
                    "created": now,
                    "currency": invoice["currency"],
                    "invoice": invoice["id"],
                    "is_default": True,
                    "livemode": False,
                    "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                    "status": "paid",
                    "status_transitions": {"canceled_at": None, "paid_at": now},
                }
            ],
            "has_more": False,
            "url": f"/v1/invoice_payments?invoice={invoice['id']}",
        }
    store.emit("invoice.paid", invoice)
    store.emit("invoice.payment_succeeded", invoice)


def charge_new_invoice(store: Store, invoice: Obj, subscription: Obj | None) -> None:
    """Finalize and charge a new invoice, then set the subscription's status: on a failure
    dunning starts (or, with no retries configured, ends at once)."""
    finalize(store, invoice)
    outcome, _intent = attempt_payment(store, invoice)
    if subscription is not None:
        subscription["latest_invoice"] = invoice["id"]
    more = outcome == "success" or schedule_retry(store, invoice)
    after_payment(store, invoice, outcome, final=not more)


def schedule_retry(store: Store, invoice: Obj) -> bool:
    """Set the next automatic attempt; False when the retries are used up."""
    retries_done = invoice["attempt_count"] - 1
    days = store.settings.retry_days
    if retries_done < len(days):
        invoice["next_payment_attempt"] = store.now() + days[retries_done] * DAY
        return True
    invoice["next_payment_attempt"] = None
    return False


def after_payment(store: Store, invoice: Obj, outcome: str, *, final: bool = False) -> None:
    """Subscription status after a payment attempt on one of its invoices."""
    subscription = store.objects.get(invoice["subscription"] or "")
    if subscription is None or subscription["status"] == "canceled":
        return
    previous: Obj | None
    if outcome == "success":
        if subscription["latest_invoice"] == invoice["id"] or subscription["status"] in (
            "past_due",
            "unpaid",
            "incomplete",
        ):
            previous = set_status(store, subscription, "active")
            if previous:
                store.emit("customer.subscription.updated", subscription, previous)
        return
    if subscription["status"] == "incomplete":
        return
    if final:
        if store.settings.dunning_final == "unpaid":
            previous = set_status(store, subscription, "unpaid")
            if previous:
                store.emit("customer.subscription.updated", subscription, previous)
        else:
            end_subscription(store, subscription, "payment_failed")
        return
    previous = set_status(store, subscription, "past_due")
    if previous:
        store.emit("customer.subscription.updated", subscription, previous)


def pay_invoice(store: Store, invoice: Obj, payment_method: str | None) -> Obj:
    """``POST /v1/invoices/{id}/pay``: charge now; a decline raises Stripe's 402 card error."""
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid")
    if invoice["status"] != "open":
        raise invalid(
            f"You can only pay an invoice that is open; this one is {invoice['status']}.",
            code="invoice_not_editable",
        )
    outcome, _intent = attempt_payment(store, invoice, payment_method)
    after_payment(store, invoice, outcome)
    if outcome == "requires_action":
        raise StripeError(
            402,
            "This payment requires additional user action before it can be completed.",
            type="card_error",
            code="authentication_required",
            decline_code="authentication_required",
        )
    if outcome != "success":
        raise card_declined()
    return invoice


# ---- the clock --------------------------------------------------------------------------


def advance(store: Store, target: int) -> None:
    """Move the test clock to ``target``, running every renewal and retry due on the way."""
    while True:
        due = _next_due(store, target)
        if due is None:
            break
        when, action, obj = due
        store.clock_offset = max(store.clock_offset, when - _wall(store))
        action(store, obj)
    store.clock_offset = max(store.clock_offset, target - _wall(store))


def _wall(store: Store) -> int:
    return store.now() - store.clock_offset


def _next_due(store: Store, target: int) -> tuple[int, Any, Obj] | None:
    candidates: list[tuple[int, int, Any, Obj]] = []
    for order, subscription in enumerate(store.all("subscription")):
        status = subscription["status"]
        if status in ("active", "past_due", "trialing"):
            cancel_at = subscription["cancel_at"]
            period_end = subscription["current_period_end"]
            if cancel_at is not None and cancel_at <= min(target, period_end):
                candidates.append((cancel_at, order, _cancel_scheduled, subscription))
            elif period_end <= target:
                candidates.append((subscription["current_period_end"], order, _renew, subscription))
    for order, invoice in enumerate(store.all("invoice")):
        attempt_at = invoice["next_payment_attempt"]
        if invoice["status"] == "open" and attempt_at is not None and attempt_at <= target:
            candidates.append((attempt_at, order, _retry, invoice))
    for order, session in enumerate(store.all("checkout.session")):
        if session["status"] == "open" and session["expires_at"] <= target:
            candidates.append((session["expires_at"], order, _expire_session, session))
    if not candidates:
        return None
    when, _order, action, obj = min(candidates, key=lambda c: (c[0], c[1]))
    return when, action, obj


def _expire_session(store: Store, session: Obj) -> None:
    session["status"] = "expired"
    session["url"] = None
    store.emit("checkout.session.expired", session)


def _cancel_scheduled(store: Store, subscription: Obj) -> None:
    reason = "cancellation_requested"
    end_subscription(store, subscription, reason, at=subscription["cancel_at"])


def _renew(store: Store, subscription: Obj) -> None:
    start = subscription["current_period_end"]
    ended = (subscription["current_period_start"], start)
    previous = {
        "current_period_start": subscription["current_period_start"],
        "current_period_end": subscription["current_period_end"],
        "items": copy.deepcopy(subscription["items"]),
        "latest_invoice": subscription["latest_invoice"],
    }
    for item in subscription["items"]["data"]:
        recurring = item["price"]["recurring"]
        item["current_period_start"] = start
        item["current_period_end"] = add_interval(
            start, recurring["interval"], recurring["interval_count"]
        )
    sync_periods(subscription)
    customer = store.objects[subscription["customer"]]
    extra = pending_items(store, customer["id"], subscription["id"])
    lines = [line_from_item(store, item, subscription) for item in extra]
    lines += period_lines(store, subscription, start, subscription["items"]["data"])
    # As Stripe: a renewal invoice's period is the one that just ended; its lines, the new one.
    invoice = create_invoice(
        store, customer, subscription, lines, "subscription_cycle", extra, period=ended
    )
    subscription["latest_invoice"] = invoice["id"]
    store.emit("customer.subscription.updated", subscription, previous)
    charge_new_invoice(store, invoice, subscription)


def _retry(store: Store, invoice: Obj) -> None:
    outcome, _intent = attempt_payment(store, invoice)
    if outcome == "success":
        after_payment(store, invoice, outcome)
        return
    more = schedule_retry(store, invoice)
    after_payment(store, invoice, outcome, final=not more)
