"""The ``/v1`` endpoints: each handler reads decoded params and returns the object to send.

Handlers run under ``Store.lock``. The dispatcher (``app.py``) refuses unknown top-level
parameters as Stripe does (400 ``parameter_unknown``), applies ``expand[]`` and records
idempotent replies.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import billing
from .forms import as_bool, as_dict, as_int, as_list, metadata
from .state import Obj, Store, StripeError, invalid, missing_param, no_such

Handler = Callable[..., Obj]

LIST_PARAMS = {"limit", "starting_after", "ending_before"}


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    allowed: frozenset[str]


ROUTES: list[Route] = []


def route(
    method: str, path: str, allowed: set[str] | frozenset[str] = frozenset()
) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, pattern, handler, frozenset(allowed) | {"expand"}))
        return handler

    return register


def required(params: Obj, name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise missing_param(name)
    return value


def updated_event(store: Store, obj: Obj, before: Obj, event_type: str) -> None:
    """Emit ``*.updated`` with the changed top-level fields as ``previous_attributes``."""
    previous = {key: value for key, value in before.items() if obj.get(key) != value}
    if previous:
        store.emit(event_type, obj, previous)


# ---- products ---------------------------------------------------------------------------

PRODUCT_FIELDS = {
    "name",
    "active",
    "description",
    "metadata",
    "statement_descriptor",
    "unit_label",
    "url",
    "images",
    "marketing_features",
    "tax_code",
}


@route("POST", "/v1/products", PRODUCT_FIELDS | {"id", "default_price_data", "type"})
def create_product(store: Store, params: Obj) -> Obj:
    name = required(params, "name")
    product = store.base(
        "prod",
        "product",
        active=as_bool(params.get("active", True), "active"),
        default_price=None,
        description=params.get("description") or None,
        images=as_list(params.get("images"), "images"),
        marketing_features=as_list(params.get("marketing_features"), "marketing_features"),
        metadata=metadata(params.get("metadata")),
        name=name,
        package_dimensions=None,
        shippable=None,
        statement_descriptor=params.get("statement_descriptor") or None,
        tax_code=params.get("tax_code") or None,
        type="service",
        unit_label=params.get("unit_label") or None,
        url=params.get("url") or None,
    )
    product["updated"] = product["created"]
    if params.get("id"):
        if params["id"] in store.objects:
            raise invalid("Product already exists.", "id", code="resource_already_exists")
        product["id"] = params["id"]
    store.add(product)
    store.emit("product.created", product)
    if params.get("default_price_data"):
        data = as_dict(params["default_price_data"], "default_price_data")
        price = _new_price(store, {**data, "product": product["id"]})
        product["default_price"] = price["id"]
    return product


@route("GET", "/v1/products/{id}")
def get_product(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "product", "product")


@route("POST", "/v1/products/{id}", PRODUCT_FIELDS | {"default_price"})
def update_product(store: Store, params: Obj, id: str) -> Obj:
    product = store.get(id, "product", "product")
    before = copy.deepcopy(product)
    for key in ("name", "description", "statement_descriptor", "unit_label", "url", "tax_code"):
        if key in params:
            product[key] = params[key] or None
    if "name" in params and not params["name"]:
        raise invalid("A product needs a name.", "name")
    if "active" in params:
        product["active"] = as_bool(params["active"], "active")
    if "metadata" in params:
        product["metadata"] = metadata(params["metadata"], product["metadata"])
    if "default_price" in params:
        price = store.get(params["default_price"], "price", "price", "default_price")
        product["default_price"] = price["id"]
    if "marketing_features" in params:
        product["marketing_features"] = as_list(params["marketing_features"], "marketing_features")
    product["updated"] = store.now()
    updated_event(store, product, before, "product.updated")
    return product


@route("GET", "/v1/products", LIST_PARAMS | {"active", "ids", "created", "shippable", "url"})
def list_products(store: Store, params: Obj) -> Obj:
    items = store.all("product")
    if "active" in params:
        active = as_bool(params["active"], "active")
        items = [p for p in items if p["active"] == active]
    if "ids" in params:
        ids = set(as_list(params["ids"], "ids"))
        items = [p for p in items if p["id"] in ids]
    return store.list_reply(items, params, "/v1/products")


# ---- prices -----------------------------------------------------------------------------


def _new_price(store: Store, params: Obj) -> Obj:
    currency = str(required(params, "currency")).lower()
    if "product" in params:
        product = store.get(params["product"], "product", "product", "product")
    elif "product_data" in params:
        data = as_dict(params["product_data"], "product_data")
        product = create_product(
            store, {"name": required(data, "name"), "metadata": data.get("metadata")}
        )
    else:
        raise missing_param("product")
    if "unit_amount" not in params and "unit_amount_decimal" not in params:
        raise missing_param("unit_amount")
    unit_amount = as_int(
        params.get("unit_amount", params.get("unit_amount_decimal")), "unit_amount"
    )
    if unit_amount < 0:
        raise invalid("This value must be greater than or equal to 0.", "unit_amount")
    recurring = None
    if params.get("recurring"):
        data = as_dict(params["recurring"], "recurring")
        interval = required(data, "interval")
        if interval not in ("day", "week", "month", "year"):
            raise invalid(
                "Invalid recurring[interval]: must be one of day, week, month, or year",
                "recurring[interval]",
            )
        recurring = {
            "interval": interval,
            "interval_count": as_int(data.get("interval_count", 1), "recurring[interval_count]"),
            "meter": None,
            "trial_period_days": None,
            "usage_type": data.get("usage_type", "licensed"),
        }
    lookup_key = params.get("lookup_key") or None
    if lookup_key:
        _claim_lookup_key(
            store,
            lookup_key,
            as_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key"),
        )
    price = store.base(
        "price",
        "price",
        active=as_bool(params.get("active", True), "active"),
        billing_scheme="per_unit",
        currency=currency,
        custom_unit_amount=None,
        lookup_key=lookup_key,
        metadata=metadata(params.get("metadata")),
        nickname=params.get("nickname") or None,
        product=product["id"],
        recurring=recurring,
        tax_behavior=params.get("tax_behavior", "unspecified"),
        tiers_mode=None,
        transform_quantity=None,
        type="recurring" if recurring else "one_time",
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
    )
    store.add(price)
    store.emit("price.created", price)
    return price


def _claim_lookup_key(
    store: Store, lookup_key: str, transfer: bool, keep: str | None = None
) -> None:
    for other in store.all("price"):
        if other["lookup_key"] == lookup_key and other["id"] != keep:
            if not transfer:
                raise invalid(
                    f"A price (`{other['id']}`) already uses that lookup key.",
                    "lookup_key",
                )
            before = copy.deepcopy(other)
            other["lookup_key"] = None
            updated_event(store, other, before, "price.updated")


PRICE_FIELDS = {
    "currency",
    "product",
    "product_data",
    "unit_amount",
    "unit_amount_decimal",
    "recurring",
    "lookup_key",
    "transfer_lookup_key",
    "nickname",
    "metadata",
    "active",
    "tax_behavior",
    "billing_scheme",
}


@route("POST", "/v1/prices", PRICE_FIELDS)
def create_price(store: Store, params: Obj) -> Obj:
    return _new_price(store, params)


@route("GET", "/v1/prices/{id}")
def get_price(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "price", "price")


@route(
    "POST",
    "/v1/prices/{id}",
    {"active", "lookup_key", "transfer_lookup_key", "metadata", "nickname", "tax_behavior"},
)
def update_price(store: Store, params: Obj, id: str) -> Obj:
    price = store.get(id, "price", "price")
    before = copy.deepcopy(price)
    if "lookup_key" in params:
        key = params["lookup_key"] or None
        if key:
            _claim_lookup_key(
                store,
                key,
                as_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key"),
                keep=price["id"],
            )
        price["lookup_key"] = key
    if "active" in params:
        price["active"] = as_bool(params["active"], "active")
    if "metadata" in params:
        price["metadata"] = metadata(params["metadata"], price["metadata"])
    if "nickname" in params:
        price["nickname"] = params["nickname"] or None
    updated_event(store, price, before, "price.updated")
    return price


@route(
    "GET",
    "/v1/prices",
    LIST_PARAMS | {"active", "currency", "lookup_keys", "product", "type", "recurring", "created"},
)
def list_prices(store: Store, params: Obj) -> Obj:
    items = store.all("price")
    if "active" in params:
        active = as_bool(params["active"], "active")
        items = [p for p in items if p["active"] == active]
    if "lookup_keys" in params:
        keys = set(as_list(params["lookup_keys"], "lookup_keys"))
        items = [p for p in items if p["lookup_key"] in keys]
    if "product" in params:
        items = [p for p in items if p["product"] == params["product"]]
    if "currency" in params:
        items = [p for p in items if p["currency"] == str(params["currency"]).lower()]
    if "type" in params:
        items = [p for p in items if p["type"] == params["type"]]
    if "recurring" in params:
        wanted = as_dict(params["recurring"], "recurring").get("interval")
        items = [
            p
            for p in items
            if p["recurring"] and (wanted is None or p["recurring"]["interval"] == wanted)
        ]
    return store.list_reply(items, params, "/v1/prices")


# ---- customers --------------------------------------------------------------------------

CUSTOMER_FIELDS = {
    "email",
    "name",
    "description",
    "metadata",
    "phone",
    "invoice_settings",
    "payment_method",
    "address",
    "preferred_locales",
    "balance",
}


def _apply_customer(store: Store, customer: Obj, params: Obj) -> None:
    for key in ("email", "name", "description", "phone"):
        if key in params:
            customer[key] = params[key] or None
    if "metadata" in params:
        customer["metadata"] = metadata(params["metadata"], customer["metadata"])
    if "address" in params:
        customer["address"] = as_dict(params["address"], "address") or None
    if "preferred_locales" in params:
        customer["preferred_locales"] = as_list(params["preferred_locales"], "preferred_locales")
    if "balance" in params:
        customer["balance"] = as_int(params["balance"], "balance")
    if params.get("payment_method"):
        pm = billing.resolve_payment_method(store, params["payment_method"], "payment_method")
        billing.attach(store, pm, customer)
    settings = as_dict(params.get("invoice_settings"), "invoice_settings")
    if "default_payment_method" in settings:
        pm_id = settings["default_payment_method"] or None
        if pm_id:
            pm = billing.resolve_payment_method(
                store, pm_id, "invoice_settings[default_payment_method]"
            )
            if pm["customer"] != customer["id"]:
                raise invalid(
                    f"The customer does not have a payment method with the ID {pm['id']}. The payment method must be attached to the customer.",
                    "invoice_settings[default_payment_method]",
                    code="resource_missing",
                )
            pm_id = pm["id"]
        customer["invoice_settings"]["default_payment_method"] = pm_id
    for key in ("custom_fields", "footer", "rendering_options"):
        if key in settings:
            customer["invoice_settings"][key] = settings[key] or None


@route("POST", "/v1/customers", CUSTOMER_FIELDS | {"test_clock", "shipping", "tax_exempt"})
def create_customer(store: Store, params: Obj) -> Obj:
    customer = billing.new_customer(store)
    _apply_customer(store, customer, params)
    store.emit("customer.created", customer)
    return customer


@route("GET", "/v1/customers/{id}")
def get_customer(store: Store, params: Obj, id: str) -> Obj:
    obj = store.objects.get(id)
    if obj is not None and obj["object"] == "customer" and obj.get("deleted"):
        return {"id": id, "object": "customer", "deleted": True}
    return store.get(id, "customer", "customer")


@route("POST", "/v1/customers/{id}", CUSTOMER_FIELDS | {"shipping", "tax_exempt", "default_source"})
def update_customer(store: Store, params: Obj, id: str) -> Obj:
    customer = store.get(id, "customer", "customer")
    before = copy.deepcopy(customer)
    _apply_customer(store, customer, params)
    updated_event(store, customer, before, "customer.updated")
    return customer


@route("DELETE", "/v1/customers/{id}")
def delete_customer(store: Store, params: Obj, id: str) -> Obj:
    customer = store.get(id, "customer", "customer")
    for subscription in store.all("subscription"):
        if subscription["customer"] == id and subscription["status"] != "canceled":
            billing.end_subscription(store, subscription, "cancellation_requested")
    customer["deleted"] = True
    store.emit("customer.deleted", customer)
    return {"id": id, "object": "customer", "deleted": True}


@route("GET", "/v1/customers", LIST_PARAMS | {"email", "created", "test_clock"})
def list_customers(store: Store, params: Obj) -> Obj:
    items = [c for c in store.all("customer") if not c.get("deleted")]
    if "email" in params:
        items = [c for c in items if c["email"] == params["email"]]
    return store.list_reply(items, params, "/v1/customers")


@route("GET", "/v1/customers/{id}/payment_methods", LIST_PARAMS | {"type", "allow_redisplay"})
def list_customer_payment_methods(store: Store, params: Obj, id: str) -> Obj:
    store.get(id, "customer", "customer")
    return list_payment_methods(store, {**params, "customer": id})


# ---- payment methods --------------------------------------------------------------------


@route(
    "POST",
    "/v1/payment_methods",
    {
        "type",
        "card",
        "billing_details",
        "metadata",
        "customer",
        "payment_method",
        "allow_redisplay",
    },
)
def create_payment_method(store: Store, params: Obj) -> Obj:
    if required(params, "type") != "card":
        raise invalid("Only card payment methods exist on this test server.", "type")
    card = as_dict(params.get("card"), "card")
    if "token" in card:
        found = billing.CARD_TOKENS.get(card["token"])
        if found is None:
            raise no_such("token", card["token"], "card[token]")
        brand, outcome = found
        last4 = (
            billing.LAST4_BY_OUTCOME[outcome]
            if brand == "visa"
            else {"mastercard": "4444", "amex": "0005"}[brand]
        )
        pm = billing.new_payment_method(store, brand, last4, outcome)
    else:
        number = str(required(card, "number")).replace(" ", "")
        if number not in billing.CARD_NUMBERS:
            raise StripeError(
                402,
                "Your card number is incorrect.",
                type="card_error",
                code="incorrect_number",
                param="number",
            )
        brand, outcome = billing.CARD_NUMBERS[number]
        pm = billing.new_payment_method(
            store,
            brand,
            number[-4:],
            outcome,
            exp_month=as_int(required(card, "exp_month"), "card[exp_month]"),
            exp_year=as_int(required(card, "exp_year"), "card[exp_year]"),
        )
    if "billing_details" in params:
        pm["billing_details"].update(as_dict(params["billing_details"], "billing_details"))
    pm["metadata"] = metadata(params.get("metadata"))
    return pm


@route("GET", "/v1/payment_methods/{id}")
def get_payment_method(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "payment_method", "PaymentMethod")


@route(
    "POST", "/v1/payment_methods/{id}", {"billing_details", "card", "metadata", "allow_redisplay"}
)
def update_payment_method(store: Store, params: Obj, id: str) -> Obj:
    pm = store.get(id, "payment_method", "PaymentMethod")
    before = copy.deepcopy(pm)
    if "billing_details" in params:
        pm["billing_details"].update(as_dict(params["billing_details"], "billing_details"))
    card = as_dict(params.get("card"), "card")
    for key in ("exp_month", "exp_year"):
        if key in card:
            pm["card"][key] = as_int(card[key], f"card[{key}]")
    if "metadata" in params:
        pm["metadata"] = metadata(params["metadata"], pm["metadata"])
    updated_event(store, pm, before, "payment_method.updated")
    return pm


@route("POST", "/v1/payment_methods/{id}/attach", {"customer"})
def attach_payment_method(store: Store, params: Obj, id: str) -> Obj:
    pm = billing.resolve_payment_method(store, id, "payment_method")
    customer = billing.customer_of(store, required(params, "customer"))
    billing.attach(store, pm, customer)
    return pm


@route("POST", "/v1/payment_methods/{id}/detach")
def detach_payment_method(store: Store, params: Obj, id: str) -> Obj:
    pm = store.get(id, "payment_method", "PaymentMethod")
    if pm["customer"] is None:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            code="payment_method_unexpected_state",
        )
    customer = store.objects[pm["customer"]]
    if customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        before = copy.deepcopy(customer)
        customer["invoice_settings"]["default_payment_method"] = None
        updated_event(store, customer, before, "customer.updated")
    for subscription in store.all("subscription"):
        if subscription["default_payment_method"] == pm["id"]:
            before = copy.deepcopy(subscription)
            subscription["default_payment_method"] = None
            updated_event(store, subscription, before, "customer.subscription.updated")
    pm["customer"] = None
    store.emit("payment_method.detached", pm, {"customer": customer["id"]})
    return pm


@route("GET", "/v1/payment_methods", LIST_PARAMS | {"customer", "type", "allow_redisplay"})
def list_payment_methods(store: Store, params: Obj) -> Obj:
    items = store.all("payment_method")
    if "customer" in params:
        items = [pm for pm in items if pm["customer"] == params["customer"]]
    if "type" in params:
        items = [pm for pm in items if pm["type"] == params["type"]]
    url = (
        f"/v1/customers/{params['customer']}/payment_methods"
        if "customer" in params
        else "/v1/payment_methods"
    )
    return store.list_reply(items, params, url)


@route("GET", "/v1/setup_intents/{id}")
def get_setup_intent(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "setup_intent", "setup_intent")


@route("GET", "/v1/payment_intents/{id}")
def get_payment_intent(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "payment_intent", "payment_intent")


# ---- checkout ---------------------------------------------------------------------------

CHECKOUT_FIELDS = {
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "client_reference_id",
    "success_url",
    "cancel_url",
    "return_url",
    "subscription_data",
    "metadata",
    "payment_method_types",
    "allow_promotion_codes",
    "billing_address_collection",
    "customer_update",
    "setup_intent_data",
    "currency",
    "ui_mode",
    "expires_at",
    "locale",
    "payment_method_collection",
    "consent_collection",
    "automatic_tax",
    "tax_id_collection",
    "saved_payment_method_options",
    "customer_creation",
    "submit_type",
    "custom_text",
    "discounts",
    "phone_number_collection",
}


@route("POST", "/v1/checkout/sessions", CHECKOUT_FIELDS)
def create_checkout_session(store: Store, params: Obj) -> Obj:
    mode = required(params, "mode")
    if mode not in ("subscription", "setup", "payment"):
        raise invalid("Invalid mode: must be one of payment, setup, or subscription", "mode")
    if mode == "payment":
        raise invalid(
            "This test server supports Checkout in subscription and setup mode only.", "mode"
        )
    customer = None
    if params.get("customer"):
        customer = billing.customer_of(store, params["customer"])
        if params.get("customer_email"):
            raise invalid(
                "You may only specify one of these parameters: customer, customer_email.",
                "customer_email",
            )
    lines: list[tuple[Obj, int]] = []
    for index, raw in enumerate(as_list(params.get("line_items"), "line_items")):
        entry = as_dict(raw, f"line_items[{index}]")
        price = billing.price_of(store, required(entry, "price"), f"line_items[{index}][price]")
        if not price["active"]:
            raise invalid(
                "The price specified is inactive. This field only accepts active prices.",
                f"line_items[{index}][price]",
            )
        if mode == "subscription" and price["recurring"] is None:
            raise invalid(
                "You must specify at least one recurring price in `subscription` mode when using prices.",
                "line_items",
            )
        lines.append((price, as_int(entry.get("quantity", 1), f"line_items[{index}][quantity]")))
    if mode == "subscription" and not lines:
        raise missing_param("line_items")
    if mode == "setup" and lines:
        raise invalid("You cannot pass `line_items` in `setup` mode.", "line_items")
    if (
        mode == "setup"
        and not params.get("currency")
        and customer is None
        and not params.get("payment_method_types")
    ):
        raise missing_param("currency")
    ui_mode = params.get("ui_mode", "hosted")
    if ui_mode == "hosted" and not params.get("success_url"):
        raise missing_param("success_url")
    subscription_data = as_dict(params.get("subscription_data"), "subscription_data")
    total = sum(price["unit_amount"] * qty for price, qty in lines)
    session = store.base(
        "cs_test",
        "checkout.session",
        allow_promotion_codes=as_bool(
            params.get("allow_promotion_codes", False), "allow_promotion_codes"
        )
        or None,
        amount_subtotal=total if lines else None,
        amount_total=total if lines else None,
        billing_address_collection=params.get("billing_address_collection"),
        cancel_url=params.get("cancel_url"),
        client_reference_id=params.get("client_reference_id") or None,
        currency=(lines[0][0]["currency"] if lines else params.get("currency")),
        customer=customer["id"] if customer else None,
        customer_creation=None if customer else "always",
        customer_details=None,
        customer_email=params.get("customer_email") or None,
        expires_at=0,
        invoice=None,
        locale=params.get("locale"),
        metadata=metadata(params.get("metadata")),
        mode=mode,
        payment_intent=None,
        payment_method_types=as_list(
            params.get("payment_method_types") or ["card"], "payment_method_types"
        ),
        payment_status="unpaid" if mode == "subscription" else "no_payment_required",
        return_url=params.get("return_url"),
        setup_intent=None,
        status="open",
        subscription=None,
        success_url=params.get("success_url"),
        ui_mode=ui_mode,
        url=None,
    )
    session["expires_at"] = session["created"] + 24 * 3600
    session["url"] = f"{store.base_url}/checkout/{session['id']}"
    store.add(session)
    store.checkout_private[session["id"]] = {
        "lines": [(price["id"], qty) for price, qty in lines],
        "subscription_metadata": metadata(subscription_data.get("metadata")),
        "subscription_description": subscription_data.get("description"),
        "setup_metadata": metadata(
            as_dict(params.get("setup_intent_data"), "setup_intent_data").get("metadata")
        ),
    }
    return session


@route("GET", "/v1/checkout/sessions/{id}")
def get_checkout_session(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "checkout.session", "checkout.session")


@route(
    "GET",
    "/v1/checkout/sessions",
    LIST_PARAMS
    | {"customer", "subscription", "status", "payment_intent", "created", "customer_details"},
)
def list_checkout_sessions(store: Store, params: Obj) -> Obj:
    items = store.all("checkout.session")
    for key in ("customer", "subscription", "status", "payment_intent"):
        if key in params:
            items = [s for s in items if s[key] == params[key]]
    return store.list_reply(items, params, "/v1/checkout/sessions")


@route("GET", "/v1/checkout/sessions/{id}/line_items", LIST_PARAMS)
def checkout_line_items(store: Store, params: Obj, id: str) -> Obj:
    session = store.get(id, "checkout.session", "checkout.session")
    items = []
    for index, (price_id, qty) in enumerate(store.checkout_private[id]["lines"]):
        price = store.objects[price_id]
        items.append(
            {
                "id": f"li_{session['id'][8:20]}{index}",
                "object": "item",
                "amount_subtotal": price["unit_amount"] * qty,
                "amount_total": price["unit_amount"] * qty,
                "currency": price["currency"],
                "description": billing.product_name(store, price),
                "price": copy.deepcopy(price),
                "quantity": qty,
                "created": session["created"] + index,
            }
        )
    reply = store.list_reply(items, params, f"/v1/checkout/sessions/{id}/line_items")
    reply["data"].sort(key=lambda item: item["created"])
    return reply


@route("POST", "/v1/checkout/sessions/{id}/expire")
def expire_checkout_session(store: Store, params: Obj, id: str) -> Obj:
    session = store.get(id, "checkout.session", "checkout.session")
    if session["status"] != "open":
        raise invalid(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "{session["status"]}".'
        )
    session["status"] = "expired"
    session["url"] = None
    store.emit("checkout.session.expired", session)
    return session


def complete_checkout(store: Store, session: Obj, card: str) -> Obj:
    """The customer paid (or saved a card) on the Checkout page: what Stripe does next."""
    if session["status"] != "open":
        raise invalid(
            f"This Checkout Session is {session['status']}; only an open session can be completed."
        )
    if card not in billing.OUTCOMES:
        raise invalid("card must be one of success, declined, requires_action", "card")
    if card == "declined" and session["mode"] == "subscription":
        # On Stripe's page a declined card is an error shown to the payer; nothing is created.
        raise billing.card_declined()
    private = store.checkout_private[session["id"]]
    customer = store.objects.get(session["customer"] or "")
    if customer is None:
        customer = billing.new_customer(
            store, email=session["customer_email"] or "payer@example.com"
        )
        store.emit("customer.created", customer)
    pm = billing.new_payment_method(store, "visa", billing.LAST4_BY_OUTCOME[card], card)
    pm["customer"] = customer["id"]
    pm["billing_details"]["email"] = customer["email"]
    session["customer"] = customer["id"]
    session["customer_details"] = {
        "address": None,
        "email": customer["email"],
        "name": customer["name"],
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    session["status"] = "complete"
    session["url"] = None
    if session["mode"] == "setup":
        intent = store.base(
            "seti",
            "setup_intent",
            customer=customer["id"],
            description=None,
            last_setup_error=None,
            metadata=private["setup_metadata"],
            payment_method=pm["id"],
            payment_method_types=["card"],
            status="succeeded",
            usage="off_session",
        )
        store.add(intent)
        session["setup_intent"] = intent["id"]
        store.emit("checkout.session.completed", session)
        store.emit("payment_method.attached", pm)
        store.emit("setup_intent.succeeded", intent)
        return session
    # Subscription mode: build every object first, then send the events in Stripe's order.
    customer["invoice_settings"]["default_payment_method"] = pm["id"]
    lines = [(store.objects[price_id], qty) for price_id, qty in private["lines"]]
    subscription = billing.new_subscription(
        store,
        customer,
        lines,
        metadata=private["subscription_metadata"],
        default_payment_method=pm["id"],
        description=private["subscription_description"],
    )
    subscription["status"] = "active"
    with store.holding_events() as held:
        period = billing.period_lines(
            store, subscription, subscription["current_period_start"], subscription["items"]["data"]
        )
        invoice = billing.create_invoice(
            store, customer, subscription, period, "subscription_create", []
        )
        subscription["latest_invoice"] = invoice["id"]
        billing.finalize(store, invoice)
        # A card that needs authentication passes it on the page (the payer is there); it
        # keeps asking for it on later, off-session charges (test card 4000 0027 6000 3184).
        store.card_outcomes[pm["id"]] = "success"
        billing.attempt_payment(store, invoice)
        store.card_outcomes[pm["id"]] = card
    session["subscription"] = subscription["id"]
    session["invoice"] = invoice["id"]
    session["payment_status"] = "paid"
    store.emit("checkout.session.completed", session)
    store.emit("customer.subscription.created", subscription)
    store.release_events(held)
    return session


# ---- subscriptions ----------------------------------------------------------------------


@route(
    "POST",
    "/v1/subscriptions",
    {
        "customer",
        "items",
        "default_payment_method",
        "metadata",
        "payment_behavior",
        "description",
        "cancel_at_period_end",
        "collection_method",
        "off_session",
        "payment_settings",
        "proration_behavior",
    },
)
def create_subscription(store: Store, params: Obj) -> Obj:
    customer = billing.customer_of(store, required(params, "customer"))
    lines = []
    for index, raw in enumerate(as_list(required(params, "items"), "items")):
        entry = as_dict(raw, f"items[{index}]")
        price = billing.price_of(store, required(entry, "price"), f"items[{index}][price]")
        if price["recurring"] is None:
            raise invalid(
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                f"items[{index}][price]",
            )
        lines.append((price, as_int(entry.get("quantity", 1), f"items[{index}][quantity]")))
    pm_id = params.get("default_payment_method") or None
    if pm_id:
        pm = billing.resolve_payment_method(store, pm_id, "default_payment_method")
        if pm["customer"] != customer["id"]:
            raise invalid(
                "The payment method must be attached to the customer.", "default_payment_method"
            )
        pm_id = pm["id"]
    behavior = params.get("payment_behavior", "allow_incomplete")
    subscription = billing.new_subscription(
        store,
        customer,
        lines,
        metadata=metadata(params.get("metadata")),
        default_payment_method=pm_id,
        description=params.get("description"),
    )
    if "cancel_at_period_end" in params and as_bool(
        params["cancel_at_period_end"], "cancel_at_period_end"
    ):
        subscription["cancel_at_period_end"] = True
        subscription["cancel_at"] = subscription["current_period_end"]
    store.emit("customer.subscription.created", subscription)
    period = billing.period_lines(
        store, subscription, subscription["current_period_start"], subscription["items"]["data"]
    )
    invoice = billing.create_invoice(
        store, customer, subscription, period, "subscription_create", []
    )
    subscription["latest_invoice"] = invoice["id"]
    billing.finalize(store, invoice)
    if behavior == "default_incomplete":
        return subscription
    outcome, _intent = billing.attempt_payment(store, invoice)
    if outcome == "success":
        billing.after_payment(store, invoice, outcome)
    elif behavior == "error_if_incomplete":
        raise billing.card_declined()
    return subscription


@route("GET", "/v1/subscriptions/{id}")
def get_subscription(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "subscription", "subscription")


@route(
    "GET",
    "/v1/subscriptions",
    LIST_PARAMS
    | {
        "customer",
        "status",
        "price",
        "created",
        "current_period_end",
        "current_period_start",
        "collection_method",
        "test_clock",
        "automatic_tax",
    },
)
def list_subscriptions(store: Store, params: Obj) -> Obj:
    items = store.all("subscription")
    if "customer" in params:
        items = [s for s in items if s["customer"] == params["customer"]]
    status = params.get("status")
    if status is None:
        items = [s for s in items if s["status"] != "canceled"]
    elif status == "ended":
        items = [s for s in items if s["status"] in ("canceled", "incomplete_expired")]
    elif status != "all":
        items = [s for s in items if s["status"] == status]
    if "price" in params:
        items = [
            s for s in items if any(i["price"]["id"] == params["price"] for i in s["items"]["data"])
        ]
    return store.list_reply(items, params, "/v1/subscriptions")


def _plan_changes(
    store: Store, subscription: Obj, raw_items: Any, param: str
) -> tuple[list[Obj], list[billing.Change]]:
    """The subscription's items after the requested change, and each price/quantity change."""
    items = copy.deepcopy(subscription["items"]["data"])
    changes: list[billing.Change] = []
    for index, raw in enumerate(as_list(raw_items, param)):
        entry = as_dict(raw, f"{param}[{index}]")
        where = f"{param}[{index}]"
        existing = None
        if entry.get("id"):
            existing = next((i for i in items if i["id"] == entry["id"]), None)
            if existing is None:
                raise invalid(
                    f"No such subscription item: '{entry['id']}'",
                    f"{where}[id]",
                    code="resource_missing",
                )
        if (
            existing is not None
            and "deleted" in entry
            and as_bool(entry["deleted"], f"{where}[deleted]")
        ):
            items.remove(existing)
            changes.append((existing["id"], existing["price"], None, existing["quantity"], 0))
            continue
        if existing is None:
            price = billing.price_of(store, required(entry, "price"), f"{where}[price]")
            quantity = as_int(entry.get("quantity", 1), f"{where}[quantity]")
            item = billing.new_item(
                store, subscription["id"], price, quantity, subscription["current_period_start"]
            )
            item["current_period_end"] = subscription["current_period_end"]
            items.append(item)
            changes.append((item["id"], None, price, 0, quantity))
            continue
        old_price, old_qty = existing["price"], existing["quantity"]
        new_price = (
            billing.price_of(store, entry["price"], f"{where}[price]")
            if entry.get("price")
            else old_price
        )
        new_qty = as_int(entry.get("quantity", old_qty), f"{where}[quantity]")
        if new_price["recurring"] is None:
            raise invalid(
                "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                f"{where}[price]",
            )
        if (new_price["recurring"]["interval"], new_price["recurring"]["interval_count"]) != (
            old_price["recurring"]["interval"],
            old_price["recurring"]["interval_count"],
        ):
            raise invalid(
                "This test server changes plans only between prices with the same billing interval.",
                f"{where}[price]",
            )
        if new_price["id"] != old_price["id"] or new_qty != old_qty:
            existing["price"] = copy.deepcopy(new_price)
            existing["plan"] = billing.legacy_plan(new_price)
            existing["quantity"] = new_qty
            changes.append((existing["id"], old_price, new_price, old_qty, new_qty))
    if not items:
        raise invalid("A subscription needs at least one item.", param)
    return items, changes


PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")


@route(
    "POST",
    "/v1/subscriptions/{id}",
    {
        "items",
        "proration_behavior",
        "proration_date",
        "cancel_at_period_end",
        "cancel_at",
        "metadata",
        "default_payment_method",
        "payment_behavior",
        "description",
        "billing_cycle_anchor",
        "cancellation_details",
        "off_session",
        "payment_settings",
        "collection_method",
    },
)
def update_subscription(store: Store, params: Obj, id: str) -> Obj:
    subscription = store.get(id, "subscription", "subscription")
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise invalid(
            "A canceled subscription can only update its cancellation_details and metadata."
        )
    behavior = params.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise invalid(
            "Invalid proration_behavior: must be one of create_prorations, always_invoice, or none",
            "proration_behavior",
        )
    payment_behavior = params.get("payment_behavior", "allow_incomplete")
    at = (
        as_int(params["proration_date"], "proration_date")
        if params.get("proration_date")
        else store.now()
    )
    before = copy.deepcopy(subscription)
    customer = store.objects[subscription["customer"]]
    new_items: list[Obj] = []
    changes: list[billing.Change] = []
    if "items" in params:
        new_items, changes = _plan_changes(store, subscription, params["items"], "items")
    prorations = (
        billing.proration_lines(store, subscription, changes, at)
        if changes and behavior != "none"
        else []
    )
    # error_if_incomplete: a charge that would fail refuses the whole update, nothing changes.
    if behavior == "always_invoice" and payment_behavior == "error_if_incomplete":
        total = (
            sum(i["amount"] for i in prorations)
            + sum(i["amount"] for i in billing.pending_items(store, customer["id"], id))
            + customer["balance"]
        )
        pm_id = billing.default_payment_method(store, subscription, customer)
        if total > 0 and store.card_outcomes.get(pm_id or "", "declined") != "success":
            raise billing.card_declined()
    if "items" in params:
        subscription["items"]["data"] = new_items
        for item in new_items:
            store.objects[item["id"]] = item
            if item["id"] not in store.by_kind["subscription_item"]:
                store.by_kind["subscription_item"].append(item["id"])
        billing.sync_periods(subscription)
    if "metadata" in params:
        subscription["metadata"] = metadata(params["metadata"], subscription["metadata"])
    if "description" in params:
        subscription["description"] = params["description"] or None
    if "default_payment_method" in params:
        pm_id = params["default_payment_method"] or None
        if pm_id:
            pm = billing.resolve_payment_method(store, pm_id, "default_payment_method")
            if pm["customer"] != customer["id"]:
                raise invalid(
                    "The payment method must be attached to the customer.", "default_payment_method"
                )
            pm_id = pm["id"]
        subscription["default_payment_method"] = pm_id
    if "cancellation_details" in params:
        details = as_dict(params["cancellation_details"], "cancellation_details")
        for key in ("comment", "feedback"):
            if key in details:
                subscription["cancellation_details"][key] = details[key] or None
    if "cancel_at_period_end" in params:
        flag = as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
        subscription["cancel_at_period_end"] = flag
        subscription["cancel_at"] = subscription["current_period_end"] if flag else None
        subscription["canceled_at"] = store.now() if flag else None
    if "cancel_at" in params:
        if params["cancel_at"] == "":
            subscription["cancel_at"] = None
            subscription["cancel_at_period_end"] = False
            subscription["canceled_at"] = None
        else:
            subscription["cancel_at"] = as_int(params["cancel_at"], "cancel_at")
            subscription["cancel_at_period_end"] = (
                subscription["cancel_at"] == subscription["current_period_end"]
            )
            subscription["canceled_at"] = store.now()
    for item in prorations:
        store.add(item)
        store.emit("invoiceitem.created", item)
    invoice = None
    if behavior == "always_invoice" and prorations:
        extra = billing.pending_items(store, customer["id"], id)
        lines = [billing.line_from_item(store, item, subscription) for item in extra]
        invoice = billing.invoice_shape(store, customer, subscription, lines, "subscription_update")
        subscription["latest_invoice"] = invoice["id"]
    updated_event(store, subscription, before, "customer.subscription.updated")
    if invoice is not None:
        for item in extra:
            item["invoice"] = invoice["id"]
        store.add(invoice)
        store.emit("invoice.created", invoice)
        billing.charge_new_invoice(store, invoice, subscription)
    return subscription


