"""``notefall admin ...``: settings from NOTEFALL_* like ``notefall serve``, one transaction per
command, and a refusal when the database is not at the latest migration."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from notefall.common.errors import InputError
from notefall.common.tiers import Tier
from notefall.server.kit.db import Database, transaction_scope
from notefall.server.kit.mail import mailer_for
from notefall.server.kit.models import utcnow
from notefall.server.kit.settings import Settings
from notefall.server.kit.text import file_size
from notefall.server.migrations import alembic_config
from notefall.server.stack import settings_or_input_error
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .service import AdminService, UserSummary, parse_tier


def _not_migrated(detail: str) -> InputError:
    return InputError(
        f"The database {detail}; run `notefall serve` once (it migrates) and try again",
        code="database_not_migrated",
    )


def ensure_migrated(database: Database, url: str) -> None:
    """Refuse a database that is behind (or ahead of) this version's migrations: the
    commands would otherwise fail half-way on a missing column."""
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).exists():
        raise _not_migrated(f"file {parsed.database} does not exist yet")
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    try:
        with database.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise InputError(
            f"Cannot reach the database ({reason}); check NOTEFALL_DATABASE_URL",
            code="database_unreachable",
        ) from None
    if current != heads:
        state = "has no tables yet" if not current else "is not at the latest migration"
        raise _not_migrated(state)


@contextmanager
def _admin(settings: Settings) -> Iterator[AdminService]:
    database = Database(settings.database_url)
    try:
        ensure_migrated(database, settings.database_url)
        with transaction_scope(database) as session:
            yield AdminService(session, mailer_for(settings), utcnow())
    finally:
        database.dispose()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise InputError("The two passwords differ; nothing was created", code="invalid_input")
    return password


def _print_summary(summary: UserSummary) -> None:
    rows = [
        ("email", summary.email),
        ("name", summary.name),
        ("tier", summary.tier),
        ("verified", "yes" if summary.verified else "no"),
        ("2fa", "on" if summary.two_factor else "off"),
        ("sessions", str(summary.sessions)),
        ("projects", str(summary.projects)),
        ("storage", file_size(summary.storage_bytes)),
    ]
    for label, value in rows:
        print(f"{label + ':':<10} {value}")


def run(args: argparse.Namespace) -> None:
    settings = settings_or_input_error()
    action = args.admin_command
    # Checked before the password prompt and the database, so a typo costs nothing.
    tier = parse_tier(args.tier) if getattr(args, "tier", None) else None
    if action == "create-user":
        password = _password(args)
        with _admin(settings) as admin:
            user = admin.create_user(args.email, args.name, password, tier or Tier.FREE)
            email, user_tier = user.email, user.tier
        print(f"Created {email} on the {user_tier} tier (address marked verified)")
    elif action == "set-tier":
        assert tier is not None  # a required argument
        with _admin(settings) as admin:
            changed = admin.set_tier(args.email, tier)
        print(f"{args.email.strip().lower()} is {'now' if changed else 'already'} on {tier.value}")
    elif action == "disable-2fa":
        with _admin(settings) as admin:
            admin.disable_two_factor(args.email)
        print(
            f"Two-factor sign-in is off for {args.email.strip().lower()}; "
            "their sessions ended and they were mailed a notice"
        )
    elif action == "show-user":
        with _admin(settings) as admin:
            summary = admin.summary(admin.user(args.email))
        _print_summary(summary)
    elif action == "list-users":
        with _admin(settings) as admin:
            rows = [
                (u.email, u.tier, "verified" if u.email_verified_at else "unverified", u.name)
                for u in admin.users(tier)
            ]
        for row in rows:
            print("\t".join(row))
