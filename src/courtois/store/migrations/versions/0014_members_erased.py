"""members can be erased: the instant a member's personal data was erased

Revision ID: 0014
Revises: 0013

Erasing a member (GDPR Art. 17) clears their address, name and everything they gave, but
keeps the row under its id: consents, the ledger and the sender's record name members by
id, and the history they hold stays whole. The row now records when it was erased, so an
erased member is told apart from one whose fields happen to be empty, and their id is not
taken up again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None
# Code of 0013 would take an erased member for a live one (invite for them,
# register their id again).
oldest_reader = "0014"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("members", sa.Column("erased_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    # Both engines drop a plain column in place (SQLite since 3.35); a batch rebuild of
    # the table would trip the foreign keys that point at it.
    op.execute("ALTER TABLE members DROP COLUMN erased_at")
