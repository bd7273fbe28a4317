"""Bounce (RFC 3464 DSN) and complaint (RFC 5965 ARF) classification: a pure function.

`classify(raw, source)` says what one incoming message is and, per recipient it names,
whether the address itself is dead (`hard`). flufl.bounce finds the failed recipients of
the many non-standard formats; the DSN fields and the server's own words then decide
hard or not (`bounce_classify`), since a permanent failure is often no dead address at
all (a spam block, a full mailbox, a policy). A mail whose subject is "unsubscribe TOKEN"
is no report but a recipient's request, sent by the `mailto:` of List-Unsubscribe
(`bounce_unsubscribe`): it is classified `unsubscribe`, with its token. No database, no
network, no logging of addresses; any input, however mangled, gives a report and never an
exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from typing import Literal

from flufl.bounce import all_failures

from courtois.delivery.bounce_classify import effective_status, find_status, has_words, is_hard
from courtois.delivery.bounce_mime import (
    ADDRESS,
    Failure,
    embedded,
    full_text,
    header_addresses,
    is_robot,
    notification_text,
    unique,
)
from courtois.delivery.bounce_origin import original_ids, original_senders, ses_original
from courtois.delivery.bounce_readers import iter_messages
from courtois.delivery.bounce_reports import (
    dsn_failures,
    feedback_report,
    ses_failures,
    ses_notification,
)
from courtois.delivery.bounce_text import (
    TextLines,
    context,
    is_auto_reply,
    is_report,
    looks_like_bounce,
    only_as_sender,
    text_recipients,
)
from courtois.delivery.bounce_unsubscribe import unsubscribe_token

__all__ = ["BounceKind", "BounceReport", "BouncedRecipient", "classify", "iter_messages"]

BounceKind = Literal[
    "hard_bounce", "soft_bounce", "complaint", "auto_reply", "not_a_bounce", "unsubscribe"
]


class _NoTracebacks(logging.Filter):
    """flufl.bounce logs a detector's exception with its traceback, whose message may
    quote the mail; addresses never reach a log (invariant 10), so those records go."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


logging.getLogger("flufl.bounce").addFilter(_NoTracebacks())


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    """One recipient a report names: the address as written, the RFC 3463 status code
    ("" when none was given) and whether the address itself is dead."""

    address: str
    status: str
    hard: bool


@dataclass(frozen=True, slots=True)
class BounceReport:
    """What one message is, and whom it is about. `feedback` is the Feedback-Type of a
    feedback report that is no complaint ("auth-failure", "not-spam"...): such a report
    is `not_a_bounce`, told but applied to nobody. It stays out of `as_dict`, whose shape
    is the command line's contract. `token` is the token of an `unsubscribe` request: a
    key to a recipient's choices, it stays out of `as_dict` and of the report's repr, so
    no output or log shows it."""

    source: str
    kind: BounceKind
    recipients: tuple[BouncedRecipient, ...] = ()
    feedback: str = ""
    # The Message-IDs ("local@domain") and senders of the message reported or returned,
    # when the report shows them: what ties it to an email we sent (`bounce_origin`).
    original_ids: tuple[str, ...] = ()
    original_senders: tuple[str, ...] = ()
    token: str = field(default="", repr=False)

    @property
    def hard_recipients(self) -> tuple[BouncedRecipient, ...]:
        """The recipients whose address is dead."""
        return tuple(r for r in self.recipients if r.hard)

    def as_dict(self) -> dict[str, object]:
        """The report as the CLI prints it."""
        return {
            "source": self.source,
            "kind": self.kind,
            "recipients": [
                {"address": r.address, "status": r.status, "hard": r.hard} for r in self.recipients
            ],
        }


_NOT_FAILED = frozenset({"delivered", "deliverable", "relayed", "expanded"})


def classify(raw: bytes, source: str = "") -> BounceReport:
    """Classify one message; never raises (a message nobody can read is no bounce)."""
    try:
        return _classify(message_from_bytes(raw), source)
    except Exception:  # hostile input: the parser or a detector gave up
        return BounceReport(source, "not_a_bounce")


