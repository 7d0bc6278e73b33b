"""Request and response bodies of the billing API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PaidTier = Literal["pro", "enterprise"]


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: PaidTier


class ChangePlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: PaidTier
    when: Literal["now", "period_end"] | None = Field(
        None,
        description="now (upgrades always; prorated) or period_end (downgrades only); "
        "default: now for an upgrade, period_end for a downgrade",
    )
    confirm: bool = Field(False, description="false: only preview; true: make the change")
    proration_date: int | None = Field(
        None,
        ge=0,
        description="with confirm=true: the preview's proration_date (Unix seconds), so the "
        "change charges exactly what the preview showed; at most an hour old",
    )


class Url(BaseModel):
    url: str


class ScheduledChange(BaseModel):
    tier: str = Field(description="the plan from the next period on")
    at: datetime


class SubscriptionOut(BaseModel):
    tier: str = Field(description="the plan the subscription's price is for")
    status: str = Field(description="Stripe's status: active, trialing, past_due, unpaid, ...")
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_change: ScheduledChange | None


class Banner(BaseModel):
    kind: Literal["past_due", "action_required", "unpaid"]
    message: str
    action_url: str


class PaymentMethodOut(BaseModel):
    id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    default: bool


class BillingOut(BaseModel):
    tier: str = Field(description="your plan now (what the server enforces)")
    available: bool = Field(description="false: this server sells no paid plans")
    subscription: SubscriptionOut | None
    banner: Banner | None = Field(description="a payment problem to show, with where to fix it")
    payment_method: PaymentMethodOut | None = Field(description="the default card, if any")
    billing_url: str = Field(description="the billing page of the browser")


class PlanChangeOut(BaseModel):
    tier: str
    when: Literal["now", "period_end"]
    confirmed: bool
    currency: str
    amount_due_now: int = Field(description="cents charged when the change is confirmed")
    next_invoice_amount: int = Field(description="cents of the next regular invoice")
    next_invoice_at: datetime | None
    proration_date: int = Field(
        description="the moment the amounts are prorated at (Unix seconds); send it back "
        "with confirm=true to be charged exactly this preview"
    )
    detail: str


class PaymentMethods(BaseModel):
    items: list[PaymentMethodOut]


class InvoiceOut(BaseModel):
    id: str
    number: str | None
    status: str
    currency: str
    amount_due: int
    amount_paid: int
    total: int
    period_start: datetime | None
    period_end: datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    created_at: datetime


class Invoices(BaseModel):
    items: list[InvoiceOut]


class WebhookReceived(BaseModel):
    received: bool = True
    duplicate: bool = Field(description="true: this event was stored before; nothing new")
