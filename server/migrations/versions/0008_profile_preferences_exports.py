"""Profiles (avatar, notification and privacy settings) and data exports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("avatar_key", sa.String(length=300), nullable=True),
        sa.Column("notify_render_finished", sa.Boolean(), nullable=False),
        sa.Column("notify_render_failed", sa.Boolean(), nullable=False),
        sa.Column("notify_billing", sa.Boolean(), nullable=False),
        sa.Column("notify_news", sa.Boolean(), nullable=False),
        sa.Column("show_name_on_shared_projects", sa.Boolean(), nullable=False),
        sa.Column("discoverable_by_email", sa.Boolean(), nullable=False),
        sa.Column("product_analytics", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_profiles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
    )
    op.create_table(
        "data_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_data_exports_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    with op.batch_alter_table("data_exports") as batch_op:
        batch_op.create_index(batch_op.f("ix_data_exports_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_data_exports_pending_user_id",
            ["user_id"],
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("data_exports") as batch_op:
        batch_op.drop_index("uq_data_exports_pending_user_id")
        batch_op.drop_index(batch_op.f("ix_data_exports_user_id"))
    op.drop_table("data_exports")
    op.drop_table("profiles")