@route("DELETE", "/v1/subscriptions/{id}", {"invoice_now", "prorate", "cancellation_details"})
def cancel_subscription(store: Store, params: Obj, id: str) -> Obj:
    subscription = store.get(id, "subscription", "subscription")
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise invalid(f"No such subscription: '{id}'", "id", code="resource_missing")
    details = as_dict(params.get("cancellation_details"), "cancellation_details")
    for key in ("comment", "feedback"):
        if key in details:
            subscription["cancellation_details"][key] = details[key] or None
    subscription["canceled_at"] = store.now()
    billing.end_subscription(store, subscription, "cancellation_requested")
    return subscription


@route(
    "POST",
    "/v1/subscriptions/{id}/resume",
    {"billing_cycle_anchor", "proration_behavior", "proration_date"},
)
def resume_subscription(store: Store, params: Obj, id: str) -> Obj:
    subscription = store.get(id, "subscription", "subscription")
    if subscription["status"] != "paused":
        raise invalid(
            "Only paused subscriptions can be resumed; to undo a cancellation at period end, update cancel_at_period_end to false."
        )
    previous = billing.set_status(store, subscription, "active")
    store.emit("customer.subscription.resumed", subscription)
    if previous:
        store.emit("customer.subscription.updated", subscription, previous)
    return subscription


