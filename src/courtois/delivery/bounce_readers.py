"""Where bounces come from: a single message file, an mbox file or a Maildir folder."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path


def iter_messages(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield (source, raw bytes) for every message at `path`.

    A directory is read as a Maildir (its `new` and `cur` messages, each's source its
    path under the folder given, as `md/cur/123.host:2,S`); a file whose first
    line is an mbox "From " line as an mbox (source `FILE#N`, N counting from 1, or just
    `FILE` when it holds one message), unless it is named `*.eml`: that is one message
    whatever its first line (a returned message quoted inside may start a line with
    "From ", which an mbox would take for the next message); any other file as one
    message. Raises FileNotFoundError for a path that does not exist.
    """
    target = Path(path)
    if target.is_dir():
        if not (target / "cur").is_dir() and not (target / "new").is_dir():
            raise FileNotFoundError(f"{target} is neither a Maildir nor a file")
        for message in _maildir_files(target):
            yield str(message), message.read_bytes()
        return
    if not target.is_file():
        raise FileNotFoundError(f"{target} does not exist")
    with target.open("rb") as handle:
        head = handle.read(5)
    if head == b"From " and target.suffix.lower() != ".eml":
        mbox = mailbox.mbox(target, factory=None, create=False)
        try:
            keys = mbox.keys()
            for number, key in enumerate(keys, start=1):
                name = f"{target}#{number}" if len(keys) > 1 else str(target)
                yield name, mbox.get_bytes(key, from_=False)
        finally:
            mbox.close()
        return
    yield str(target), target.read_bytes()


def _maildir_files(folder: Path) -> list[Path]:
    """The files of a Maildir's `new` and `cur`, as Python's Maildir reads them (every entry
    but a folder), in the order of their unique names (before the `:2,` flags). Their
    paths, not the Maildir's keys, are what a report names: the operator finds the file."""
    found = [
        entry
        for sub in ("new", "cur")
        if (folder / sub).is_dir()
        for entry in (folder / sub).iterdir()
        if not entry.is_dir()
    ]
    return sorted(found, key=lambda entry: (entry.name.split(":")[0], entry.parent.name))
