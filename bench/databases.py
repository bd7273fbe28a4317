"""The PostgreSQL server the bench scripts measure against, and a fresh database on it per
run: created on the way in, dropped on the way out, so that no figure depends on what an
earlier run left behind.

The server is the one the tests use, named by COURTOIS_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

POSTGRES_URL = os.environ.get(
    "COURTOIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_server() -> tuple[str, int]:
    """The server's version string and number; exits with a clear message when unreachable."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = str(connection.execute(text("SHOW server_version")).scalar_one())
            number = int(connection.execute(text("SHOW server_version_num")).scalar_one())
    except OperationalError as error:
        raise SystemExit(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}") from None
    finally:
        admin.dispose()
    return version, number


@contextmanager
def postgres_database(prefix: str = "courtois_bench", keep: bool = False) -> Iterator[str]:
    """A fresh database on the server, dropped on the way out (or kept, and its URL
    printed, to look into after a run); yields its URL.

    The drop forces out connections a crashed worker process may still hold (PostgreSQL 13
    and later; before, such a database stays behind and says so)."""
    _, number = postgres_server()
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    force = " WITH (FORCE)" if number >= 130000 else ""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            if keep:
                print(f"database kept: {url}")
            else:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"{force}'))
    finally:
        admin.dispose()
