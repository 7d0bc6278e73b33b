"""Alembic migrations, run from code (no alembic.ini): ``upgrade_to_head(url)``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from notefall.server.kit.db import normalize_database_url

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # '%' is ConfigParser's interpolation character; a password may contain one.
    config.set_main_option(
        "sqlalchemy.url", normalize_database_url(database_url).replace("%", "%%")
    )
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
