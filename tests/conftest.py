"""Shared fixtures: a real SQLite file and a real PostgreSQL database for every store test."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from courtois.config import Settings
from courtois.services.context import Context
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

POSTGRES_URL = os.environ.get(
    "COURTOIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "test-secret-key-0123456789"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POSTAL_ADDRESS = "Agora SAS, 1 rue de la Paix, 75002 Paris"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """The CI database; a missing server is an error, never a skip."""
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("select 1"))
    yield engine
    engine.dispose()


def _postgres_engine(admin: Engine) -> Iterator[Engine]:
    """A fresh schema per test, dropped afterwards, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, pool_size=10)
    engine = engine.execution_options(schema_translate_map=None)

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.commit()

    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database on each engine."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'courtois.db'}")
        migrate(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
    else:
        admin = request.getfixturevalue("postgres_admin")
        for pg_engine in _postgres_engine(admin):
            migrate(pg_engine)
            yield pg_engine


@pytest.fixture
def settings() -> Settings:
    """Settings for tests: a fixed secret, the default policy, and the postal address every
    email must give (the worker's requirement, without which no consent keeps its words)."""
    return Settings(
        secret_key=SECRET,
        platform_name="Agora",
        base_url="https://agora.test",
        platform_postal_address=POSTAL_ADDRESS,
    )


@pytest.fixture
def ctx(engine: Engine, settings: Settings) -> Context:
    """The use cases' context on a migrated database."""
    return Context(engine=engine, settings=settings)


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """One 2048-bit RSA key for the session (`make_dkim_key`), and its TXT record."""
    return make_dkim_key(tmp_path_factory.mktemp("dkim"))


# The domain the test platform sends from and signs as.
DKIM_DOMAIN = "agora.test"


def signing_settings(key_file: Path, selector: str, **more: str) -> Settings:
    """The test platform (as the `settings` fixture) signing as `selector` of DKIM_DOMAIN
    with this key."""
    return Settings(
        secret_key=SECRET,
        platform_name="Agora",
        base_url="https://agora.test",
        mail_from=f"invitations@{DKIM_DOMAIN}",
        dkim_domain=DKIM_DOMAIN,
        dkim_selector=selector,
        dkim_private_key_file=str(key_file),
        **more,
    )


def make_dkim_key(directory: Path, bits: int = 2048) -> tuple[Path, bytes]:
    """An RSA key (2048 bits unless told) made by openssl (independent of the signer's
    library), and the DNS TXT record publishing its public half."""
    key = directory / f"dkim-{bits}.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(key), str(bits)], check=True, capture_output=True
    )
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def make_ed25519_key(directory: Path) -> tuple[Path, bytes]:
    """An Ed25519 key made by openssl, and the TXT record publishing its public half: the
    raw 32-byte key in base64 (RFC 8463 section 4), the end of its DER encoding."""
    key = directory / "dkim-ed25519.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public[-32:])


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The long-running commands a test starts, stopped (by their id) whatever happens."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
