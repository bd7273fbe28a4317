"""the database says which releases may still run against it: rolling upgrades

Revision ID: 0016
Revises: 0015

Code refused every database at a revision it did not know, so once `courtois migrate` of a
new release had run, every process of the previous one failed (`/healthz` 503, every
command exit 1) even when the migrations had only added what it never reads: processes
could not be replaced one by one. Each migration now declares `oldest_reader`, the oldest
revision whose code still runs correctly against the schema it leaves, and `courtois
migrate` keeps the greatest of those over the migrations applied in this one-row table.
Code that finds a revision it does not know accepts the database when its own head is at
least that revision. The table's name and shape never change: older code reads it.

The row written here names this revision; `courtois migrate` sets it, in the same
transaction, to what the migrations declare.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None
# Only adds a table that `courtois migrate` alone writes: code of 0015 runs against it
# unchanged (though that release, like every one before this, refuses a newer schema).
oldest_reader = "0015"


def upgrade() -> None:
    """Apply this revision."""
    table = op.create_table(
        "schema_readers",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("oldest_reader", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_readers")),
    )
    op.bulk_insert(table, [{"id": 1, "oldest_reader": revision}])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("schema_readers")