def _classify(msg: Message, source: str, depth: int = 0) -> BounceReport:
    token = unsubscribe_token(msg["Subject"]) if depth == 0 else None
    if token is not None:
        return BounceReport(source, "unsubscribe", token=token)
    ses = ses_notification(msg)
    if ses is not None:
        kind, failures = ses_failures(ses)
        ids, senders = ses_original(ses)
        if kind == "Complaint":
            found = _complaint(source, [f.address for f in failures])
        else:
            found = _bounce(source, msg, failures, "")
        return replace(found, original_ids=ids, original_senders=senders)
    feedback = feedback_report(msg)
    if feedback is not None:
        if feedback.is_complaint:
            return _about(_complaint(source, list(feedback.recipients)), msg)
        # A DMARC failure report, a "not spam" report: told, and nothing changes.
        named = tuple(BouncedRecipient(a, "", False) for a in feedback.recipients)
        return BounceReport(source, "not_a_bounce", named, feedback=feedback.type)
    reporter = header_addresses(msg, "From")
    reported = dsn_failures(msg)
    failures = [f for f in reported if f.action not in _NOT_FAILED and f.status[:1] != "2"]
    if not failures and is_auto_reply(msg):
        author = [a for a in sorted(reporter) if not is_robot(a)]
        return BounceReport(
            source, "auto_reply", tuple(BouncedRecipient(a, "", False) for a in author)
        )
    inner = embedded(msg)
    if not failures and inner is not None and depth < 3 and is_report(inner):
        # A bounce forwarded as an attachment: what matters is the bounce inside.
        report = _classify(inner, source, depth + 1)
        if report.recipients:
            return report
    text = notification_text(msg)
    known = {f.address.lower() for f in reported}
    whole = TextLines.of(full_text(msg))
    for address in _flufl(msg):
        if address.lower() not in known | reporter and not only_as_sender(address, whole):
            failures.append(Failure(address))
            known.add(address.lower())
    if not reported and not failures and looks_like_bounce(msg):
        failures = [Failure(a) for a in text_recipients(msg, text)]
    return _about(_bounce(source, msg, failures, text), msg)


def _about(report: BounceReport, msg: Message) -> BounceReport:
    """The report with what it says of the original message (none for a non-bounce)."""
    if report.kind not in ("hard_bounce", "soft_bounce", "complaint"):
        return report
    return replace(report, original_ids=original_ids(msg), original_senders=original_senders(msg))


def _complaint(source: str, addresses: list[str]) -> BounceReport:
    recipients = tuple(BouncedRecipient(a, "", False) for a in unique(addresses) if a)
    return BounceReport(source, "complaint", recipients)


def _bounce(source: str, msg: Message, failures: list[Failure], text: str) -> BounceReport:
    reporter = header_addresses(msg, "From")
    failures = [f for f in failures if f.address and f.address.lower() not in reporter]
    if not failures:
        return BounceReport(source, "not_a_bounce")
    others = frozenset(f.address.lower() for f in failures)
    lines = TextLines.of(text)
    recipients = []
    for failure in failures:
        # The remote server's own words (the DSN's Diagnostic-Code) come first: the
        # reporting MTA's summary may turn any refusal into "5.1.1 user unknown".
        diagnostic = failure.diagnostic
        if not has_words(diagnostic):
            diagnostic = f"{diagnostic} {context(failure.address, lines, others)}"
            # A sole recipient: the whole notice is about it, and its words may be on a
            # line that does not name it ("mail.local: unknown user: kijitora").
            if len(failures) == 1 and not (find_status(diagnostic) and has_words(diagnostic)):
                diagnostic = f"{diagnostic} {text}"
        status = effective_status(failure.status, diagnostic)
        around = text if len(failures) == 1 else context(failure.address, lines, others)
        hard = is_hard(
            status,
            diagnostic,
            failure.action or "failed",
            around,
            recipient=failure.address,
            category=failure.category,
            servers=failure.servers,
        )
        if failure.action == "delayed" and not status:
            status = "4.0.0"
        recipients.append(BouncedRecipient(failure.address, status, hard))
    seen: dict[str, BouncedRecipient] = {}
    for recipient in recipients:
        key = recipient.address.lower()
        if key not in seen or (recipient.hard and not seen[key].hard):
            seen[key] = recipient
    unique_recipients = tuple(seen.values())
    kind: BounceKind = "hard_bounce" if any(r.hard for r in unique_recipients) else "soft_bounce"
    return BounceReport(source, kind, unique_recipients)


def _flufl(msg: Message) -> list[str]:
    """Recipients flufl.bounce finds failed, temporarily or for good. Some of its
    detectors break on odd messages (flufl.bounce 4.0 to 6: Yale's on a message without a
    From header); the plain-text reading then carries on without it."""
    try:
        temporary, permanent = all_failures(_lines_cut(msg))
    except Exception:
        return []
    found = [a.decode("ascii", "replace") for a in (*sorted(permanent), *sorted(temporary))]
    return [m.group(1) for a in found if (m := ADDRESS.search(a))]


# Some detectors of flufl.bounce take time in the square of a line's length (a line of
# 60,000 commas costs seconds): they are given lines no longer than this, which is far
# beyond any line of a real bounce that names a recipient.
_FLUFL_LINE = 4096


def _lines_cut(msg: Message) -> Message:
    """The message itself, or when a line is too long, the message with its lines cut."""
    try:
        raw = msg.as_bytes()
    except Exception:  # a message the generator cannot write back: read as it is
        return msg
    if all(len(line) <= _FLUFL_LINE for line in raw.splitlines()):
        return msg
    return message_from_bytes(b"\n".join(line[:_FLUFL_LINE] for line in raw.splitlines()))
