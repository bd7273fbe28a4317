"""Where bounces come from: a single message file, an mbox file or a Maildir folder."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path


def iter_messages(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield (source, raw bytes) for every message at `path`.

    A directory is read as a Maildir (its `new` and `cur` messages); a file whose first
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
        box = mailbox.Maildir(target, factory=None, create=False)
        for key in sorted(box.keys()):
            with box.get_file(key) as handle:
                yield f"{target}/{key}", handle.read()
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
