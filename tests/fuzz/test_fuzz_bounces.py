"""Damaged, re-wrapped and pathological bounces: the classifier answers, fast and the same.

For every input: `classify` returns a report of a known kind (it never raises), a hard
bounce names a hard recipient and nothing else does, every recipient is an address, the
same bytes give the same report, and no input takes long. A message that is no bounce (a
person's mail, mutated) is never a hard bounce. The inputs are the samples of
tests/data/bounces mutated (see fuzz_support), nested in MIME, re-encoded in broken base64
or quoted-printable, and runs of the shapes that make regular expressions backtrack.
"""

from __future__ import annotations

import base64
import quopri
from pathlib import Path
from typing import get_args

from fuzz_support import UNITS, Edit, budget, edits, mutate, regressions, samples, time_limit
from hypothesis import given
from hypothesis import strategies as st

from courtois.delivery.bounces import BounceKind, BounceReport, classify

KINDS = set(get_args(BounceKind))
BOUNCES = samples("bounces/bounces")
NOT_BOUNCES = samples("bounces/not-bounces")
DONORS = [path.read_bytes() for path in BOUNCES]


def check(raw: bytes) -> BounceReport:
    with time_limit(f"classifying {len(raw)} bytes", len(raw)):
        report = classify(raw, "fuzz")
    assert report.kind in KINDS
    assert all("@" in r.address for r in report.recipients)
    assert (report.kind == "hard_bounce") == bool(report.hard_recipients)
    assert classify(raw, "fuzz") == report  # the same bytes, the same report
    return report


def split(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, body = raw.partition(b"\n\n")
    return (head, body) if sep else (raw, b"")


def rewrap(raw: bytes, how: str, depth: int, noise: bytes) -> bytes:
    """The message nested, or its body re-encoded (and the encoding broken with `noise`)."""
    if how == "multipart":
        for level in range(depth):
            raw = b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n%s\n--b%d--\n" % (
                level,
                level,
                raw,
                level,
            )
    elif how == "rfc822":
        for _ in range(depth):
            raw = (
                b"From: MAILER-DAEMON@example.org\nSubject: Undelivered\n"
                b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\n\n"
                b"--r\nContent-Type: text/plain\n\nReturned.\n--r\n"
                b"Content-Type: message/rfc822\n\n" + raw + b"\n--r--\n"
            )
    else:
        head, body = split(raw)
        coded = base64.encodebytes(body) if how == "base64" else quopri.encodestring(body)
        at = len(noise) * 7 % (len(coded) + 1)
        coded = coded[:at] + noise + coded[at:]
        name = b"base64" if how == "base64" else b"quoted-printable"
        raw = head + b"\nContent-Transfer-Encoding: " + name + b"\n\n" + coded
    return raw


wrappings = st.tuples(
    st.sampled_from(["multipart", "rfc822", "base64", "quoted-printable"]),
    st.integers(1, 40),
    st.sampled_from([b"", b"=", b"==", b"!", b"=Z", b"\x00", b"\n\n", b"--b0--\n"]),
)


@budget(120)
@given(st.sampled_from(BOUNCES), st.lists(edits, max_size=6), st.lists(wrappings, max_size=2))
def test_damaged_bounces_classify(
    sample: Path, changes: list[Edit], wraps: list[tuple[str, int, bytes]]
) -> None:
    raw = mutate(sample.read_bytes(), changes, DONORS)
    for how, depth, noise in wraps:
        raw = rewrap(raw, how, depth, noise)
    check(raw)


@budget(12)
@given(
    st.sampled_from(UNITS),
    st.sampled_from([1000, 30_000]),
    st.sampled_from(["text/plain", "text/html", "message/delivery-status"]),
    st.sampled_from([b"", b"Final-Recipient: rfc822; a@b.example\nDiagnostic-Code: smtp; "]),
)
def test_long_runs_of_one_unit_classify_fast(
    unit: bytes, count: int, kind: str, lead: bytes
) -> None:
    raw = (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\nTo: c@d.example\n"
        b"Content-Type: " + kind.encode() + b"\n\n" + lead + b"a@b.example\n" + unit * count
    )
    check(raw)


# --- what is no bounce is never a hard one ------------------------------------------------

WORDS = (
    "hello",
    "thanks",
    "see you",
    "Friday",
    "the report",
    "version 5.1.1",
    "550 guests",
    "lunch",
    "ana@example.org",
    "<bo@example.net>",
    "https://example.org/a",
    "--",
    "> quoted",
    "",
    "déjà",
    "日本語",
)
people = st.sampled_from(["Ana <ana@example.org>", "bo@example.net", '"Lima, C" <c@example.com>'])
letters = st.builds(
    lambda sender, to, subject, lines, html: (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        + ("Content-Type: text/html; charset=utf-8\n\n<p>" if html else "\n")
        + "\n".join(lines)
        + "\n"
    ).encode("utf-8"),
    people,
    people,
    st.sampled_from(["Lunch", "Re: the report", "Photos", "Fwd: slides", ""]),
    st.lists(st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join), max_size=30),
    st.booleans(),
)
# Changes that damage a message without writing a delivery report into it.
harmless = edits.filter(lambda e: e.kind in ("flip", "delete", "truncate", "duplicate"))


@budget(120)
@given(
    st.one_of(letters, st.sampled_from([p.read_bytes() for p in NOT_BOUNCES])),
    st.lists(harmless, max_size=4),
)
def test_what_is_no_bounce_is_never_hard(message: bytes, changes: list[Edit]) -> None:
    report = check(mutate(message, changes))
    assert report.kind != "hard_bounce"


def test_inputs_that_once_hung_the_classifier() -> None:
    found = regressions("bounce")
    assert found
    for path in found:
        check(path.read_bytes())
