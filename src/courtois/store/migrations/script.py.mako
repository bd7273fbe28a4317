"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import courtois.store.types
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}
# The oldest revision whose code still runs correctly against the schema this leaves
# (docs/operations.md, "Upgrades"): the one before when its code can ignore what this
# adds (an index; a table or nullable column newer code does without), this one when
# older code would misread, or fail to keep up, what it changes. Decide: this default
# lets no older code run.
oldest_reader = ${repr(up_revision)}


def upgrade() -> None:
    """Apply this revision."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Revert this revision."""
    ${downgrades if downgrades else "pass"}
