"""DKIM signing (RFC 6376): rsa-sha256, relaxed/relaxed, key and selector from the
configuration. With no DKIM configured, messages go out unsigned."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from courtois.config import Settings
from courtois.domain.errors import InvalidInput

# The headers a receiver judges the message by. Each is listed once more than it occurs
# (over-signing, RFC 6376 section 8.15), so nobody on the way can add a second Subject, a
# Reply-To or another unsubscribe link without breaking the signature.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
)


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


# The h= tag's names, each listed once more than it can occur.
_LISTED: tuple[bytes, ...] = tuple(
    name.lower().encode("ascii") for name in SIGNED_HEADERS for _ in (1, 2)
)
_H_TAG = b":".join(_LISTED).decode("ascii")


def sign(raw: bytes, settings: Settings) -> bytes:
    """The message with a DKIM-Signature header in front, or unchanged without DKIM.

    Canonicalisation (relaxed/relaxed) is done here and the RSA signature by OpenSSL through
    `cryptography`: dkimpy's pure-Python RSA cost about 11 ms a message, most of the
    delivery pipeline's time. dkimpy remains the verifier the tests hold this signer to.
    """
    if not is_configured(settings):
        return raw
    key = _private_key(settings.dkim_private_key_file)
    head, _, body = raw.partition(b"\r\n\r\n")
    body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
    fields = (
        f"{_tags(settings.dkim_domain, settings.dkim_selector)}t={int(time.time())}; "
        f"h={_H_TAG}; bh={body_hash}; b="
    )
    signed = _signed_headers(head) + _relaxed_header(b"DKIM-Signature", fields.encode("ascii"))[:-2]
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    header = f"DKIM-Signature: {fields}{base64.b64encode(signature).decode()}\r\n"
    return header.encode("ascii") + raw


@lru_cache(maxsize=8)
def _tags(domain: str, selector: str) -> str:
    """The tags before the timestamp, the same for every message of a configuration."""
    return f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain.strip()}; s={selector.strip()}; "


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput(
            f"The DKIM private key file {path} does not hold an RSA private key (PEM).",
            {"dkim_private_key_file": "not a key"},
        )
    return key


def _private_key(path: str) -> rsa.RSAPrivateKey:
    """The key, parsed once per file version (a rotated key file is read again)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError as error:
        raise InvalidInput(
            f"The DKIM private key file {path} cannot be read: {error.strerror}.",
            {"dkim_private_key_file": "unreadable"},
        ) from None
    return _load(path, mtime)


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
