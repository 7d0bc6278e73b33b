"""HTTP endpoints of the billing domain, under /api/v1/billing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi import Path as PathParam
from notefall.server.accounts.errors import InvalidAccessTokenError
from notefall.server.accounts.router import Current, RequestSession
from notefall.server.jobs import enqueue
from notefall.server.kit.db import after_commit
from notefall.server.kit.errors import NotFoundError, problem_responses

from . import account_deletion as _account_deletion  # noqa: F401 - registers the deletion hook
from . import metrics
from .errors import (
    BillingNotConfiguredError,
    InvalidWebhookError,
    NoCustomerError,
    NoSubscriptionError,
    NotAPaidTierError,
    PaymentDeclinedError,
    PaymentMethodInUseError,
    PaymentProviderError,
    PaymentProviderUnavailableError,
    SamePlanError,
    StalePreviewError,
    SubscriptionExistsError,
    SubscriptionStateError,
)
from .schemas import (
    BillingOut,
    ChangePlanRequest,
    CheckoutRequest,
    InvoiceOut,
    Invoices,
    PaymentMethods,
    PlanChangeOut,
    Url,
    WebhookReceived,
)
from .service import BillingService
from .stripe_gateway import StripeGateway
from .webhooks import store, verify

PROCESS_TASK = "notefall.billing.process_event"

# Every route that asks Stripe may answer these.
STRIPE_ERRORS = (
    BillingNotConfiguredError,
    PaymentProviderUnavailableError,
    PaymentProviderError,
)

# Stripe's ids (pm_ and letters or digits): anything else is refused before Stripe is asked.
PaymentMethodId = Annotated[str, PathParam(pattern=r"^pm_[A-Za-z0-9_]{1,200}$")]

router = APIRouter(
    prefix="/billing",
    tags=["billing"],
    responses=problem_responses(InvalidAccessTokenError, *STRIPE_ERRORS),
)


def _redis(request: Request) -> object | None:
    limiter = request.app.state.rate_limiter
    return limiter.client if limiter is not None else None


def billing_service(request: Request, session: RequestSession) -> BillingService:
    settings = request.app.state.settings
    client = _redis(request)
    return BillingService(
        session,
        settings,
        gateway=lambda: StripeGateway(settings),
        clock=request.app.state.clock,
        count=lambda name: metrics.count(client, name),  # type: ignore[arg-type]
    )


Service = Annotated[BillingService, Depends(billing_service)]


@router.get("", summary="Your plan, subscription, payment problems and default card")
def get_billing(current: Current, service: Service) -> BillingOut:
    return service.overview(current.user)


@router.post(
    "/checkout",
    responses=problem_responses(NotAPaidTierError, SubscriptionExistsError),
    summary="Start Stripe Checkout for a paid plan; open the returned URL",
)
def checkout(body: CheckoutRequest, current: Current, service: Service) -> Url:
    """Your plan changes when Stripe's webhook confirms the payment, not on the redirect."""
    return Url(url=service.checkout(current.user, body.tier))


@router.post(
    "/change-plan",
    responses=problem_responses(
        NotAPaidTierError,
        NoSubscriptionError,
        SamePlanError,
        SubscriptionStateError,
        StalePreviewError,
        PaymentDeclinedError,
    ),
    summary="Preview (confirm=false) or make (confirm=true) a plan change",
)
def change_plan(body: ChangePlanRequest, current: Current, service: Service) -> PlanChangeOut:
    return service.change_plan(
        current.user, body.tier, body.when, body.confirm, proration_date=body.proration_date
    )


@router.post(
    "/cancel",
    responses=problem_responses(NoSubscriptionError),
    summary="Cancel at the end of the period you paid for",
)
def cancel(current: Current, service: Service) -> BillingOut:
    return service.cancel(current.user)


@router.post(
    "/resume",
    responses=problem_responses(NoSubscriptionError, SubscriptionStateError),
    summary="Undo a cancellation before the period ends",
)
def resume(current: Current, service: Service) -> BillingOut:
    return service.resume(current.user)


@router.post(
    "/portal",
    responses=problem_responses(NoCustomerError),
    summary="Open Stripe's Customer Portal; open the returned URL",
)
def portal(current: Current, service: Service) -> Url:
    return Url(url=service.portal(current.user))


@router.get("/payment-methods", summary="Your cards; `default` pays your subscription")
def list_payment_methods(current: Current, service: Service) -> PaymentMethods:
    return PaymentMethods(items=service.payment_methods(current.user))


@router.post(
    "/payment-methods",
    summary="Add a card through Stripe Checkout (setup mode); open the returned URL",
)
def add_payment_method(current: Current, service: Service) -> Url:
    return Url(url=service.add_payment_method(current.user))


@router.delete(
    "/payment-methods/{payment_method_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotFoundError, PaymentMethodInUseError),
    summary="Remove a card",
)
def remove_payment_method(
    payment_method_id: PaymentMethodId, current: Current, service: Service
) -> None:
    service.remove_payment_method(current.user, payment_method_id)


@router.post(
    "/payment-methods/{payment_method_id}/default",
    responses=problem_responses(NotFoundError),
    summary="Make a card the one that pays",
)
def default_payment_method(
    payment_method_id: PaymentMethodId, current: Current, service: Service
) -> PaymentMethods:
    return PaymentMethods(items=service.make_default(current.user, payment_method_id))


@router.get("/invoices", summary="Your invoices, newest first, with Stripe's page and PDF")
def invoices(
    current: Current,
    service: Service,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Invoices:
    return Invoices(
        items=[
            InvoiceOut.model_validate(row, from_attributes=True)
            for row in service.invoices(current.user, limit)
        ]
    )


async def raw_body(request: Request) -> bytes:
    # The signature covers the exact bytes Stripe sent; parsing first would lose them.
    return await request.body()


webhook_router = APIRouter(prefix="/billing", tags=["billing"])


@webhook_router.post(
    "/webhook",
    responses=problem_responses(InvalidWebhookError, BillingNotConfiguredError),
    summary="Stripe's webhook (signed with NOTEFALL_STRIPE_WEBHOOK_SECRET)",
)
def webhook(
    request: Request,
    session: RequestSession,
    payload: Annotated[bytes, Depends(raw_body)],
) -> WebhookReceived:
    """Stored once per event id and answered at once; a worker processes it."""
    settings = request.app.state.settings
    event = verify(settings, payload, request.headers.get("stripe-signature"))
    row, new = store(session, event, request.app.state.clock())
    if new and row.status == "pending":
        event_uuid = str(row.id)
        # After the commit, so the worker finds the row; a message lost here is sent again
        # by the reconciler (notefall.billing.reconcile).
        after_commit(session, lambda: enqueue(settings, PROCESS_TASK, args=[event_uuid]))
    return WebhookReceived(duplicate=not new)
