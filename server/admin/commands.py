"""``notefall admin ...``: settings from NOTEFALL_* like ``notefall serve``, one transaction per
command, and a refusal when the database is not at the latest migration."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
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
from notefall.server.stack import REDIS_URL_FILE, settings_or_input_error
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
    settings = with_stack_redis(settings_or_input_error())
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
    elif action == "reconcile":
        _reconcile(settings)
    elif action == "set-admin":
        with _admin(settings) as admin:
            changed = admin.set_admin(args.email, not args.revoke)
        who = args.email.strip().lower()
        if args.revoke:
            print(f"{who} is {'no longer' if changed else 'not'} an operator")
        else:
            print(f"{who} is {'now' if changed else 'already'} an operator")
    elif action == "dead-letters":
        _dead_letters(settings, args)


def with_stack_redis(settings: Settings) -> Settings:
    """NOTEFALL_REDIS_URL, else the Redis of a `notefall stack` running on the same data folder
    (it leaves its URL in DATA_DIR/redis/url while it runs)."""
    if settings.redis_url:
        return settings
    url_file = settings.data_dir / REDIS_URL_FILE
    try:
        url = url_file.read_text(encoding="utf-8").strip()
    except OSError:
        return settings
    return settings.model_copy(update={"redis_url": url or None})


def _reconcile(settings: Settings) -> None:
    """The reconciler once, now; the same run beat makes (its lock keeps them apart)."""
    from notefall.server.renders.reconcile import reconcile

    if not settings.redis_url:
        raise InputError(
            "The reconciler repairs the job queue: set NOTEFALL_REDIS_URL to its Redis (or "
            "NOTEFALL_DATA_DIR to the folder of a running `notefall stack`)",
            code="invalid_settings",
        )
    database = Database(settings.database_url)
    try:
        ensure_migrated(database, settings.database_url)
    finally:
        database.dispose()
    try:
        report = reconcile(settings)
    except redis.RedisError as exc:
        raise InputError(
            f"Redis at NOTEFALL_REDIS_URL does not answer ({exc}); nothing was re-published",
            code="redis_unavailable",
        ) from None
    if report.skipped == "locked":
        print("Another reconciler run is in progress (beat's); try again in a minute")
        return
    sections = [
        ("stale (worker gone), re-published", report.stale),
        ("lost from Redis, re-published", report.lost),
        ("missing next step, added", report.next_steps),
    ]
    for title, labels in sections:
        for label in labels:
            print(f"{title}: {label}")
    if report.dead_letters_relisted:
        print(f"dead letters listed again in Redis: {report.dead_letters_relisted}")
    if report.publish_failures:
        print(f"not published (Redis refused; the next run retries): {report.publish_failures}")
    if report.skipped:
        print(f"partly skipped: {report.skipped}")
    total = len(report.republished)
    print(f"Re-published {total} step{'s' if total != 1 else ''}" if total else "Nothing to repair")


@contextmanager
def _dead_letter_service(settings: Settings) -> Iterator[Any]:
    import redis
    from notefall.server.renders.deadletters import DeadLetterService
    from notefall.server.storage.factory import storage_from_settings

    database = Database(settings.database_url)
    client = (
        redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        if settings.redis_url
        else None
    )
    try:
        ensure_migrated(database, settings.database_url)
        storage = storage_from_settings(settings, clock=utcnow)
        with transaction_scope(database) as session:
            yield DeadLetterService(session, settings, client, storage, utcnow())
    finally:
        if client is not None:
            client.close()
        database.dispose()


def _render_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise InputError(
            f"'{text}' is not a render id; `notefall admin dead-letters list` shows them",
            code="invalid_input",
        ) from None


def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    """List, requeue or discard renders of the dead-letter queue (docs/renders.md)."""
    from notefall.server.kit.errors import ProblemError

    action = args.dead_letters_command
    try:
        if action == "list":
            with _dead_letter_service(settings) as service:
                letters = service.list()
            for letter in letters:
                died = letter.died_at.isoformat(timespec="seconds") if letter.died_at else "-"
                row = [str(letter.render_id), died, letter.queue, f"attempt {letter.attempt}"]
                print("\t".join([*row, letter.step or "-", letter.reason]))
            if not letters:
                print("The dead-letter queue is empty", file=sys.stderr)
        elif action == "requeue":
            render_id = _render_id(args.render_id)
            with _dead_letter_service(settings) as service:
                render = service.requeue(render_id)
                attempt = render.attempt
            print(f"Render {render_id} queued again as attempt {attempt}")
        elif action == "discard":
            render_id = _render_id(args.render_id)
            with _dead_letter_service(settings) as service:
                service.discard(render_id)
            print(f"Render {render_id} discarded: it stays dead, its work files are deleted")
    except ProblemError as error:
        # The API's refusals (not found, not a dead letter) as the CLI's one-line errors.
        raise InputError(error.detail, code=error.code) from None
