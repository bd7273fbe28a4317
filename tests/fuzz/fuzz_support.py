"""What every fuzz test shares: the time budget, the time limit per input, and mutations.

The budget: `COURTOIS_FUZZ_SECONDS` (default 10) scales every fuzz test's number of
examples and is how long each atheris harness runs; `COURTOIS_FUZZ_SECONDS=300 make test`
fuzzes thirty times longer. Hypothesis keeps the inputs that failed in its example
database, so a failure found in a long run is tried first by every later run.

Mutations are structured, after what real files suffer: bytes flipped, spans deleted or
repeated, the file cut short, pieces of another sample spliced in, line breaks, NULs and
byte order marks inserted, one unit repeated into a huge line, declared charsets and
transfer encodings swapped for wrong ones.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from courtois.domain.contacts import ContactInput, RecordProblem

DATA = Path(__file__).resolve().parents[1] / "data"
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
FUZZ_SECONDS = float(os.environ.get("COURTOIS_FUZZ_SECONDS", "10"))
# Every input here is at most a few hundred KiB. A linear reader takes at most a few tens
# of microseconds a byte, even on a loaded machine; one that backtracks quadratically takes
# minutes on 50 KiB.
SLOW_SECONDS = 3.0
SLOW_PER_BYTE = 40e-6
MAX_INPUT = 256 * 1024

settings.register_profile(
    "courtois-fuzz",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def budget(examples: int) -> settings:
    """The fuzz profile with `examples` scaled by COURTOIS_FUZZ_SECONDS (10 s is 1x)."""
    scaled = max(1, round(examples * FUZZ_SECONDS / 10))
    return settings(settings.get_profile("courtois-fuzz"), max_examples=scaled)


class _Expired(BaseException):
    """Raised by the timer; a BaseException so that no `except Exception` swallows it."""


@contextmanager
def time_limit(what: str, size: int) -> Iterator[None]:
    """Fail (AssertionError, so Hypothesis shrinks it) when reading `size` bytes takes
    longer than a linear reader could.

    SIGALRM interrupts even a regular expression stuck in backtracking, so a slow input
    fails at once rather than hanging the suite.
    """

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _Expired

    seconds = SLOW_SECONDS + size * SLOW_PER_BYTE
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise AssertionError(f"{what} took more than {seconds:g} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def samples(*folders: str, exclude: tuple[str, ...] = (".json", ".md")) -> list[Path]:
    """The sample files of tests/data/<folder>, sorted."""
    found: list[Path] = []
    for folder in folders:
        found += [p for p in (DATA / folder).iterdir() if p.is_file() and p.suffix not in exclude]
    return sorted(found)


def regressions(prefix: str) -> list[Path]:
    """The inputs that once broke a reader, named `<prefix>-*`."""
    return sorted(REGRESSIONS.glob(f"{prefix}-*"))


# --- mutations ------------------------------------------------------------------------------

SPECIAL = (
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff\x00",
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    b"\x85",
    b"\xe2\x80\xa8",
    b"\x0c",
    b"=",
    b"=\r\n",
    b"=ZZ",
    b";",
    b":",
    b",",
    b'"',
    b"\\",
    b"\t",
    b" ",
    b"<",
    b">",
    b"@",
    b"=?utf-8?b?",
    b"=?x?q?=FF?=",
    b"?=",
    b"&#0;",
    b"]]>",
    b"--",
    b"\x1b$B",
)
# Units that, repeated, have made parsers backtrack (each one a known shape of trouble).
UNITS = (
    b"\n",
    b"\r",
    b" \n",
    b" ",
    b"\t",
    b"-",
    b"<",
    b'""',
    b'"',
    b"a.",
    b"a-",
    b"x",
    b"@",
    b"a@",
    b"=",
    b"=\n",
    b";",
    b",",
    b"\\",
    b"(",
    b"[",
    b"<a ",
    b"&",
    b"user ",
    b"5.1.1 ",
    b"550 ",
    b"--x\n",
    b"\x00",
)
REPEATS = (2, 10, 100, 1000, 5000, 20000, 60000)
# Declared charsets and encodings replaced by wrong, unknown or hostile ones.
SWAPS = (
    (b"utf-8", b"utf-16"),
    (b"UTF-8", b"zlib"),
    (b"utf-8", b"unicode_escape"),
    (b"UTF-8", b"x-unknown"),
    (b"iso-2022-jp", b"utf-32"),
    (b"us-ascii", b"utf-7"),
    (b"ISO-8859-1", b"base64"),
    (b"base64", b"quoted-printable"),
    (b"quoted-printable", b"base64"),
    (b"QUOTED-PRINTABLE", b"b"),
    (b"7bit", b"base64"),
    (b"8bit", b"x-uuencode"),
    (b"\r\n", b"\n"),
    (b"\n", b"\r"),
    (b"VERSION:3.0", b"VERSION:2.1"),
    (b"BEGIN:VCARD", b"BEGIN:VCARD\r\nBEGIN:VCARD"),
    (b"END:VCARD", b""),
    (b"Content-Type: multipart", b"Content-Type: text/plain; x"),
    (b"boundary=", b'boundary=""'),
)


@dataclass(frozen=True)
class Edit:
    """One change: `kind` at `at`; the other fields mean what each kind needs."""

    kind: str
    at: int
    count: int = 1
    data: bytes = b""
    other: bytes = b""
    source: int = 0


positions = st.integers(min_value=0, max_value=MAX_INPUT)
edits: st.SearchStrategy[Edit] = st.one_of(
    st.builds(Edit, st.just("flip"), positions, st.integers(1, 255)),
    st.builds(Edit, st.just("delete"), positions, st.integers(1, 400)),
    st.builds(Edit, st.just("insert"), positions, data=st.binary(min_size=1, max_size=40)),
    st.builds(Edit, st.just("insert"), positions, data=st.sampled_from(SPECIAL)),
    # A huge line, or a long run of one unit.
    st.builds(Edit, st.just("insert"), positions, st.sampled_from(REPEATS), st.sampled_from(UNITS)),
    st.builds(
        Edit, st.just("duplicate"), positions, st.integers(1, 2000), source=st.integers(1, 8)
    ),
    st.builds(Edit, st.just("truncate"), positions),
    st.builds(
        Edit, st.just("splice"), positions, st.integers(1, 3000), source=st.integers(0, 10**9)
    ),
    st.sampled_from(SWAPS).flatmap(
        lambda swap: st.builds(
            Edit, st.just("swap"), st.integers(0, 5), data=st.just(swap[0]), other=st.just(swap[1])
        )
    ),
)


def mutate(data: bytes, changes: Sequence[Edit], donors: Sequence[bytes] = ()) -> bytes:
    """`data` with each change applied in turn; `donors` are what "splice" takes from."""
    out = bytearray(data)
    for change in changes:
        at = change.at % (len(out) + 1)
        if change.kind == "flip" and out:
            out[at % len(out)] ^= change.count
        elif change.kind == "delete":
            del out[at : at + change.count]
        elif change.kind == "insert":
            out[at:at] = change.data * change.count
        elif change.kind == "duplicate":
            out[at:at] = out[at : at + change.count] * change.source
        elif change.kind == "truncate":
            del out[at:]
        elif change.kind == "splice" and donors:
            donor = donors[change.source % len(donors)]
            start = (change.source // len(donors)) % (len(donor) + 1)
            out[at:at] = donor[start : start + change.count]
        elif change.kind == "swap":
            out = bytearray(_replace_nth(bytes(out), change.data, change.other, change.at))
        del out[MAX_INPUT:]
    return bytes(out)


def _replace_nth(data: bytes, old: bytes, new: bytes, nth: int) -> bytes:
    """`data` with its nth occurrence of `old` (counting around) replaced by `new`."""
    count = data.count(old)
    if not count:
        return data
    at = -1
    for _ in range(nth % count + 1):
        at = data.find(old, at + 1)
    return data[:at] + new + data[at + len(old) :]


# --- what a reader may yield ----------------------------------------------------------------


def check_records(records: Sequence[object]) -> None:
    """Only the two record types, each with text that can be stored (no lone surrogate)."""
    for record in records:
        if isinstance(record, ContactInput):
            texts: tuple[object, ...] = (record.email, record.name, record.where)
        else:
            assert isinstance(record, RecordProblem), record
            texts = (record.where, record.reason)
        for text in texts:
            assert isinstance(text, str)
            text.encode("utf-8")
