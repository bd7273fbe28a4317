"""consents keep the words the member previewed, so that a release or a setting that
changes the templates' words no longer holds the emails consented to before it

Revision ID: 0017
Revises: 0016

The consent kept only a hash of the rendering previewed, and the worker rendered every
email again right before it left: a fixed translation or a new postal address changed the
hash of every email consented to and not yet sent, and each was held. The consent now keeps
the rendering itself (`delivery/consented_words.py`), and the worker sends those words.
Consents given before this revision keep none, and their emails are rendered again as
before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None
# Code of 0016 would empty a note ("forget me", a member's erasure) and leave it in the
# words kept beside it.
oldest_reader = "0017"


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("consents", sa.Column("words", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    # Both engines drop a plain column in place (SQLite since 3.35).
    op.execute("ALTER TABLE consents DROP COLUMN words")
