"""An email composed once for a set of words, then filled in for each recipient.

Composing costs most of a millisecond even when written directly (`mime_writer`: rendering,
the headers a member's words reach, quoted-printable), and every recipient of a member's
invitation gets the same words: only the address, the date, the Message-ID (and a
reminder's In-Reply-To and References, naming its invitation's email) and the signed tokens
differ. A skeleton is the composition (the bytes `compose` makes) made with random
stand-ins for those values, cut at each stand-in; filling it puts one recipient's values in
their places.

A stand-in has its value's length and only characters that every encoder on the way leaves
as they are (quoted-printable, header folding of a line that fits, URL quoting, HTML
escaping), so the filled bytes are the bytes `compose` makes for that recipient, bar the
multipart boundary (drawn once per skeleton). A value of another shape (an address outside
plain ASCII, a header line that would fold, a token with other characters) is composed the
reference way instead.
"""

from __future__ import annotations

import re
import secrets
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from itertools import pairwise

from courtois.config import Settings
from courtois.delivery.compose import Carried, ComposeInput, make_tokens
from courtois.delivery.mime_writer import Written, wire_form
from courtois.delivery.render import Rendered, Tokens
from courtois.delivery.wire import MAX_HEADER_LINE, PLAIN_ADDRESS
from courtois.domain.messages import MessageKind

__all__ = ["compose_wire"]

# A soft line break of quoted-printable: where a long body line is cut.
SOFT_BREAK = b"=\r\n"
# Stand-ins start with the one character they hold nowhere else, so no occurrence can
# overlap another (a match shifted into the text before it would need a second "Z").
_FIRST = "Z"
_REST = "abcdefghijklmnopqrstuvwxy0123456789"
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
# Shorter stand-ins would be too easy to meet by chance in the words around them.
_SHORTEST_TOKEN = 20
# Slots, in the order of the values: address, date, Message-ID, the id a reminder replies to
# (only when it has one: its In-Reply-To and References), then unsubscribe, why and joins,
# which start at `_heads`.
_TO, _DATE, _MESSAGE_ID, _REPLIED = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Shape:
    """What makes two emails share a skeleton: the words, and the tokens' lengths (which
    decide where quoted-printable breaks their lines)."""

    settings: Settings
    kind: MessageKind
    locale: str
    first_contact: bool
    asked_by_recipient: bool
    replying: bool
    invitations: tuple[tuple[str, str, int, str | None], ...]
    lengths: tuple[int, ...]
    words: Rendered | None = None


@dataclass(frozen=True, slots=True)
class _Skeleton:
    """The wire form with a `%s` where each value goes (its quoted-printable line breaks
    named by `slots`: which value, and before which of its characters a break falls), and
    the plain text likewise."""

    template: bytes
    slots: tuple[tuple[int, tuple[int, ...]], ...]
    # The longest address, date, Message-ID (and replied-to id) that keep their header
    # lines unfolded.
    room: tuple[int, ...]
    subject: str
    text_template: str
    text_slots: tuple[int, ...]

    def fill(self, values: Sequence[str]) -> Written:
        """The email for these values (in slot order)."""
        encoded = [value.encode("ascii") for value in values]
        placed = []
        for index, breaks in self.slots:
            value = encoded[index]
            if breaks:
                cuts = (0, *breaks, len(value))
                value = SOFT_BREAK.join([value[a:b] for a, b in pairwise(cuts)])
            placed.append(value)
        text = self.text_template % tuple(values[index] for index in self.text_slots)
        return Written(self.template % tuple(placed), self.subject, text)


