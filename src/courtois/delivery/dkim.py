"""DKIM signing (RFC 6376), relaxed/relaxed, key and selector from the configuration: an
RSA key signs rsa-sha256, an Ed25519 key ed25519-sha256 (RFC 8463), as the key file holds.
With no DKIM configured, messages go out unsigned.

Several selectors, each with its key file, sign every email once each (`dkim_selector =
"r2026,e2026"`, `dkim_private_key_file = "rsa.pem,ed.pem"`): RSA beside Ed25519, so that a
receiver that does not verify one algorithm (it ignores that signature, RFC 6376 6.1.1)
still verifies the other, and DMARC holds everywhere.

Ed25519 is the fast choice: a signature takes a fifteenth of RSA-2048's CPU, which was a
third of the delivery pipeline's (bench/delivery.py). Not every receiver verifies it yet
(docs/operations.md says what that means for DMARC), so RSA stays the default everywhere
a key is made for the operator."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from courtois.config import Settings
from courtois.delivery.wire import MAX_HEADER_LINE
from courtois.domain.errors import InvalidInput

# The headers a receiver judges the message by. Each is listed once more than it occurs
# (over-signing, RFC 6376 section 8.15), so nobody on the way can add a second Subject, a
# Reply-To or another unsubscribe link without breaking the signature. In-Reply-To and
# References (a reminder's, naming its invitation's email; dkimpy signs them by default)
# decide which conversation a mail client shows the email in: signed, none can be added to
# an email that has none, nor changed, to thread it under another message.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
)


# The a= tag's values (RFC 6376 3.3, RFC 8463 3), chosen by the key the file holds.
RSA_SHA256 = "rsa-sha256"
ED25519_SHA256 = "ed25519-sha256"


class _Key(NamedTuple):
    """A parsed key: the a= tag it signs under, and its signing of the canonical data."""

    algorithm: str
    sign: Callable[[bytes], bytes]


def is_configured(settings: Settings) -> bool:
    """True when domain, selector and key file are all set; refuses a partial setting,
    which would otherwise send unsigned mail without anyone noticing."""
    values = {
        "dkim_domain": settings.dkim_domain,
        "dkim_selector": settings.dkim_selector,
        "dkim_private_key_file": settings.dkim_private_key_file,
    }
    missing = sorted(key for key, value in values.items() if not value.strip())
    if len(missing) == len(values):
        return False
    if missing:
        raise InvalidInput(
            f"DKIM is partly configured; also set {', '.join(missing)}.",
            dict.fromkeys(missing, "missing"),
        )
    return True


def signers(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Each selector with its key file, in the order given (each signature is written above
    the next). Refused when the lists differ in length, leave a blank, or name a selector
    twice: a key paired with the wrong selector would sign mail that never verifies, and a
    repeated selector would ask receivers to check one key twice."""
    return _pairs(settings.dkim_selector, settings.dkim_private_key_file)


@lru_cache(maxsize=8)
def _pairs(selector_list: str, file_list: str) -> tuple[tuple[str, str], ...]:
    selectors = [part.strip() for part in selector_list.split(",")]
    files = [part.strip() for part in file_list.split(",")]
    if len(selectors) != len(files):
        raise InvalidInput(
            f"dkim_selector names {len(selectors)} selector(s) and dkim_private_key_file "
            f"{len(files)} key file(s); give one key file per selector, in the same order.",
            {"dkim_selector": "count", "dkim_private_key_file": "count"},
        )
    if not all(selectors) or not all(files):
        blank = "dkim_selector" if not all(selectors) else "dkim_private_key_file"
        raise InvalidInput(f"{blank} has an empty entry between its commas.", {blank: "empty"})
    if len(set(selectors)) != len(selectors):
        raise InvalidInput(
            "dkim_selector names a selector twice; each signs once.",
            {"dkim_selector": "repeated"},
        )
    return tuple(zip(selectors, files, strict=True))


# The h= tag's names, each listed once more than it can occur.
_LISTED: tuple[bytes, ...] = tuple(
    name.lower().encode("ascii") for name in SIGNED_HEADERS for _ in (1, 2)
)
_H_TAG = b":".join(_LISTED).decode("ascii")