@route("GET", "/v1/subscription_items/{id}")
def get_subscription_item(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "subscription_item", "subscription item")


@route("GET", "/v1/subscription_items", LIST_PARAMS | {"subscription"})
def list_subscription_items(store: Store, params: Obj) -> Obj:
    subscription = store.get(
        required(params, "subscription"), "subscription", "subscription", "subscription"
    )
    return store.list_reply(subscription["items"]["data"], params, "/v1/subscription_items")


# ---- invoices ---------------------------------------------------------------------------


@route("GET", "/v1/invoices/{id}")
def get_invoice(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "invoice", "invoice")


@route(
    "GET",
    "/v1/invoices",
    LIST_PARAMS
    | {"customer", "subscription", "status", "created", "collection_method", "due_date"},
)
def list_invoices(store: Store, params: Obj) -> Obj:
    items = store.all("invoice")
    for key in ("customer", "subscription", "status"):
        if key in params:
            items = [i for i in items if i[key] == params[key]]
    return store.list_reply(items, params, "/v1/invoices")


@route("GET", "/v1/invoices/{id}/lines", LIST_PARAMS)
def list_invoice_lines(store: Store, params: Obj, id: str) -> Obj:
    invoice = store.get(id, "invoice", "invoice")
    lines = invoice["lines"]["data"]
    limit = as_int(params.get("limit", 10), "limit")
    start = 0
    if params.get("starting_after"):
        ids = [line["id"] for line in lines]
        start = (
            ids.index(params["starting_after"]) + 1 if params["starting_after"] in ids else len(ids)
        )
    page = lines[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "has_more": start + limit < len(lines),
        "url": f"/v1/invoices/{id}/lines",
    }


