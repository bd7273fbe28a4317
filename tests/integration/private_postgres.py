"""A PostgreSQL cluster of the test's own, in a temporary folder on a free port, that the
test may stop and start at will (the shared server on 5432 is never touched).

Debian's PostgreSQL binaries run as the `postgres` OS user when the tests run as root
(initdb refuses root), as the current user otherwise.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smtp_server import free_port

BINARIES = Path(os.environ.get("COURTOIS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivateCluster:
    """One cluster: where its data lives, the port it listens on, and its log."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{OS_USER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *arguments: str) -> None:
        command = [str(BINARIES / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *arguments]
        result = subprocess.run(_as_owner(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl {arguments[-1]} failed: {result.stderr}\n{log[-2000:]}")

    def start(self) -> None:
        """Start and wait until it accepts connections (crash recovery included)."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c max_connections=40 -c shared_buffers=16MB -c fsync=off"
        )
        self._pg_ctl("-l", str(self.log), "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop it: `immediate` is a crash (every backend killed, recovery at the next
        start), `fast` a clean shutdown that aborts open transactions."""
        self._pg_ctl("-m", mode, "stop")


@contextmanager
def private_postgres() -> Iterator[PrivateCluster]:
    """A fresh, running cluster (trust authentication), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="courtois-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OS_USER)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = PrivateCluster(folder, free_port())
    try:
        subprocess.run(
            _as_owner(
                [
                    str(BINARIES / "initdb"),
                    "-D",
                    str(cluster.data),
                    "-U",
                    OS_USER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            capture_output=True,
            text=True,
            check=True,
        )
        cluster.start()
        try:
            yield cluster
        finally:
            if (cluster.data / "postmaster.pid").exists():
                cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
