"""members can end their sessions: signing out of the member pages ends every session
opened before, on every device

Revision ID: 0012
Revises: 0011

A session is a signed cookie with no server-side record, so signing out only asked the
browser to drop it: a copy (another device, a shared computer's profile) stayed valid for
its twelve hours. The member's row now records when their sessions were ended.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None
# Code of 0011 would neither end sessions on sign-out nor refuse the sessions
# that newer code ended.
oldest_reader = "0012"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("members", sa.Column("sessions_ended_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    # Both engines drop a plain column in place (SQLite since 3.35); a batch rebuild of
    # the table would trip the foreign keys that point at it.
    op.execute("ALTER TABLE members DROP COLUMN sessions_ended_at")
