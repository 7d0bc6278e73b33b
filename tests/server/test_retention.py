"""Retention: what ``run_retention`` deletes and keeps as of an injected ``now``, on both
database backends; the registry's rules; the hourly task and the command."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notefall.server.accounts.models import AuthSession, RefreshToken, SingleUseToken, User
from notefall.server.activity.models import ActivityEvent
from notefall.server.kit.db import Database, after_commit
from notefall.server.kit.settings import Settings
from notefall.server.retention import PurgeRegistry, run_retention
from notefall.server.retention.__main__ import main as retention_command
from notefall.server.storage.storage import Storage
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .conftest import make_settings

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OWN_PURGES = ("single_use_tokens", "refresh_tokens", "revoked_sessions", "activity_events")


@pytest.fixture
def retention_settings(tmp_path: Path, migrated_url: str) -> Settings:
    return make_settings(tmp_path / "data", migrated_url)


def _names(session: Session, column) -> set[str]:
    return set(session.scalars(select(column)))


def _seed(settings: Settings) -> None:
    """Rows on both sides of every retention line; each row's label says which side."""
    database = Database(settings.database_url)
    with database.sessions() as session:
        user = User(
            email="ada@example.com", name="Ada", password_hash="x", created_at=NOW - 500 * DAY
        )
        session.add(user)
        session.flush()

        def token(label: str, expires_at: datetime, used_at: datetime | None = None) -> None:
            session.add(
                SingleUseToken(
                    user_id=user.id,
                    purpose="email-verification",
                    token_hash=hashlib.sha256(label.encode()).hexdigest(),
                    expires_at=expires_at,
                    used_at=used_at,
                    payload=label,
                )
            )

        token("used 8 days ago: goes", NOW + DAY, used_at=NOW - 8 * DAY)
        token("used 6 days ago: stays", NOW + DAY, used_at=NOW - 6 * DAY)
        token("expired 8 days ago: goes", NOW - 8 * DAY)
        token("expired yesterday: stays", NOW - DAY)
        token("still valid: stays", NOW + DAY)

        def auth_session(label: str, revoked_at: datetime | None) -> AuthSession:
            row = AuthSession(
                user_id=user.id, user_agent=label, created_at=NOW - 400 * DAY, revoked_at=revoked_at
            )
            session.add(row)
            session.flush()
            return row

        active = auth_session("active for 400 days: stays", None)
        recent = auth_session("revoked 29 days ago: stays", NOW - 29 * DAY)
        old = auth_session("revoked 31 days ago: goes", NOW - 31 * DAY)

        def refresh(label: str, family: AuthSession, expires_at: datetime) -> None:
            session.add(
                RefreshToken(
                    family_id=family.refresh_family_id,
                    token_hash=hashlib.sha256(label.encode()).hexdigest(),
                    expires_at=expires_at,
                )
            )

        refresh("expired a second ago: goes", active, NOW - timedelta(seconds=1))
        refresh("valid: stays", active, NOW + DAY)
        refresh("valid, but its session goes", old, NOW + DAY)
        refresh("valid in a kept revoked session: stays", recent, NOW + DAY)

        for label, age in (("401 days: goes", 401 * DAY), ("399 days: stays", 399 * DAY)):
            session.add(
                ActivityEvent(
                    user_id=user.id, kind="sign_in", at=NOW - age, detail={"label": label}
                )
            )
        session.commit()
    database.dispose()


def test_retention_deletes_what_has_outlived_its_keeping_and_keeps_the_rest(
    retention_settings: Settings,
):
    _seed(retention_settings)
    report = run_retention(retention_settings, NOW)

    assert report.failed == {}
    assert {name: report.deleted[name] for name in OWN_PURGES} == {
        "single_use_tokens": 2,
        "refresh_tokens": 1,
        "revoked_sessions": 1,
        "activity_events": 1,
    }
    database = Database(retention_settings.database_url)
    with database.sessions() as session:
        assert _names(session, SingleUseToken.payload) == {
            "used 6 days ago: stays",
            "expired yesterday: stays",
            "still valid: stays",
        }
        assert _names(session, AuthSession.user_agent) == {
            "active for 400 days: stays",
            "revoked 29 days ago: stays",
        }
        hashes = {
            hashlib.sha256(label.encode()).hexdigest(): label
            for label in ("valid: stays", "valid in a kept revoked session: stays")
        }
        assert _names(session, RefreshToken.token_hash) == set(hashes)
        events = session.scalars(select(ActivityEvent)).all()
        assert [event.detail["label"] for event in events] == ["399 days: stays"]
    database.dispose()

    again = run_retention(retention_settings, NOW)
    assert {name: again.deleted[name] for name in OWN_PURGES} == dict.fromkeys(OWN_PURGES, 0)


