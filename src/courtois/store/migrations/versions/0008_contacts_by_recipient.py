"""contacts found by recipient digest: "forget me" and opting out delete one inbox's rows

Revision ID: 0008
Revises: 0007

Contacts are kept by member (primary key and unique index both start with the member), so
deleting one recipient from every address book, which every opt-out and "forget me" does,
read the whole table. The index makes it a lookup on each shard.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
# An index only: code of 0007 runs unchanged.
oldest_reader = "0007"


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_contacts_recipient_digest", "contacts", ["recipient_digest"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_contacts_recipient_digest", table_name="contacts")
