"""the due-messages index holds the member too, the order a pass reads them in, so a batch
reads about a batch's rows, not every message due at the same instant

Revision ID: 0018
Revises: 0017

A pass reads its next batch oldest first, ties broken by member and id (messages due at
the same instant are grouped by member, whose facts are then read once). The index held
the state and the due time only: every message due at one instant (a member's invitation
of 500, a backlog after an outage, the bench's 2,000) was read, joined to its invitation
and sorted for each batch of 200, a cost that grew with the queue. With the member in the
index, the batch is read in order and the read stops at its end; only one member's emails
due at one instant are sorted by id. The id is left out: with it, SQLite (which keeps no
statistics) chose this index over ix_messages_id for updates by id and state, walking every
scheduled message.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None
# An index only: code of 0017 runs unchanged.
oldest_reader = "0017"


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_messages_state_scheduled", table_name="messages")
    op.create_index(
        "ix_messages_state_scheduled",
        "messages",
        ["state", "scheduled_at", "member_id"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_messages_state_scheduled", table_name="messages")
    op.create_index("ix_messages_state_scheduled", "messages", ["state", "scheduled_at"])
