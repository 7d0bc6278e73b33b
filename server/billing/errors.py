"""Errors the billing domain reports; codes are part of the API contract."""

from http import HTTPStatus

from notefall.server.kit.errors import ProblemError


class BillingNotConfiguredError(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "billing_not_configured"
    title = "Billing is not configured"


class PaymentProviderUnavailableError(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "payment_provider_unavailable"
    title = "The payment provider does not answer"


class PaymentProviderError(ProblemError):
    """Stripe refused a request we built: a bug or a misconfigured account, logged."""

    status = HTTPStatus.BAD_GATEWAY
    code = "payment_provider_error"
    title = "The payment provider refused the request"


class PaymentDeclinedError(ProblemError):
    status = HTTPStatus.PAYMENT_REQUIRED
    code = "payment_declined"
    title = "Payment declined"


class NotAPaidTierError(ProblemError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "not_a_paid_tier"
    title = "Not a paid plan"


class SubscriptionExistsError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "subscription_exists"
    title = "You already have a subscription"


class NoSubscriptionError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "no_subscription"
    title = "No subscription"


class SamePlanError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "same_plan"
    title = "Already on this plan"


class StalePreviewError(ProblemError):
    """The confirmation names a preview too old (or from another period) to charge what it
    said; the client shows a fresh preview."""

    status = HTTPStatus.CONFLICT
    code = "stale_preview"
    title = "The price preview is out of date"


class SubscriptionStateError(ProblemError):
    """The subscription is in a state that does not allow the change (e.g. resume after
    it ended, change plan while a payment is overdue)."""

    status = HTTPStatus.CONFLICT
    code = "subscription_state"
    title = "Not possible in the subscription's current state"


class NoCustomerError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "no_billing_account"
    title = "No billing account yet"


class PaymentMethodInUseError(ProblemError):
    status = HTTPStatus.CONFLICT
    code = "payment_method_in_use"
    title = "Payment method in use"


class InvalidWebhookError(ProblemError):
    """A webhook whose signature, timestamp or body does not check out; nothing is stored."""

    status = HTTPStatus.BAD_REQUEST
    code = "invalid_webhook"
    title = "Webhook refused"
