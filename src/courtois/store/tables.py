"""The schema. Every per-recipient table carries `recipient_digest`, never an address
except where an open invitation still needs one to be delivered.

Each table is laid out to be distributed by one key (docs/scaling.md, "Sharding by
recipient"): the per-recipient tables by the recipient digest, the per-member ones by the
member id. Every primary key and unique index of a distributed table includes its key, and
foreign keys link only tables of the same key, through that key, so each constraint holds
within one shard. A surrogate `id` that is also looked up alone keeps a plain index. Where
a per-recipient row names a member or a consent, no foreign key holds it: `invite` writes
the consent, its recipients and the invitations in one transaction under the member's
lock, and members and consents are never deleted: erasing a member empties its row and
its consents of personal data (`services.member_erasure`) and keeps them under their ids.

On SQLite, which has one node and generates integers only for a lone INTEGER PRIMARY KEY,
the tables keyed by an integer `id` (ROWID_KEYED) keep `id` alone as their primary key.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from courtois.store.types import CanonicalJSON, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(64)
ID = String(36)
MEMBER_ID = String(128)
# The largest value an `Integer` column holds on both engines (PostgreSQL's is 4 bytes):
# an id from outside (a cursor, a form field) past it names no row, and PostgreSQL would
# refuse to compare it with one.
MAX_INTEGER_ID = 2**31 - 1

# Keyed by (distribution key, id) on PostgreSQL, by `id` alone on SQLite (see above).
ROWID_KEYED = ("contacts", "decisions", "complaints")

members = Table(
    "members",
    metadata,
    Column("id", MEMBER_ID, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("email_digest", DIGEST, nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("locale", String(8), nullable=False),
    # Replies to an invitation reach the member only if they chose so (off by default).
    Column("reply_to", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Member-page sessions opened up to this instant are over (the member signed out).
    Column("sessions_ended_at", UTCDateTime, nullable=True),
    # When the member's personal data was erased: email, digest and name are then empty,
    # and the id is never a member again (`services.member_erasure`).
    Column("erased_at", UTCDateTime, nullable=True),
)

contacts = Table(
    "contacts",
    metadata,
    # Per member: imported, listed, picked and exported by the member who owns them.
    Column("id", Integer, nullable=False, autoincrement=True),
    Column("member_id", ForeignKey("members.id"), nullable=False),
    Column("recipient_digest", DIGEST, nullable=False),
    Column("address", String(254), nullable=False),
    Column("display_name", String(120), nullable=False),
    Column("source", String(40), nullable=False),
    Column("selected", Boolean, nullable=False, default=False),
    Column("imported_at", UTCDateTime, nullable=False),
    # The address and name as the member's search compares them (`domain.contacts.folded`).
    Column("search_key", Text, nullable=True),
    PrimaryKeyConstraint("member_id", "id"),
    Index("uq_contacts_member_digest", "member_id", "recipient_digest", unique=True),
    Index("ix_contacts_selected_imported", "selected", "imported_at"),
    # Opting out and "forget me" delete one recipient from every member's address book.
    Index("ix_contacts_recipient_digest", "recipient_digest"),
)

consents = Table(
    "consents",
    metadata,
    # Per member. Found by id alone too (revoking, rendering an invitation).
    Column("id", ID, nullable=False),
    Column("member_id", ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("preview_hash", String(64), nullable=False),
    Column("reminders", Integer, nullable=False),
    Column("locale", String(8), nullable=False),
    Column("note", Text, nullable=False),
    Column("text_shown", Text, nullable=False),
    Column("ip", String(64), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("given_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    # The rendering previewed (delivery/consented_words.py); none when it cannot be kept.
    Column("words", Text, nullable=True),
    PrimaryKeyConstraint("member_id", "id"),
    Index("ix_consents_id", "id"),
)

# A consent's columns but the words kept to send (kilobytes a consent), which only the
# sending worker and the words check read.
CONSENT_FACTS = tuple(column for column in consents.c if column.key != "words")

# Per recipient: which inboxes a consent names. No foreign key to `consents` (per member):
# the one writer inserts the consent and its recipients together, and consents are never
# deleted.
consent_recipients = Table(
    "consent_recipients",
    metadata,
    Column("consent_id", ID, primary_key=True),
    Column("recipient_digest", DIGEST, primary_key=True),
)

invitations = Table(
    "invitations",
    metadata,
    # Per recipient. The member and the consent live on the member's shard: no foreign key
    # to them; `invite` writes all three under the member's lock.
    Column("id", ID, nullable=False),
    Column("member_id", MEMBER_ID, nullable=False),
    Column("consent_id", ID, nullable=False, index=True),
    Column("recipient_digest", DIGEST, nullable=False),
    # Kept only while the invitation is open; reduced to the digest afterwards (invariant 10).
    Column("address", String(254), nullable=True),
    Column("locale", String(8), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("remind_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("recipient_digest", "id"),
    # Links, the API and the worker find an invitation by its id alone.
    Index("ix_invitations_id", "id"),
    Index("ix_invitations_member_recipient", "member_id", "recipient_digest"),
    Index("ix_invitations_state_expires", "state", "expires_at"),
    # The API lists a member's invitations newest first, page by page.
    Index("ix_invitations_member_created", "member_id", "created_at", "id"),
    # The admin pages count, per day, invitations sent (and accepted since) and bounced.
    Index("ix_invitations_sent_at", "sent_at"),
    Index("ix_invitations_state_updated", "state", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    # Per recipient, on the shard of its invitation.
    Column("id", ID, nullable=False),
    Column("invitation_id", ID, nullable=False, index=True),
    Column("member_id", MEMBER_ID, nullable=False),
    Column("recipient_digest", DIGEST, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("scheduled_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    # When it was first claimed: temporary refusals are retried until a deadline from then.
    # Time lost to our own relay's faults moves it on (none before a first real try), so
    # that time never counts toward the deadline (`send_outcomes`).
    Column("first_attempt_at", UTCDateTime, nullable=True),
    # The digest message that carried this one, when several invitations left as one email.
    Column("carried_by", ID, nullable=True),
    Column("last_reason", String(200), nullable=True),
    PrimaryKeyConstraint("recipient_digest", "id"),
    ForeignKeyConstraint(
        ["recipient_digest", "invitation_id"], ["invitations.recipient_digest", "invitations.id"]
    ),
    # The worker claims and updates messages by id.
    Index("ix_messages_id", "id"),
    # A pass's batch, in the order it is read (migration 0018): read in order, it stops at
    # the batch's end instead of sorting every message due at the same instant.
    Index("ix_messages_state_scheduled", "state", "scheduled_at", "member_id"),
    Index("ix_messages_member_created", "member_id", "created_at"),
    # The admin pages count the emails sent per day.
    Index("ix_messages_sent_at", "sent_at"),
)

decisions = Table(
    "decisions",
    metadata,
    # Per recipient. Read past a watermark of `id` by the metrics; by digest on SQLite,
    # whose key is `id` alone.
    Column("id", Integer, nullable=False, autoincrement=True),
    Column("invitation_id", ID, nullable=True, index=True),
    Column("message_id", ID, nullable=True),
    Column("member_id", MEMBER_ID, nullable=False),
    Column("recipient_digest", DIGEST, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("stage", String(8), nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("verdicts", CanonicalJSON, nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("recipient_digest", "id"),
    Index("ix_decisions_id", "id"),
    # The admin pages count refusals and deferrals per day.
    Index("ix_decisions_outcome_decided", "outcome", "decided_at"),
)

recipients = Table(
    "recipients",
    metadata,
    # One row per digest: the lock every per-recipient decision takes first.
    Column("digest", DIGEST, primary_key=True),
    Column("unsubscribed_at", UTCDateTime, nullable=True),
    Column("suppressed_reason", String(40), nullable=True),
    Column("suppressed_at", UTCDateTime, nullable=True),
    Column("joined_at", UTCDateTime, nullable=True),
    Column("forgotten_at", UTCDateTime, nullable=True),
)

recipient_blocks = Table(
    "recipient_blocks",
    metadata,
    Column("recipient_digest", DIGEST, primary_key=True),
    Column("member_id", MEMBER_ID, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)

complaints = Table(
    "complaints",
    metadata,
    # Per member: a sender fact, counted by member on every invitation. Indexed by member
    # on SQLite, whose key is `id` alone.
    Column("id", Integer, nullable=False, autoincrement=True),
    Column("member_id", MEMBER_ID, nullable=False, index=True),
    Column("recipient_digest", DIGEST, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("member_id", "id"),
    # The admin pages count complaints per day.
    Index("ix_complaints_at", "at"),
)

sender_activity = Table(
    "sender_activity",
    metadata,
    # Per member: one row per invitation, so the sender facts read on every invitation and
    # every send (invariant 12: messages this week, outcomes over 90 days) are a lookup by
    # member id on the member's shard instead of a read of `messages` and `invitations`,
    # which live with their recipients, on every shard (docs/scaling.md). Written in the
    # transaction that changes the invitation or its message; holds no recipient data.
    Column("member_id", MEMBER_ID, nullable=False),
    Column("invitation_id", ID, nullable=False),
    # The invitation's first email, while it counts against the sender's caps: set when it
    # is scheduled, cleared when it is cancelled (a refused invitation never had one).
    Column("message_id", ID, nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("state", String(16), nullable=False),
    PrimaryKeyConstraint("member_id", "invitation_id"),
    Index("ix_sender_activity_member_created", "member_id", "created_at"),
    Index("ix_sender_activity_member_sent", "member_id", "sent_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

# Which recipients a stored answer is about, so "forget me" finds the answers quoting an
# address by its digest instead of reading every stored answer.
idempotency_subjects = Table(
    "idempotency_subjects",
    metadata,
    Column("recipient_digest", DIGEST, primary_key=True),
    Column("scope", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

# Member sign-in links already used: each opens one session, once. Kept while a link could
# still be valid (15 minutes), then purged.
sign_in_links_used = Table(
    "sign_in_links_used",
    metadata,
    Column("link_id", String(32), primary_key=True),
    Column("used_at", UTCDateTime, nullable=False, index=True),
)

# Admin sessions ended by signing out: the session is a signed cookie, so a copy of it
# would otherwise stay valid for its 8 hours. Kept while such a cookie could still be
# valid, then purged.
admin_sessions_ended = Table(
    "admin_sessions_ended",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("ended_at", UTCDateTime, nullable=False, index=True),
)

ledger = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(40), nullable=False),
    Column("payload", CanonicalJSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# PostgreSQL only: a transaction's entries, one row a transaction, waiting for its COMMIT,
# where a deferred trigger (migration 0009) chains them onto the head and deletes the row.
# The head's lock is then held inside COMMIT only, not across the client's round trips.
ledger_pending = Table(
    "ledger_pending",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    # A JSON array of [event, canonical prefix, canonical payload], in the order recorded.
    Column("entries", Text, nullable=False),
)

# One row: the chain's head, locked by each appending transaction so entries never fork.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# The webhook outbox: events written in the transaction of the change they report, sent
# afterwards (at least once; receivers dedupe by id). `payload` is the exact body sent.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("payload", CanonicalJSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_webhook_events_state_next", "state", "next_attempt_at"),
    Index("ix_webhook_events_created_at", "created_at"),
)

# One row per delivery attempt: what the receiver answered, or why nothing came back.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", ID, nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(200), nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

# One row: the oldest schema revision whose code may still run against this database,
# written by `courtois migrate`. Code older than the schema reads it to know whether a
# later release's migration left the database usable by it (a rolling upgrade), so its
# name and shape never change.
schema_readers = Table(
    "schema_readers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("oldest_reader", String(32), nullable=False),
)