def compose_wire(
    settings: Settings, message: ComposeInput, tokens: Tokens | None = None
) -> Written:
    """The email `compose` makes, in wire form, from a skeleton when one fits."""
    tokens = tokens or make_tokens(settings, message.invitation_ids)
    sent_at = message.sent_at or datetime.now(UTC)
    heads: tuple[str, ...] = (message.to, _date(sent_at, sent_at.utcoffset()), message.message_id)
    if message.in_reply_to is not None:
        heads += (message.in_reply_to,)
    values = (*heads, tokens.unsubscribe, tokens.why, *tokens.join)
    if _fits(message, tokens, sent_at):
        shape = _Shape(
            settings,
            message.kind,
            message.locale,
            message.is_first_contact,
            message.asked_by_recipient,
            message.in_reply_to is not None,
            tuple((c.member_name, c.note, c.reminders, c.reply_to) for c in message.invitations),
            tuple(len(token) for token in values[len(heads) :]),
            message.words,
        )
        skeleton = _skeleton(shape)
        if skeleton is not None and all(
            len(value) <= room for value, room in zip(values, skeleton.room, strict=False)
        ):
            return skeleton.fill(values)
    return wire_form(settings, replace(message, sent_at=sent_at), tokens)[0]


@lru_cache(maxsize=16)
def _date(sent_at: datetime, offset: timedelta | None) -> str:
    """The Date header's value; a batch is sent as of one instant, so formatted once. Keyed
    by the offset too: one instant at two offsets compares equal, yet is written twice."""
    return format_datetime(sent_at)


def _fits(message: ComposeInput, tokens: Tokens, sent_at: datetime) -> bool:
    """Whether every value has a shape that the encoders print unchanged."""
    offset = sent_at.utcoffset()
    return (
        sent_at.year >= 1900
        and (offset is None or offset % timedelta(minutes=1) == timedelta(0))
        and len(tokens.join) == len(message.invitations)
        and PLAIN_ADDRESS.fullmatch(message.to) is not None
        and _PLAIN_ID.fullmatch(message.message_id) is not None
        and (message.in_reply_to is None or _PLAIN_ID.fullmatch(message.in_reply_to) is not None)
        and all(
            len(token) >= _SHORTEST_TOKEN and _TOKEN.fullmatch(token) is not None
            for token in (tokens.unsubscribe, tokens.why, *tokens.join)
        )
    )


@lru_cache(maxsize=512)
def _skeleton(shape: _Shape) -> _Skeleton | None:
    """Compose with stand-ins and cut; None when the composition does not cut cleanly (a
    header line folded, a stand-in met where no value goes), and the reference path serves."""
    date_at = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=secrets.randbelow(3 * 10**9))
    # Header values may be of any length that keeps their line unfolded: short stand-ins.
    heads = _heads(shape)
    standins = [
        f"{_standin(12)}@x.io",
        format_datetime(date_at),
        *(_standin(12) for _ in range(_MESSAGE_ID, heads)),
        *(_standin(length) for length in shape.lengths),
    ]
    if len(set(standins)) != len(standins):
        return None
    settings = shape.settings
    inputs = " ".join(
        [
            settings.platform_name,
            settings.platform_postal_address,
            settings.privacy_contact,
            settings.base_url,
            settings.mail_from,
            *(f"{name} {note} {reply_to}" for name, note, _, reply_to in shape.invitations),
            *((shape.words.subject, shape.words.text, shape.words.html) if shape.words else ()),
        ]
    )
    if any(standin in inputs for standin in standins):
        return None
    carried = tuple(
        Carried(f"standin-{i}", name, note, reminders, reply_to)
        for i, (name, note, reminders, reply_to) in enumerate(shape.invitations)
    )
    tokens = Tokens(standins[heads], standins[heads + 1], tuple(standins[heads + 2 :]))
    message = ComposeInput(
        message_id=standins[_MESSAGE_ID],
        to=standins[_TO],
        kind=shape.kind,
        locale=shape.locale,
        invitations=carried,
        first_contact=shape.first_contact,
        sent_at=date_at,
        asked_by_recipient=shape.asked_by_recipient,
        in_reply_to=standins[_REPLIED] if shape.replying else None,
        words=shape.words,
    )
    written, rendered = wire_form(settings, message, tokens)
    raw, text = written.raw, written.text
    if any(standin in rendered.subject for standin in standins):
        return None
    # The replied-to id is in two headers: In-Reply-To and References.
    expected = [1, 1, 1, *([2] * (heads - _REPLIED))] + [
        rendered.text.count(s) + rendered.html.count(s) for s in standins[heads:]
    ]
    # The unsubscribe token is in List-Unsubscribe twice: the one-click URL and the mailto.
    expected[heads] += 2
    pieces, slots = _cut(raw, standins)
    if [sum(1 for index, _ in slots if index == i) for i in range(len(standins))] != expected:
        return None
    room = _header_room(raw, standins[:heads])
    if room is None:
        return None
    text_pieces, text_slots = _cut_text(text, standins)
    return _Skeleton(
        b"%s".join(piece.replace(b"%", b"%%") for piece in pieces),
        tuple(slots),
        room,
        written.subject,
        "%s".join(piece.replace("%", "%%") for piece in text_pieces),
        text_slots,
    )


