"""index what the admin pages count per day: sends, refusals, bounces, complaints

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
# Indexes only: code of 0003 runs unchanged.
oldest_reader = "0003"

INDEXES = (
    ("decisions", "ix_decisions_outcome_decided", ["outcome", "decided_at"]),
    ("messages", "ix_messages_sent_at", ["sent_at"]),
    ("invitations", "ix_invitations_sent_at", ["sent_at"]),
    ("invitations", "ix_invitations_state_updated", ["state", "updated_at"]),
    ("complaints", "ix_complaints_at", ["at"]),
)


def upgrade() -> None:
    """Apply this revision."""
    for table, name, columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    """Revert this revision."""
    for table, name, _columns in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
