"""The schema the migrations build is the one `store/tables.py` describes, on both engines.

The code reads and writes through `tables.py`, and the planner chooses by the indexes the
migrations made: a migration that forgot a column's change, or an index `tables.py` widened
without one (the due messages' order, migration 0018), would pass every test run on a
schema made from the tables and fail on a deployed one.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from courtois.store.tables import metadata


def test_the_migrated_schema_is_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_the_due_index_holds_the_order_a_pass_reads_in(engine: Engine) -> None:
    """The comparison above sees indexes: this one, widened by 0018, is among them."""
    with engine.connect() as connection:
        indexes = {
            index["name"]: index["column_names"]
            for index in inspect(connection).get_indexes("messages")
        }
    assert indexes["ix_messages_state_scheduled"] == ["state", "scheduled_at", "member_id"]
