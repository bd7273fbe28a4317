"""contacts carry the key a member's search compares: address and name, case and accents
aside

Revision ID: 0011
Revises: 0010

The search compared the database's lower() of address and name: SQLite folds only ASCII
("Élodie" never matched "élodie"), PostgreSQL as its locale says, and neither equates a
decomposed "é" with a composed one. The key is folded in Python (`domain.contacts`) when a
contact is stored; rows already there get theirs here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.domain.contacts import search_key

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
# Code of 0010 would store contacts without a search key, and no search would
# ever find them.
oldest_reader = "0011"

_BATCH = 1000


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("contacts", sa.Column("search_key", sa.Text(), nullable=True))
    connection = op.get_bind()
    table = sa.table(
        "contacts",
        sa.column("member_id", sa.String()),
        sa.column("id", sa.Integer()),
        sa.column("address", sa.String()),
        sa.column("display_name", sa.String()),
        sa.column("search_key", sa.Text()),
    )
    rows = connection.execute(
        sa.select(table.c.member_id, table.c.id, table.c.address, table.c.display_name)
    ).all()
    keyed = [
        {"b_member": r.member_id, "b_id": r.id, "key": search_key(r.address, r.display_name)}
        for r in rows
    ]
    update = (
        table.update()
        .where(table.c.member_id == sa.bindparam("b_member"), table.c.id == sa.bindparam("b_id"))
        .values(search_key=sa.bindparam("key"))
    )
    for start in range(0, len(keyed), _BATCH):
        connection.execute(update, keyed[start : start + _BATCH])


def downgrade() -> None:
    """Revert this revision."""
    # Both engines drop a plain column in place (SQLite since 3.35); a batch rebuild of
    # the table would trip the foreign keys that point at it.
    op.execute("ALTER TABLE contacts DROP COLUMN search_key")
