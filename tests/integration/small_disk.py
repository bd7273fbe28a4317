"""A SQLite database that runs out of room on demand, for tests of a full disk.

Two ways, same behaviour for the code under test (SQLite's SQLITE_FULL, "database or disk
is full"):
- `tmpfs`: the database lives on a small tmpfs mounted for the test (needs root, as the
  tests and CI run here); a filler file takes all but a few pages of it.
- `page-limit`: an ordinary folder, and SQLite's `PRAGMA max_page_count` set on every
  connection checked out of the pool (in this process through the engine's events; in a
  `courtois` command started by `SmallDisk.command`, which installs the same hook first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool

SIZE = "24m"
NO_LIMIT = 1 << 30
LIMIT_FILE = "max_page_count"


@dataclass
class SmallDisk:
    """Where the database lives, and the lever that makes its disk full."""

    folder: Path
    mode: str  # "tmpfs" or "page-limit"

    @property
    def database(self) -> Path:
        return self.folder / "courtois.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def _filler(self) -> Path:
        return self.folder / "filler"

    @property
    def _limit(self) -> Path:
        # Outside the small disk, so writing it never needs the room it takes away.
        return self.folder.parent / f"{self.folder.name}.{LIMIT_FILE}"

    def attach(self, engine: Engine) -> None:
        """Make this process's engine feel the limit (a no-op on tmpfs, where the kernel
        does it)."""
        if self.mode == "page-limit":
            event.listen(engine, "checkout", _checkout_hook(self._limit))

    def squeeze(self, room: int) -> None:
        """Leave about `room` bytes for the database to grow into."""
        if self.mode == "tmpfs":
            stats = os.statvfs(self.folder)
            free = stats.f_bavail * stats.f_frsize
            descriptor = os.open(self._filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, max(free - room, 1))
            finally:
                os.close(descriptor)
        else:
            import sqlite3

            with sqlite3.connect(self.database) as connection:
                pages, size = (
                    connection.execute(f"PRAGMA {name}").fetchone()[0]
                    for name in ("page_count", "page_size")
                )
            self._limit.write_text(str(pages + room // size))

    def relieve(self) -> None:
        """Give the room back."""
        self._filler.unlink(missing_ok=True)
        self._limit.unlink(missing_ok=True)

    def command(self, *arguments: str) -> list[str]:
        """The `courtois` command line that sees this disk as the test does."""
        if self.mode == "tmpfs":
            return [str(Path(sys.executable).parent / "courtois"), *arguments]
        here = str(Path(__file__).parent)
        code = (
            f"import sys; sys.path.insert(0, {here!r}); import small_disk; "
            f"small_disk.limit_every_engine({str(self._limit)!r}); "
            "from courtois.cli import main; sys.argv[0] = 'courtois'; main()"
        )
        return [sys.executable, "-c", code, *arguments]


def _checkout_hook(limit_file: Path) -> Any:
    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        limit = int(limit_file.read_text()) if limit_file.exists() else NO_LIMIT
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {limit}")
        cursor.close()

    return on_checkout


def limit_every_engine(limit_file: str) -> None:
    """In a `courtois` command: every pool's connections feel the limit."""
    event.listen(Pool, "checkout", _checkout_hook(Path(limit_file)))


def _mount(folder: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    command = ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@contextmanager
def small_disk(base: Path, mode: str) -> Iterator[SmallDisk]:
    """A folder for the database: a small tmpfs when `mode` is "tmpfs" and mounting works
    here, otherwise (and for "page-limit") a plain folder under the page limit."""
    folder = base / "disk"
    folder.mkdir()
    mounted = mode == "tmpfs" and _mount(folder)
    try:
        yield SmallDisk(folder, "tmpfs" if mounted else "page-limit")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)
