"""member sign-in links are used once: the ids of those already used

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
# Code of 0005 would let a sign-in link be used again without recording it.
oldest_reader = "0006"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sign_in_links_used",
        sa.Column("link_id", sa.String(32), primary_key=True),
        sa.Column("used_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sign_in_links_used_used_at", "sign_in_links_used", ["used_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_sign_in_links_used_used_at", table_name="sign_in_links_used")
    op.drop_table("sign_in_links_used")
