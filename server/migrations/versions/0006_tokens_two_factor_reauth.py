"""One single-use token store, two-factor sign-in, and re-authentication of sessions.

Email-verification and password-reset tokens move into ``single_use_tokens`` (their
purpose in a column, pending tokens keep working); ``two_factor`` and ``recovery_codes``
hold TOTP authenticators; ``sessions.reauthenticated_at`` records the last time a session
proved its password again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables that move into single_use_tokens, and the purpose their rows get there.
OLD_TOKEN_TABLES = {
    "email_verification_tokens": "verify-email",
    "password_reset_tokens": "password-reset",
}
COLUMNS = "id, user_id, token_hash, expires_at, used_at, created_at"


def upgrade() -> None:
    op.create_table(
        "single_use_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.String(length=320), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_single_use_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_single_use_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_single_use_tokens_token_hash")),
    )
    with op.batch_alter_table("single_use_tokens") as batch_op:
        batch_op.create_index(batch_op.f("ix_single_use_tokens_user_id"), ["user_id"], unique=False)
    for table, purpose in OLD_TOKEN_TABLES.items():
        op.execute(
            sa.text(
                f"INSERT INTO single_use_tokens ({COLUMNS}, purpose) "
                f"SELECT {COLUMNS}, :purpose FROM {table}"
            ).bindparams(purpose=purpose)
        )
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_user_id"))
        op.drop_table(table)

    op.create_table(
        "two_factor",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret_ciphertext", sa.String(length=200), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_two_factor_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_two_factor")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("recovery_codes") as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("sessions") as batch_op:
        batch_op.add_column(
            sa.Column("reauthenticated_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_column("reauthenticated_at")
    with op.batch_alter_table("recovery_codes") as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))
    op.drop_table("recovery_codes")
    op.drop_table("two_factor")

    for table, purpose in OLD_TOKEN_TABLES.items():
        op.create_table(
            table,
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f(f"fk_{table}_user_id_users"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("token_hash", name=op.f(f"uq_{table}_token_hash")),
        )
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_user_id"), ["user_id"], unique=False)
        op.execute(
            sa.text(
                f"INSERT INTO {table} ({COLUMNS}) "
                f"SELECT {COLUMNS} FROM single_use_tokens WHERE purpose = :purpose"
            ).bindparams(purpose=purpose)
        )
    # Pending email changes have no table to go back to; they are dropped.
    with op.batch_alter_table("single_use_tokens") as batch_op:
        batch_op.drop_index(batch_op.f("ix_single_use_tokens_user_id"))
    op.drop_table("single_use_tokens")