# The header's lines are kept within the recommended 78 octets (RFC 5322 2.1.1): unfolded,
# a 2048-bit signature made a first line of 761 octets and a 4096-bit one 1,106, over
# SMTP's 998, which receivers refuse. Folding whitespace is allowed between tags, around
# the h= tag's colons and anywhere in the b= value (RFC 6376 3.5), and relaxed
# canonicalisation makes each fold one space (or, in b=, nothing), so the verifier hashes
# what was signed.
# The least of the signature worth starting on the b= line; else b= opens the next line.
_ROOM_FOR_SIGNATURE = 8
# A SHA-256 digest in base64.
_BODY_HASH_LENGTH = 44


def sign(raw: bytes, settings: Settings) -> bytes:
    """The message with a DKIM-Signature header in front, or unchanged without DKIM.

    Canonicalisation (relaxed/relaxed) is done here and the signature by OpenSSL through
    `cryptography`: dkimpy's pure-Python RSA cost about 11 ms a message, most of the
    delivery pipeline's time. dkimpy remains the verifier the tests hold this signer to.
    """
    if not is_configured(settings):
        return raw
    head, _, body = raw.partition(b"\r\n\r\n")
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
    timestamp = str(int(time.time()))
    # The header as the verifier hashes it: canonical, with the b= value empty (RFC 6376
    # 3.7); the time and the body hash hold no whitespace, so they go into the canonical
    # form of the folded tags as they are. Every signature covers the same fields (none
    # covers another's DKIM-Signature), so they are canonicalised once.
    values = (timestamp.encode("ascii"), body_hash.encode("ascii"))
    fields = _signed_headers(head)
    headers = []
    for selector, path in signers(settings):
        key = _private_key(path)
        layout = _layout(settings.dkim_domain, selector, len(timestamp), key.algorithm)
        signature = base64.b64encode(key.sign(fields + layout.canonical % values)).decode()
        folded = "\r\n ".join([signature[a:b] for a, b in _cuts(len(signature), layout.column)])
        headers.append(f"DKIM-Signature:{layout.template % (timestamp, body_hash)}{folded}\r\n")
    return "".join(headers).encode("ascii") + raw


def _fold(atoms: Iterable[tuple[str, str]], column: int) -> tuple[str, int]:
    """Each atom after its separator (a space, or nothing where no space is needed), or
    after a fold when it would pass MAX_HEADER_LINE; with the column the last line ends at."""
    out = []
    for separator, atom in atoms:
        if column + len(separator) + len(atom) > MAX_HEADER_LINE and column > 1:
            out.append("\r\n ")
            column = 1
        else:
            out.append(separator)
            column += len(separator)
        out.append(atom)
        column += len(atom)
    return "".join(out), column


@lru_cache(maxsize=8)
def _cuts(length: int, column: int) -> tuple[tuple[int, int], ...]:
    """Where a value of this length starting at `column` is cut into lines within MAX_HEADER_LINE
    (a key's signatures have one length, so this is found once)."""
    first = max(MAX_HEADER_LINE - column, 1)
    width = MAX_HEADER_LINE - 1
    return ((0, first), *((at, at + width) for at in range(first, length, width)))


class _Layout(NamedTuple):
    """The DKIM-Signature header up to its signature, folded, with %s for the time and the
    body hash; its relaxed canonical form likewise; the column the signature starts at."""

    template: str
    canonical: bytes
    column: int


