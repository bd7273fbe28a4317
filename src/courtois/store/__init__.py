"""The store: SQLAlchemy Core tables, the engine, queries and Alembic migrations."""
