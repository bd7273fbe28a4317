"""key every distributed table by its distribution column (recipient digest or member id)

Revision ID: 0005
Revises: 0004

Primary keys of per-recipient tables become (recipient_digest, id), those of per-member
tables (member_id, id); an id still looked up alone gets a plain index. The message ->
invitation foreign key carries the digest; the keys from per-recipient rows to consents and
members (another distribution) are dropped. On SQLite the tables keyed by an integer `id`
keep it alone: only a lone INTEGER PRIMARY KEY is generated there.

Foreign keys whose parent key changes go first, and come back once the parent has its new
key: SQLite rebuilds a table to change it (batch mode) and checks every copied row.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
# Rebuilds primary and foreign keys that code of 0004 was written against.
oldest_reader = "0005"

# (table, distribution column) of the tables keyed by an integer id, widened on PostgreSQL.
ROWID_KEYED = (
    ("decisions", "recipient_digest"),
    ("contacts", "member_id"),
    ("complaints", "member_id"),
)
MESSAGES_FK = "fk_messages_recipient_digest_invitations"
OLD_MESSAGES_FK = "fk_messages_invitation_id_invitations"
INVITATION_FKS = (
    ("fk_invitations_consent_id_consents", "consents", ["consent_id"]),
    ("fk_invitations_member_id_members", "members", ["member_id"]),
)
CONSENT_RECIPIENTS_FK = "fk_consent_recipients_consent_id_consents"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rekey(table: str, columns: list[str]) -> None:
    """Replace `table`'s primary key (batch mode: SQLite rebuilds the table)."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(f"pk_{table}", type_="primary")
        batch_op.create_primary_key(f"pk_{table}", columns)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(OLD_MESSAGES_FK, type_="foreignkey")
    with op.batch_alter_table("consent_recipients", schema=None) as batch_op:
        batch_op.drop_constraint(CONSENT_RECIPIENTS_FK, type_="foreignkey")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        for name, _parent, _columns in INVITATION_FKS:
            batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.drop_index("ix_invitations_recipient_digest")
        batch_op.drop_constraint("pk_invitations", type_="primary")
        batch_op.create_primary_key("pk_invitations", ["recipient_digest", "id"])
        batch_op.create_index("ix_invitations_id", ["id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_recipient_digest")
        batch_op.drop_constraint("pk_messages", type_="primary")
        batch_op.create_primary_key("pk_messages", ["recipient_digest", "id"])
        batch_op.create_index("ix_messages_id", ["id"], unique=False)
        batch_op.create_foreign_key(
            MESSAGES_FK,
            "invitations",
            ["recipient_digest", "invitation_id"],
            ["recipient_digest", "id"],
        )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_member_id")
        batch_op.drop_constraint("pk_consents", type_="primary")
        batch_op.create_primary_key("pk_consents", ["member_id", "id"])
        batch_op.create_index("ix_consents_id", ["id"], unique=False)
    if not _sqlite():
        for table, key in ROWID_KEYED:
            _rekey(table, [key, "id"])
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index("ix_decisions_id", ["id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_id")
    if not _sqlite():
        for table, _key in ROWID_KEYED:
            _rekey(table, ["id"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(MESSAGES_FK, type_="foreignkey")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_id")
        batch_op.drop_constraint("pk_consents", type_="primary")
        batch_op.create_primary_key("pk_consents", ["id"])
        batch_op.create_index("ix_consents_member_id", ["member_id"], unique=False)
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_invitations_id")
        batch_op.drop_constraint("pk_invitations", type_="primary")
        batch_op.create_primary_key("pk_invitations", ["id"])
        batch_op.create_index("ix_invitations_recipient_digest", ["recipient_digest"], unique=False)
        for name, parent, columns in INVITATION_FKS:
            batch_op.create_foreign_key(name, parent, columns, ["id"])
    with op.batch_alter_table("consent_recipients", schema=None) as batch_op:
        batch_op.create_foreign_key(CONSENT_RECIPIENTS_FK, "consents", ["consent_id"], ["id"])
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_id")
        batch_op.drop_constraint("pk_messages", type_="primary")
        batch_op.create_primary_key("pk_messages", ["id"])
        batch_op.create_index("ix_messages_recipient_digest", ["recipient_digest"], unique=False)
        batch_op.create_foreign_key(OLD_MESSAGES_FK, "invitations", ["invitation_id"], ["id"])
