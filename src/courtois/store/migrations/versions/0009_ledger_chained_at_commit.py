"""ledger entries chained at COMMIT on PostgreSQL: the head is locked for the commit only

Revision ID: 0009
Revises: 0008

Every writing transaction appends to the one hash chain and locks its head. Appended from
the client, the lock was held across three round trips (read the head, insert the entries,
move the head) and the COMMIT, and each time the client's thread had to get the
interpreter back before it could send the next one: under sixteen concurrent requests the
head was held about 6 ms a transaction, and every write of the platform queued on it
(`bench/api.py`; pg_stat_activity showed a backend or two waiting on it at any moment).

On PostgreSQL a transaction now inserts its entries, unchained, as one `ledger_pending`
row; a deferred constraint trigger runs inside its COMMIT, locks the head, chains them
(SHA-256 over prev_hash + canonical prefix + seq + "}", as `domain/ledger.hash_canonical`)
and deletes the row. The lock is held for that and the commit's WAL flush, with no client
in between. The chain's rows are the ones the client wrote before, byte for byte, so
`audit verify` and every reader are unchanged, and code of revision 0008 still appends
directly under the same lock (safe for a rolling upgrade). SQLite, one writer at a time,
keeps appending from the client; the table exists there, empty, so both engines have one
schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from courtois.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
# Code of 0008 appends to the ledger from the client under the same head lock
# the trigger takes: the chain stays one.
oldest_reader = "0008"

CHAIN_FUNCTION = """
CREATE FUNCTION courtois_chain_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq integer;
    head_hash text;
    entry json;
    next_hash text;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM ledger_head WHERE id = 1 FOR UPDATE;
    FOR entry IN SELECT value FROM json_array_elements(NEW.entries::json) LOOP
        head_seq := head_seq + 1;
        next_hash := encode(
            sha256(convert_to(head_hash || (entry ->> 1) || head_seq::text || '}', 'UTF8')),
            'hex'
        );
        INSERT INTO ledger (seq, at, event, payload, prev_hash, hash)
        VALUES (head_seq, NEW.at, entry ->> 0, entry ->> 2, head_hash, next_hash);
        head_hash := next_hash;
    END LOOP;
    UPDATE ledger_head SET seq = head_seq, hash = head_hash WHERE id = 1;
    DELETE FROM ledger_pending WHERE id = NEW.id;
    RETURN NULL;
END
$$
"""

CHAIN_TRIGGER = """
CREATE CONSTRAINT TRIGGER ledger_pending_chain
AFTER INSERT ON ledger_pending
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION courtois_chain_ledger()
"""


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ledger_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_pending")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHAIN_FUNCTION)
        op.execute(CHAIN_TRIGGER)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_pending_chain ON ledger_pending")
        op.execute("DROP FUNCTION courtois_chain_ledger()")
    op.drop_table("ledger_pending")
