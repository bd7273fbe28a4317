"""index stored answers by the recipients they quote, and by age

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import courtois.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
# Code of 0001 would store API answers without the recipients they quote,
# and "forget me" would leave those answers behind.
oldest_reader = "0002"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "idempotency_subjects",
        sa.Column("recipient_digest", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("created_at", courtois.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "recipient_digest", "scope", "key", name=op.f("pk_idempotency_subjects")
        ),
    )
    with op.batch_alter_table("idempotency_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_subjects_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))
    with op.batch_alter_table("idempotency_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_subjects_created_at"))
    op.drop_table("idempotency_subjects")