def _heads(shape: _Shape) -> int:
    """How many of the values are headers' (the tokens come after them)."""
    return _REPLIED + 1 if shape.replying else _REPLIED


def _standin(length: int) -> str:
    """A random value of this length, in characters no encoder touches."""
    rest = secrets.token_bytes(max(length - 1, 0))
    return _FIRST + "".join(_REST[b % len(_REST)] for b in rest)


def _cut(raw: bytes, standins: list[str]) -> tuple[list[bytes], list[tuple[int, tuple[int, ...]]]]:
    """Split the wire form at every stand-in, wherever quoted-printable broke its line:
    stand-ins are looked for in the form without soft line breaks, then placed back."""
    flat = raw.replace(SOFT_BREAK, b"")
    # Where each soft break was, counted in `flat`: the flat offset it came before.
    soft, position, removed = [], raw.find(SOFT_BREAK), 0
    while position != -1:
        soft.append(position - removed)
        removed += len(SOFT_BREAK)
        position = raw.find(SOFT_BREAK, position + len(SOFT_BREAK))
    found = []
    for index, standin in enumerate(standins):
        value = standin.encode("ascii")
        at = flat.find(value)
        while at != -1:
            found.append((at, at + len(value), index))
            at = flat.find(value, at + len(value))
    found.sort()
    pieces: list[bytes] = []
    slots: list[tuple[int, tuple[int, ...]]] = []
    previous, flat_end = 0, 0
    for start, end, index in found:
        if start < flat_end:
            return [], []  # overlapping stand-ins: the counts will not match
        flat_end = end
        before = bisect_right(soft, start)
        inside = soft[before : bisect_left(soft, end)]
        raw_start = start + len(SOFT_BREAK) * before
        pieces.append(raw[previous:raw_start])
        slots.append((index, tuple(b - start for b in inside)))
        previous = raw_start + (end - start) + len(SOFT_BREAK) * len(inside)
    pieces.append(raw[previous:])
    return pieces, slots


def _header_room(raw: bytes, standins: list[str]) -> tuple[int, ...] | None:
    """For the To, Date and Message-ID lines (and In-Reply-To and References), each value
    on unfolded lines: the longest value that keeps every line holding it so (a line that
    fits is printed as it is; one that folds depends on more than the value's length).
    None if one is folded."""
    head = raw.partition(b"\r\n\r\n")[0].split(b"\r\n")
    room = []
    for standin in standins:
        value = standin.encode("ascii")
        found = [i for i, line in enumerate(head) if value in line]
        if not found:
            return None
        for line in found:
            if len(head[line]) > MAX_HEADER_LINE or head[line][:1] in (b" ", b"\t"):
                return None
            if line + 1 < len(head) and head[line + 1][:1] in (b" ", b"\t"):
                return None
        room.append(min(MAX_HEADER_LINE - (len(head[line]) - len(value)) for line in found))
    return tuple(room)


def _cut_text(text: str, standins: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """The plain text split at the stand-ins (decoded text has no soft breaks in them)."""
    found = []
    for index, standin in enumerate(standins):
        at = text.find(standin)
        while at != -1:
            found.append((at, index))
            at = text.find(standin, at + len(standin))
    found.sort()
    pieces: list[str] = []
    previous = 0
    for at, index in found:
        pieces.append(text[previous:at])
        previous = at + len(standins[index])
    pieces.append(text[previous:])
    return pieces, tuple(index for _, index in found)
