"""Account deletion hooks: how other domains take part in deleting an account.

A domain that keeps something about a user outside the rows that cascade from ``users``
(billing's Stripe subscription, a render's video in storage) registers a hook at import
time::

    from notefall.server.profile.deletion import register_account_deleted_hook

    def cancel_subscription(session: Session, settings: Settings, user: User) -> Iterable[str]:
        ...                      # e.g. after_commit(session, lambda: stripe_cancel(...))
        return []                # storage keys to delete once the deletion has committed

    register_account_deleted_hook(cancel_subscription)

Hooks run inside the deleting request's transaction, before the user's rows are deleted,
so they can still read them. A hook that raises aborts the whole deletion (nothing is
deleted, the request answers with the error), so a hook must only raise when deleting
the account now would be wrong. Work outside the database (calling Stripe) belongs in an
``after_commit`` action, which runs only when the deletion is durable. The keys a hook
returns are deleted from storage after the commit, with the account's other files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from notefall.server.accounts.models import User
from notefall.server.kit.settings import Settings
from sqlalchemy.orm import Session

# The settings come along so a hook's after-commit work (a message to a worker) goes to this
# deployment's Redis, not whatever the process-wide Celery app last pointed at.
AccountDeletedHook = Callable[[Session, Settings, User], Iterable[str]]

_hooks: list[AccountDeletedHook] = []


def register_account_deleted_hook(hook: AccountDeletedHook) -> Callable[[], None]:
    """Call ``hook`` for every account deleted from now on; returns a function that
    unregisters it (tests use it)."""
    _hooks.append(hook)
    return lambda: _hooks.remove(hook)


def run_account_deleted_hooks(session: Session, settings: Settings, user: User) -> list[str]:
    """Every registered hook, in registration order: the storage keys they hand back."""
    keys: list[str] = []
    for hook in list(_hooks):
        keys.extend(hook(session, settings, user))
    return keys