@lru_cache(maxsize=8)
def _layout(domain: str, selector: str, time_digits: int, algorithm: str) -> _Layout:
    """The header's layout: the time and the body hash have the same lengths in every
    message, so the folds fall in the same places and are found once."""
    atoms = [
        (" ", "v=1;"),
        (" ", f"a={algorithm};"),
        (" ", "c=relaxed/relaxed;"),
        (" ", f"d={domain.strip()};"),
        (" ", f"s={selector.strip()};"),
    ]
    names = [f"{name}:" for name in _H_TAG.split(":")]
    names[0] = "h=" + names[0]
    names[-1] = names[-1][:-1] + ";"
    atoms += [(" " if index == 0 else "", name) for index, name in enumerate(names)]
    fixed, column = _fold(atoms, len("DKIM-Signature:"))
    # Stand-ins of the values' lengths; b= keeps some signature on its line.
    tail, column = _fold(
        (
            (" ", "t=" + "#" * time_digits + ";"),
            (" ", "bh=" + "#" * _BODY_HASH_LENGTH + ";"),
            (" ", "b=" + "#" * _ROOM_FOR_SIGNATURE),
        ),
        column,
    )
    template = fixed.replace("%", "%%") + re.sub("#+", "%s", tail[:-_ROOM_FOR_SIGNATURE])
    canonical = _relaxed_header(b"DKIM-Signature", template.encode("ascii"))[:-2]
    return _Layout(template, canonical, column - _ROOM_FOR_SIGNATURE)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> _Key:
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        # A folder, a file this user may not read: refused in one line at start, as a
        # missing file is, not a traceback on every command.
        raise InvalidInput(
            f"The DKIM private key file {path} cannot be read: "
            f"{error.strerror or type(error).__name__}.",
            {"dkim_private_key_file": "unreadable"},
        ) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        key = None
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key
        return _Key(
            RSA_SHA256, lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # PureEdDSA over the data's SHA-256 digest, not over the data (RFC 8463 section 3).
        ed_key = key
        return _Key(ED25519_SHA256, lambda data: ed_key.sign(hashlib.sha256(data).digest()))
    raise InvalidInput(
        f"The DKIM private key file {path} does not hold an RSA or Ed25519 private key (PEM).",
        {"dkim_private_key_file": "not a key"},
    )


# Seconds a key file's version is trusted before its time is read again: a rotated key
# signs within a second, and a batch does not ask the file system once an email.
KEY_FILE_CHECK_SECONDS = 1.0
# Each key file's modification time, and when it was read (time.monotonic()).
_seen: dict[str, tuple[float, float]] = {}


def _private_key(path: str) -> _Key:
    """The key, parsed once per file version (a rotated key file is read again)."""
    now = time.monotonic()
    seen = _seen.get(path)
    if seen is None or now - seen[1] >= KEY_FILE_CHECK_SECONDS:
        try:
            mtime = os.stat(path).st_mtime
        except OSError as error:
            _seen.pop(path, None)
            raise InvalidInput(
                f"The DKIM private key file {path} cannot be read: {error.strerror}.",
                {"dkim_private_key_file": "unreadable"},
            ) from None
        seen = (mtime, now)
        _seen[path] = seen
    return _load(path, seen[0])


_WSP = re.compile(rb"[ \t]+")
# Only the runs that canonicalisation changes: a lone space stays as it is.
_WSP_TO_FOLD = re.compile(rb"(?: [ \t]|\t)[ \t]*")
_SPACES = re.compile(rb"  +")


def _relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: runs of whitespace become one space, none at line ends, no empty
    lines at the end, and a final CRLF unless the body is empty.

    Done on the whole body at once (a few passes in C) rather than line by line in Python:
    a run of whitespace never spans a CRLF, so collapsing runs first leaves at most one
    space before each line end, which one replacement removes."""
    canonical = body
    if b"\t" in body:
        canonical = _WSP_TO_FOLD.sub(b" ", canonical)
    elif b"  " in body:
        # Spaces only (the usual case): a pattern that starts with a literal is found fast.
        canonical = _SPACES.sub(b" ", canonical)
    if b" \r\n" in canonical:
        canonical = canonical.replace(b" \r\n", b"\r\n")
    if canonical.endswith(b" "):
        canonical = canonical[:-1]
    end = len(canonical)
    while end >= 2 and canonical.startswith(b"\r\n", end - 2):
        end -= 2
    return canonical[:end] + b"\r\n" if end else b""


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value, whitespace runs as one space."""
    unfolded = value.replace(b"\r\n", b"")
    # Most values hold single spaces only, which the substitution would leave as they are.
    if b"\t" in unfolded or b"  " in unfolded:
        unfolded = _WSP.sub(b" ", unfolded)
    return name.strip().lower() + b":" + unfolded.strip(b" ") + b"\r\n"


def _signed_headers(head: bytes) -> bytes:
    """The canonical header fields the h= tag lists, in its order: each listed name signs
    its fields from the last one upwards (RFC 6376 5.4.2); a name listed once more than it
    occurs signs its absence, so none can be added later.

    One pass over the header block, continuation lines kept with their field; only the
    fields that are signed are canonicalised."""
    fields: dict[bytes, list[tuple[bytes, bytes]]] = {}
    last: list[tuple[bytes, bytes]] | None = None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and last is not None:
            name, value = last[-1]
            last[-1] = (name, value + b"\r\n" + line)
        elif b":" in line:
            name, _, value = line.partition(b":")
            last = fields.setdefault(name.strip().lower(), [])
            last.append((name, value))
    chosen = []
    for listed in _LISTED:
        instances = fields.get(listed)
        if instances:
            name, value = instances.pop()
            chosen.append(_relaxed_header(name, value))
    return b"".join(chosen)