def test_a_failing_purge_is_rolled_back_and_the_others_still_run(retention_settings: Settings):
    _seed(retention_settings)
    storage_root = retention_settings.storage_dir
    (storage_root / "exports").mkdir(parents=True)
    for name in ("kept.zip", "expired.zip"):
        (storage_root / "exports" / name).write_bytes(b"zip")
    registry = PurgeRegistry()
    seen: list[tuple[Storage, datetime]] = []

    def purge_everything_then_fail(session: Session, storage: Storage, now: datetime) -> int:
        session.execute(delete(ActivityEvent))
        after_commit(session, lambda: storage.delete("exports/kept.zip"))
        raise RuntimeError("disk on fire")

    def purge_an_export(session: Session, storage: Storage, now: datetime) -> int:
        seen.append((storage, now))
        after_commit(session, lambda: storage.delete("exports/expired.zip"))
        return 1

    registry.register("broken", purge_everything_then_fail)
    registry.register("data_exports", purge_an_export)
    report = run_retention(retention_settings, NOW, registry)

    assert report.deleted == {"data_exports": 1}
    assert report.failed == {"broken": "RuntimeError: disk on fire"}
    assert [now for _storage, now in seen] == [NOW]
    assert sorted(p.name for p in (storage_root / "exports").iterdir()) == ["kept.zip"]
    database = Database(retention_settings.database_url)
    with database.sessions() as session:
        assert len(session.scalars(select(ActivityEvent)).all()) == 2
    database.dispose()


def test_purge_names_are_unique():
    registry = PurgeRegistry()

    def purge(session: Session, storage: Storage, now: datetime) -> int:
        return 0

    registry.register("tokens", purge)
    registry.register("tokens", purge)  # importing a module twice registers it again
    with pytest.raises(ValueError, match="'tokens' is already registered"):
        registry.register("tokens", lambda session, storage, now: 0)
    assert registry.items() == [("tokens", purge)]


def test_retention_runs_hourly_on_the_queues_beat_schedule():
    from notefall.server.jobs import TASK_MODULES, celery_app

    assert "notefall.server.retention.tasks" in TASK_MODULES
    celery_app.loader.import_default_modules()
    assert "notefall.retention.run" in celery_app.tasks
    assert celery_app.conf.beat_schedule["notefall.retention.run"] == {
        "task": "notefall.retention.run",
        "schedule": 3600,
        "options": {"expires": 3600},
    }


def test_the_task_and_the_command_run_retention_from_the_environment(
    retention_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    from notefall.server.retention.tasks import run

    monkeypatch.setenv("NOTEFALL_DATA_DIR", str(retention_settings.data_dir))
    monkeypatch.setenv("NOTEFALL_DATABASE_URL", retention_settings.database_url)
    database = Database(retention_settings.database_url)
    with database.sessions() as session:
        user = User(email="bob@example.com", name="Bob", password_hash="x")
        session.add(user)
        session.flush()
        # Real time here: the task and the command run as of now.
        session.add(
            ActivityEvent(user_id=user.id, kind="sign_in", at=datetime.now(UTC) - 500 * DAY)
        )
        session.commit()
    database.dispose()

    assert run()["activity_events"] == 1
    assert retention_command() == 0
    assert "activity_events: 0 removed" in capsys.readouterr().out
    monkeypatch.setenv("NOTEFALL_STORAGE_URL", "ftp://nowhere")
    assert retention_command() == 2
