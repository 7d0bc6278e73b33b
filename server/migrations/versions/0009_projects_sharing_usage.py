"""Projects: audio recordings, a tag table and listing indexes, collaborators, share links;
the usage ledger of stored files.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("audio_key", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("audio_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("audio_codec", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("audio_duration", sa.Float(), nullable=True))
        batch_op.create_index("ix_projects_owner_id_created_at", ["owner_id", "created_at"])
        batch_op.create_index("ix_projects_owner_id_updated_at", ["owner_id", "updated_at"])
        batch_op.create_index("ix_projects_owner_id_name", ["owner_id", "name"])

    op.create_table(
        "project_tags",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_tags_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "tag", name=op.f("pk_project_tags")),
    )
    with op.batch_alter_table("project_tags") as batch_op:
        batch_op.create_index("ix_project_tags_tag_project_id", ["tag", "project_id"])
    _copy_tags_into_their_table()

    op.create_table(
        "project_collaborators",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_collaborators_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_collaborators")),
        sa.UniqueConstraint(
            "project_id", "email", name=op.f("uq_project_collaborators_project_id")
        ),
    )
    with op.batch_alter_table("project_collaborators") as batch_op:
        batch_op.create_index(batch_op.f("ix_project_collaborators_email"), ["email"])

    op.create_table(
        "share_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_share_links_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_links_token_hash")),
    )
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_project_id"), ["project_id"])

    op.create_table(
        "stored_files",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_stored_files_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_stored_files")),
    )
    with op.batch_alter_table("stored_files") as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_files_owner_id"), ["owner_id"])


def _copy_tags_into_their_table() -> None:
    """Projects made before this revision keep their tags searchable."""
    connection = op.get_bind()
    projects = sa.table("projects", sa.column("id", sa.Uuid()), sa.column("tags", sa.JSON()))
    tags = sa.table(
        "project_tags", sa.column("project_id", sa.Uuid()), sa.column("tag", sa.String())
    )
    rows = [
        {"project_id": project_id, "tag": tag}
        for project_id, project_tags in connection.execute(
            sa.select(projects.c.id, projects.c.tags)
        )
        for tag in dict.fromkeys(t.lower() for t in project_tags or [])
    ]
    if rows:
        connection.execute(sa.insert(tags), rows)


def downgrade() -> None:
    with op.batch_alter_table("stored_files") as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_files_owner_id"))
    op.drop_table("stored_files")
    with op.batch_alter_table("share_links") as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_project_id"))
    op.drop_table("share_links")
    with op.batch_alter_table("project_collaborators") as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_collaborators_email"))
    op.drop_table("project_collaborators")
    with op.batch_alter_table("project_tags") as batch_op:
        batch_op.drop_index("ix_project_tags_tag_project_id")
    op.drop_table("project_tags")
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_index("ix_projects_owner_id_name")
        batch_op.drop_index("ix_projects_owner_id_updated_at")
        batch_op.drop_index("ix_projects_owner_id_created_at")
        batch_op.drop_column("audio_duration")
        batch_op.drop_column("audio_codec")
        batch_op.drop_column("audio_sha256")
        batch_op.drop_column("audio_key")
