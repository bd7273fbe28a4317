"""signing out of the admin pages ends the session on the server: the ids of the admin
sessions ended

Revision ID: 0013
Revises: 0012

An admin session is a signed cookie with no server-side record, so signing out only asked
the browser to drop it: a copy of the cookie (and its CSRF token) kept every admin page
and form open for its eight hours. The ids of ended sessions are now kept while such a
cookie could still be valid, and their cookies are refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None
# Code of 0012 would neither record an admin sign-out nor refuse the admin
# sessions that newer code ended.
oldest_reader = "0013"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "admin_sessions_ended",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_admin_sessions_ended_ended_at", "admin_sessions_ended", ["ended_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_admin_sessions_ended_ended_at", table_name="admin_sessions_ended")
    op.drop_table("admin_sessions_ended")