@route(
    "POST",
    "/v1/invoices/{id}/pay",
    {"payment_method", "off_session", "paid_out_of_band", "forgive", "source", "mandate"},
)
def pay_invoice(store: Store, params: Obj, id: str) -> Obj:
    invoice = store.get(id, "invoice", "invoice")
    pm_id = params.get("payment_method") or None
    if pm_id:
        pm = billing.resolve_payment_method(store, pm_id, "payment_method")
        pm_id = pm["id"]
    if params.get("paid_out_of_band") and as_bool(params["paid_out_of_band"], "paid_out_of_band"):
        if invoice["status"] != "open":
            raise invalid(
                f"You can only pay an invoice that is open; this one is {invoice['status']}."
            )
        billing._mark_paid(store, invoice, None)
        billing.after_payment(store, invoice, "success")
        return invoice
    return billing.pay_invoice(store, invoice, pm_id)


@route("POST", "/v1/invoices/{id}/void")
def void_invoice(store: Store, params: Obj, id: str) -> Obj:
    invoice = store.get(id, "invoice", "invoice")
    if invoice["status"] not in ("open", "uncollectible"):
        raise invalid(
            f"You can only void an open or uncollectible invoice; this one is {invoice['status']}."
        )
    invoice["status"] = "void"
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["voided_at"] = store.now()
    store.emit("invoice.voided", invoice)
    return invoice


