"""contacts of stopped recipients leave the address books: those kept from before a hard
bounce or a complaint dropped them

Revision ID: 0015
Revises: 0014

A hard bounce or a complaint used to suppress a recipient and leave them in the address
books of the members who had imported them, where an opt-out drops them: a member could
tell the two apart, and learn that someone else's email bounced or was reported as spam
(invariant 11). Suppressions drop the contacts now, as opt-outs do, and an import no
longer stores a stopped recipient again, but rows kept by the suppressions made before
are still there. This deletes what each stop would drop today: a recipient suppressed or
opted out of everyone (a "forget me" too) leaves every address book, and one who stopped
a single member leaves that member's. Nothing else is touched: the recipient's own rows,
the invitations and the ledger stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None
# Code of 0014 would keep leaving the contacts of recipients it suppresses in
# address books, where nothing would delete them after this migration ran.
oldest_reader = "0015"

# Digests per statement: well under every engine's limit on bound parameters.
_BATCH = 500


def upgrade() -> None:
    """Apply this revision."""
    connection = op.get_bind()
    contacts = sa.table(
        "contacts",
        sa.column("member_id", sa.String()),
        sa.column("recipient_digest", sa.String()),
    )
    recipients = sa.table(
        "recipients",
        sa.column("digest", sa.String()),
        sa.column("unsubscribed_at", sa.DateTime()),
        sa.column("suppressed_at", sa.DateTime()),
    )
    blocks = sa.table(
        "recipient_blocks",
        sa.column("recipient_digest", sa.String()),
        sa.column("member_id", sa.String()),
    )
    # Driven by the contacts, which are few (each is kept only until its retention ends,
    # a day by default), by statements that each read one table: contacts are kept by
    # member, recipients and their blocks by recipient, and a distributed database joins
    # neither with the other.
    held = sorted(connection.execute(sa.select(contacts.c.recipient_digest).distinct()).scalars())
    drop_pair = contacts.delete().where(
        contacts.c.member_id == sa.bindparam("b_member"),
        contacts.c.recipient_digest == sa.bindparam("b_digest"),
    )
    for start in range(0, len(held), _BATCH):
        chunk = held[start : start + _BATCH]
        stopped = list(
            connection.execute(
                sa.select(recipients.c.digest).where(
                    recipients.c.digest.in_(chunk),
                    recipients.c.unsubscribed_at.is_not(None)
                    | recipients.c.suppressed_at.is_not(None),
                )
            ).scalars()
        )
        if stopped:
            connection.execute(contacts.delete().where(contacts.c.recipient_digest.in_(stopped)))
        pairs = [
            {"b_member": row.member_id, "b_digest": row.recipient_digest}
            for row in connection.execute(
                sa.select(blocks.c.member_id, blocks.c.recipient_digest).where(
                    blocks.c.recipient_digest.in_(chunk)
                )
            )
        ]
        if pairs:
            connection.execute(drop_pair, pairs)


def downgrade() -> None:
    """Revert this revision."""
    # Nothing to put back: the contacts deleted are those the stops should have dropped,
    # and the earlier release reads the address books without them.
