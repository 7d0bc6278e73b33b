"""Subscriptions and billing through Stripe: checkout, plan changes, payment methods,
invoices, and the webhooks that alone change a user's tier (docs/billing.md)."""
