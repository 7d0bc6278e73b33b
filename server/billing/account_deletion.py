"""Account deletion ends the account's subscription at once (issue 5).

The hook runs inside the deleting transaction: it marks the account's open subscriptions
``cancel_requested_at`` (their rows survive the user: ``user_id`` is SET NULL) and, once the
deletion has committed, asks a worker to cancel them in Stripe. A Stripe or Redis that does
not answer then loses nothing: the billing reconciler cancels every marked subscription
Stripe has not ended yet. Nothing here refuses a deletion.
"""

from __future__ import annotations

from collections.abc import Iterable

from notefall.server.accounts.models import User
from notefall.server.kit.db import after_commit
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.profile.deletion import register_account_deleted_hook
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Subscription
from .repository import ENDED_STATUSES
from .webhooks import request_cancellation


def cancel_subscription(session: Session, settings: Settings, user: User) -> Iterable[str]:
    rows = session.scalars(
        select(Subscription).where(
            Subscription.user_id == user.id, Subscription.status.not_in(ENDED_STATUSES)
        )
    ).all()
    for row in rows:
        row.cancel_requested_at = utcnow()
        after_commit(session, lambda sub_id=row.id: request_cancellation(settings, sub_id))
    session.flush()
    return []


register_account_deleted_hook(cancel_subscription)