@route(
    "POST",
    "/v1/invoices/create_preview",
    {
        "customer",
        "subscription",
        "subscription_details",
        "preview_mode",
        "automatic_tax",
        "currency",
        "customer_details",
        "discounts",
        "invoice_items",
        "on_behalf_of",
        "schedule",
        "schedule_details",
    },
)
def create_preview(store: Store, params: Obj) -> Obj:
    """The invoice a subscription change would produce, with its prorations (nothing saved)."""
    subscription = None
    if params.get("subscription"):
        subscription = store.get(
            params["subscription"], "subscription", "subscription", "subscription"
        )
        customer = store.objects[subscription["customer"]]
        if params.get("customer") and params["customer"] != customer["id"]:
            raise invalid("The subscription does not belong to this customer.", "customer")
    elif params.get("customer"):
        customer = billing.customer_of(store, params["customer"])
    else:
        raise invalid("You must specify either `customer` or `subscription`.", "subscription")
    details = as_dict(params.get("subscription_details"), "subscription_details")
    if subscription is None:
        if details:
            raise invalid(
                "Previewing a new subscription is not supported here; pass `subscription`.",
                "subscription_details",
            )
        raise invalid(
            f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none"
        )
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise invalid(
            f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none"
        )
    behavior = details.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise invalid(
            "Invalid proration_behavior: must be one of create_prorations, always_invoice, or none",
            "subscription_details[proration_behavior]",
        )
    at = (
        as_int(details["proration_date"], "subscription_details[proration_date]")
        if details.get("proration_date")
        else store.now()
    )
    items = subscription["items"]["data"]
    changes: list[billing.Change] = []
    # Unsaved objects only: ids are generated but nothing is added to the store.
    if "items" in details:
        items, changes = _plan_changes(
            store, subscription, details["items"], "subscription_details[items]"
        )
    prorations = (
        billing.proration_lines(store, subscription, changes, at)
        if changes and behavior != "none"
        else []
    )
    cancel_at_end = subscription["cancel_at_period_end"]
    if "cancel_at_period_end" in details:
        cancel_at_end = as_bool(
            details["cancel_at_period_end"], "subscription_details[cancel_at_period_end]"
        )
    pending = billing.pending_items(store, customer["id"], subscription["id"])
    lines = [billing.line_from_item(store, item, subscription) for item in pending + prorations]
    if behavior != "always_invoice" or not prorations:
        if cancel_at_end and not prorations:
            raise invalid(
                f"No upcoming invoices for customer: {customer['id']}", code="invoice_upcoming_none"
            )
        lines += billing.period_lines(
            store, subscription, subscription["current_period_end"], items
        )
    invoice = billing.invoice_shape(
        store,
        customer,
        subscription,
        lines,
        "upcoming" if behavior != "always_invoice" else "subscription_update",
        invoice_id=store.new_id("upcoming_in"),
    )
    if behavior == "always_invoice" and prorations:
        invoice["period_start"] = invoice["period_end"] = at
    else:
        invoice["period_start"] = subscription["current_period_start"]
        invoice["period_end"] = subscription["current_period_end"]
        invoice["next_payment_attempt"] = subscription["current_period_end"]
    invoice["subscription_proration_date"] = at
    invoice["ending_balance"] = min(0, invoice["total"] + customer["balance"])
    return invoice


