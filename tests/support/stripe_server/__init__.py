"""A stateful Stripe-compatible HTTP server for tests (what stripe-mock does, but with memory).

Stripe cannot be reached from the test machines, so the official ``stripe`` SDK (16.1.0, API
version ``2026-10-28.endive``) is pointed at this server, run as its own process
(``tests/support/stripe_fixture.py`` starts one on a free port):

    client = stripe.StripeClient("sk_test_...", base_addresses={"api": server.url})
    # or, with the module-level API:  stripe.api_key = "sk_test_..."; stripe.api_base = server.url

It keeps customers, products, prices, Checkout sessions, subscriptions (and their items),
invoices (with invoice items and prorations), payment methods and intents, setup intents,
billing portal sessions and events in memory, and POSTs every event to a webhook URL signed with
the SDK's own ``stripe.WebhookSignature`` helper. Test-only controls live under ``/_test``
(complete a Checkout session, move the test clock, make a card fail, pause, reorder and resend
webhooks). README.md next to this file documents every endpoint, event order and formula.

Newer API shapes are served, plus the pre-2025 fields code may still read: subscriptions carry
``current_period_start/end`` on their items *and* on themselves; invoices carry
``parent.subscription_details.subscription`` *and* ``subscription``. Only
``Invoice.create_preview`` (``POST /v1/invoices/create_preview``) exists for previews: SDK
16.1.0 has no ``Invoice.upcoming``.
"""
