"""An empty database migrates to head, and the migrations match the models, on every backend."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from notefall.server.kit.db import normalize_database_url
from notefall.server.migrations import alembic_config, upgrade_to_head
from notefall.server.models import Base
from sqlalchemy import create_engine, inspect


def _current_and_head(url: str) -> tuple[set[str], set[str]]:
    config = alembic_config(url)
    engine = create_engine(normalize_database_url(url))
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    engine.dispose()
    return current, set(ScriptDirectory.from_config(config).get_heads())


def test_an_empty_database_migrates_to_head(database_url: str):
    upgrade_to_head(database_url)
    current, head = _current_and_head(database_url)
    assert current == head != set()
    engine = create_engine(normalize_database_url(database_url))
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(Base.metadata.tables) <= tables


def test_the_models_and_the_migrations_agree(migrated_url: str):
    engine = create_engine(normalize_database_url(migrated_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_go_down_to_nothing_and_up_again(database_url: str):
    # database_url, not migrated_url: this test changes the schema, which other tests share.
    migrated_url = database_url
    upgrade_to_head(migrated_url)
    config = alembic_config(migrated_url)
    command.downgrade(config, "base")
    engine = create_engine(normalize_database_url(migrated_url))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade_to_head(migrated_url)
    assert _current_and_head(migrated_url)[0] != set()


def test_the_migrations_form_one_line():
    # Two revisions off the same parent (domains built side by side) must be put in order
    # before they land; "head" is then unambiguous.
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert [r.revision for r in revisions] == [f"{n:04d}" for n in range(len(revisions), 0, -1)]