@route("GET", "/v1/invoiceitems", LIST_PARAMS | {"customer", "invoice", "pending", "created"})
def list_invoice_items(store: Store, params: Obj) -> Obj:
    items = [i for i in store.all("invoiceitem") if not i.get("deleted_pending")]
    if "customer" in params:
        items = [i for i in items if i["customer"] == params["customer"]]
    if "invoice" in params:
        items = [i for i in items if i["invoice"] == params["invoice"]]
    if "pending" in params:
        pending = as_bool(params["pending"], "pending")
        items = [i for i in items if (i["invoice"] is None) == pending]
    return store.list_reply(items, params, "/v1/invoiceitems")


# ---- billing portal ---------------------------------------------------------------------


@route(
    "POST",
    "/v1/billing_portal/sessions",
    {"customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of"},
)
def create_portal_session(store: Store, params: Obj) -> Obj:
    customer = billing.customer_of(store, required(params, "customer"))
    session = store.base(
        "bps",
        "billing_portal.session",
        configuration="bpc_test_default",
        customer=customer["id"],
        flow=None,
        locale=params.get("locale"),
        on_behalf_of=None,
        return_url=params.get("return_url"),
        url=None,
    )
    session["url"] = f"{store.base_url}/portal/{session['id']}"
    return store.add(session)


# ---- events -----------------------------------------------------------------------------


@route("GET", "/v1/events/{id}")
def get_event(store: Store, params: Obj, id: str) -> Obj:
    return store.get(id, "event", "event")


@route("GET", "/v1/events", LIST_PARAMS | {"type", "types", "created", "delivery_success"})
def list_events(store: Store, params: Obj) -> Obj:
    items = store.all("event")
    if "type" in params:
        pattern = re.compile("^" + re.escape(params["type"]).replace(r"\*", ".*") + "$")
        items = [e for e in items if pattern.match(e["type"])]
    if "types" in params:
        types = set(as_list(params["types"], "types"))
        items = [e for e in items if e["type"] in types]
    return store.list_reply(items, params, "/v1/events")
