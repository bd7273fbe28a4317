"""sender facts from a per-member table: one row per invitation, on the member's shard

Revision ID: 0007
Revises: 0006

The sender-quota rules read, on every invitation and every send, a member's emails of the
last week and the outcomes of their invitations over 90 days. Those live in `messages` and
`invitations`, which are distributed by recipient, so the read went to every shard.
`sender_activity` holds the same facts keyed by member. The upgrade fills it from every
existing invitation that had an email or was sent (a refused one never counts), so the
facts read after it are the facts read before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
# Code of 0006 would change invitations without `sender_activity`, and the
# sender caps would count wrong.
oldest_reader = "0007"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sender_activity",
        sa.Column("member_id", sa.String(128), nullable=False),
        sa.Column("invitation_id", sa.String(36), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("member_id", "invitation_id", name="pk_sender_activity"),
    )
    op.create_index("ix_sender_activity_message_id", "sender_activity", ["message_id"])
    op.create_index(
        "ix_sender_activity_member_created", "sender_activity", ["member_id", "created_at"]
    )
    op.create_index("ix_sender_activity_member_sent", "sender_activity", ["member_id", "sent_at"])
    # An invitation's first email was created with it (a reminder later); it may have become
    # the carrier of a digest since. It counts against the caps unless it was cancelled.
    # Plain SQL: the same statement on both engines.
    op.execute(
        """
        INSERT INTO sender_activity
            (member_id, invitation_id, message_id, created_at, sent_at, state)
        SELECT i.member_id, i.id,
               (SELECT MIN(m.id) FROM messages m
                 WHERE m.recipient_digest = i.recipient_digest
                   AND m.invitation_id = i.id
                   AND m.kind <> 'reminder'
                   AND m.created_at = i.created_at
                   AND m.state <> 'cancelled'),
               i.created_at, i.sent_at, i.state
          FROM invitations i
         WHERE i.sent_at IS NOT NULL
            OR EXISTS (SELECT 1 FROM messages m
                        WHERE m.recipient_digest = i.recipient_digest
                          AND m.invitation_id = i.id
                          AND m.kind <> 'reminder'
                          AND m.created_at = i.created_at)
        """
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_sender_activity_member_sent", table_name="sender_activity")
    op.drop_index("ix_sender_activity_member_created", table_name="sender_activity")
    op.drop_index("ix_sender_activity_message_id", table_name="sender_activity")
    op.drop_table("sender_activity")
