"""messages remember their first attempt: temporary refusals are retried until a deadline
counted from it

Revision ID: 0010
Revises: 0009

The retry deadline was counted from the message's creation, so a message first tried long
after it was made (a reminder, due 14 days on; an invitation deferred by the inbox's
quota) was given up at its first temporary refusal. Rows already in the table have no
first attempt: their next claim records one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
# Code of 0009 leaves the new column empty, which newer code reads as no attempt
# yet (its next claim records one), and counts its own retry deadlines from a message's
# creation, as it always did.
oldest_reader = "0009"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("messages", sa.Column("first_attempt_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    # Both engines drop a plain column in place (SQLite since 3.35); a batch rebuild of
    # the table would trip the foreign keys that point at it.
    op.execute("ALTER TABLE messages DROP COLUMN first_attempt_at")
