"""The email as it leaves: rendered, per-recipient tokens filled in, headers set.

From is always the platform's address with the member's name as display name (DMARC: never
the member's own address); Reply-To is the member only when they opted in. Every header is
built through `email.headerregistry`, and every name in it is cleaned first, so no member
input can add a header (no CR/LF survives) or change an address.
"""

from __future__ import annotations

import re
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from courtois.config import Settings
from courtois.delivery.consented_words import fill
from courtois.delivery.render import (
    Inviter,
    RenderContext,
    Rendered,
    Tokens,
    preview,
    render,
)
from courtois.delivery.text import clean_name
from courtois.delivery.wire import PLAIN_ADDRESS, WirePolicy, body_policy, policy_for, to_bytes
from courtois.domain.addresses import ascii_domain
from courtois.domain.errors import InvalidInput, NotFound
from courtois.domain.messages import MessageKind
from courtois.tokens import Scope, make_token, read_token

__all__ = [
    "Carried",
    "ComposeInput",
    "EmailParts",
    "as_previewed",
    "boundary",
    "build_email",
    "compose",
    "compose_rendered",
    "consent_hashes",
    "consented_hash",
    "email_parts",
    "make_tokens",
    "render_context",
    "to_bytes",
    "tokens_in",
]

_MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FEEDBACK_PART = re.compile(r"[^A-Za-z0-9.-]+")
_UTF8_LOCAL = re.compile(r'[^\s\x00-\x1f\x7f-\x9f"(),:;<>@\[\\\]]+')


@dataclass(frozen=True, slots=True)
class Carried:
    """One invitation an email carries, with what its member wrote and chose."""

    invitation_id: str
    member_name: str
    note: str = ""
    reminders: int = 0
    # The member's own address, set only when they opted in to replies.
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class ComposeInput:
    """One email to compose: a digest carries several invitations, any other kind one."""

    message_id: str
    to: str
    kind: MessageKind
    locale: str
    invitations: tuple[Carried, ...]
    # None: by kind (an invitation or digest introduces its members, a reminder follows one).
    first_contact: bool | None = None
    sent_at: datetime | None = None
    # A reminder the recipient asked for ("remind me later"), worded as theirs, not the member's.
    asked_by_recipient: bool = False
    # The message id of the email this one follows up (a reminder: its invitation's, when
    # that email was sent): named in In-Reply-To and References, so that mail clients show
    # the two in one thread.
    in_reply_to: str | None = None
    # The words its member consented to, kept with the consent (placeholders for the
    # tokens): sent as they are instead of being rendered again (`consented_words`).
    words: Rendered | None = None

    @property
    def member_names(self) -> tuple[str, ...]:
        """Who invited, in order."""
        return tuple(carried.member_name for carried in self.invitations)

    @property
    def invitation_ids(self) -> tuple[str, ...]:
        """The invitations carried, in order."""
        return tuple(carried.invitation_id for carried in self.invitations)

    @property
    def is_first_contact(self) -> bool:
        """Whether the GDPR Article 14 notice goes in."""
        if self.first_contact is not None:
            return self.first_contact
        return self.kind is not MessageKind.REMINDER


def make_tokens(settings: Settings, invitation_ids: tuple[str, ...]) -> Tokens:
    """Signed tokens: unsubscribe and why name the first invitation, each join its own."""
    if not invitation_ids:
        raise ValueError("An email carries at least one invitation.")
    secret = settings.token_secrets
    first = invitation_ids[0]
    return Tokens(
        unsubscribe=make_token(secret, Scope.UNSUBSCRIBE, first),
        why=make_token(secret, Scope.WHY, first),
        join=tuple(make_token(secret, Scope.JOIN, each) for each in invitation_ids),
    )


def render_context(settings: Settings, message: ComposeInput) -> RenderContext:
    """What is shown, built exactly as the preview builds it."""
    inviters = tuple(Inviter(c.member_name, c.note, c.reminders) for c in message.invitations)
    return RenderContext.from_settings(
        settings,
        inviters,
        first_contact=message.is_first_contact,
        asked_by_recipient=message.asked_by_recipient and message.kind is MessageKind.REMINDER,
    )


def consent_hashes(settings: Settings, message: ComposeInput) -> tuple[str, ...]:
    """For each invitation carried, the preview hash its consent must pin for this email to
    be what that member was shown: compare before sending (invariant 2)."""
    return tuple(consented_hash(settings, message.locale, c) for c in message.invitations)


def consented_hash(settings: Settings, locale: str, carried: Carried) -> str:
    """The preview hash of one invitation's words in this language, as these settings and
    this release's templates render them: what its consent must pin for it to leave."""
    inviter = Inviter(carried.member_name, carried.note, carried.reminders)
    return preview(locale, RenderContext.from_settings(settings, (inviter,))).preview_hash


def compose(
    settings: Settings, message: ComposeInput, tokens: Tokens | None = None
) -> EmailMessage:
    """The multipart (text, then HTML) email with every header, ready to sign and send."""
    return compose_rendered(settings, message, tokens)[0]


@dataclass(frozen=True, slots=True)
class EmailParts:
    """What an email is made of before any MIME library sees it: the policy its addresses
    need, the headers above the body in their order, the rendered words and the language.
    `compose_rendered` builds an `EmailMessage` from it; `mime_writer` writes the same bytes
    directly."""

    policy: WirePolicy
    headers: tuple[tuple[str, str | Address], ...]
    rendered: Rendered
    language: str


def compose_rendered(
    settings: Settings, message: ComposeInput, tokens: Tokens | None = None
) -> tuple[EmailMessage, Rendered]:
    """`compose`, with the rendered subject, text and HTML it was made from."""
    parts = email_parts(settings, message, tokens)
    return build_email(parts), parts.rendered


def build_email(parts: EmailParts) -> EmailMessage:
    """The multipart (text, then HTML) email made of these parts, its boundary drawn."""
    email = EmailMessage(policy=parts.policy)
    for name, value in parts.headers:
        email[name] = value
    # `set_content` cuts quoted-printable lines at the policy's max_line_length, which is
    # also the headers' 78: the parts are set under a policy whose lines are 76 (RFC 2045),
    # and everything is then given back the email's own, which folds the headers.
    email.policy = body_policy(parts.policy)
    email.set_content(parts.rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    email.add_alternative(
        parts.rendered.html, subtype="html", charset="utf-8", cte="quoted-printable"
    )
    for part in (email, *email.iter_parts()):
        part.policy = parts.policy
    email.set_boundary(boundary())
    # After the parts: setting the content would move Content-* headers into them.
    email["Content-Language"] = parts.language
    return email


def email_parts(
    settings: Settings, message: ComposeInput, tokens: Tokens | None = None
) -> EmailParts:
    """The email's words rendered and its headers chosen; an id or address that cannot be
    printed is InvalidInput."""
    if not _MESSAGE_ID.fullmatch(message.message_id):
        raise InvalidInput("A message id is letters, digits, '.', '_' or '-'.")
    if message.in_reply_to is not None and not _MESSAGE_ID.fullmatch(message.in_reply_to):
        raise InvalidInput("A message id is letters, digits, '.', '_' or '-'.")
    tokens = tokens or make_tokens(settings, message.invitation_ids)
    rendered = _words(settings, message, tokens)
    sender = _address(settings.mail_from, "mail_from")
    recipient = _address(message.to, "to")
    single = len(message.invitations) == 1
    # Replies reach the member only if they opted in, and only from a one-member email.
    reply_to = message.invitations[0].reply_to if single else None
    replies = _address(reply_to, "reply_to") if reply_to else None
    platform = clean_name(settings.platform_name)
    member = clean_name(message.member_names[0])
    display = f"{member} via {platform}" if single else platform
    headers: list[tuple[str, str | Address]] = [
        ("From", Address(display, sender.username, sender.domain)),
        ("To", recipient),
    ]
    if replies is not None:
        headers.append(("Reply-To", Address(member, replies.username, replies.domain)))
    unsubscribe_url = f"{settings.base_url.rstrip('/')}/u/{tokens.unsubscribe}"
    mailto = f"mailto:{sender.addr_spec}?subject={quote('unsubscribe ' + tokens.unsubscribe)}"
    headers += [
        ("Subject", rendered.subject),
        ("Date", format_datetime(message.sent_at or datetime.now(UTC))),
        ("Message-ID", f"<{message.message_id}@{sender.domain}>"),
    ]
    if message.in_reply_to is not None:
        # Built as that email's own Message-ID was: from its id, never from any text.
        replied = f"<{message.in_reply_to}@{sender.domain}>"
        headers += [("In-Reply-To", replied), ("References", replied)]
    headers += [
        ("Auto-Submitted", "auto-generated"),
        ("Feedback-ID", f"{message.kind.value}:{_feedback_part(platform)}:courtois"),
        ("List-Unsubscribe", f"<{unsubscribe_url}>, <{mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    policy = policy_for(sender, recipient, *filter(None, [replies]))
    return EmailParts(policy, tuple(headers), rendered, message.locale)


def _words(settings: Settings, message: ComposeInput, tokens: Tokens) -> Rendered:
    """The consented words with these tokens in, or the email rendered by this release."""
    if message.words is None:
        return render(message.kind, message.locale, render_context(settings, message), tokens)
    words = fill(message.words, tokens)
    if words is None:
        # Never rendered again instead: other words than the ones consented to could leave.
        raise ValueError("Tokens that do not print as themselves cannot fill kept words.")
    return words


def as_previewed(email: EmailMessage, tokens: Tokens) -> Rendered:
    """The email's subject, text and HTML with its tokens put back as placeholders: what
    `preview_hash` is computed over."""
    parts = []
    for subtype in ("plain", "html"):
        content = _part(email, subtype)
        for token, placeholder in tokens.slots():
            content = content.replace(token, placeholder)
        parts.append(content)
    return Rendered(str(email["Subject"]), parts[0], parts[1])


def tokens_in(email: EmailMessage, settings: Settings) -> Tokens:
    """The per-recipient tokens a delivered email carries, read back from its links and kept
    only when their signature holds: with `as_previewed`, proves afterwards that a message
    is the one its members consented to, without storing any token."""
    text = _part(email, "plain")
    base = re.escape(settings.base_url.rstrip("/"))
    found: dict[Scope, list[str]] = {}
    for scope in (Scope.UNSUBSCRIBE, Scope.WHY, Scope.JOIN):
        candidates = re.findall(rf"{base}/{scope.value}/([A-Za-z0-9_.-]+)", text)
        found[scope] = [t for t in dict.fromkeys(candidates) if _signed(settings, scope, t)]
    if not found[Scope.UNSUBSCRIBE] or not found[Scope.WHY] or not found[Scope.JOIN]:
        raise ValueError("The email does not carry this platform's links.")
    return Tokens(found[Scope.UNSUBSCRIBE][0], found[Scope.WHY][0], tuple(found[Scope.JOIN]))


def _signed(settings: Settings, scope: Scope, token: str) -> bool:
    try:
        read_token(settings.token_secrets, scope, token)
    except NotFound:
        return False
    return True


def _part(email: EmailMessage, subtype: str) -> str:
    part = email.get_body(preferencelist=(subtype,))
    if part is None:
        raise ValueError(f"The email has no text/{subtype} part.")
    return str(part.get_content()).replace("\r\n", "\n")


def _address(value: str, field: str) -> Address:
    """One bare address, its domain in ASCII form (IDNA 2008, the form the envelope
    carries too: `ascii_domain`); a non-ASCII local part is kept for SMTPUTF8 when it
    holds no space, control or special character."""
    local, _, domain = value.strip().rpartition("@")
    try:
        # The stdlib's codec, given ASCII labels, checks their lengths as it always did.
        domain = ascii_domain(domain).encode("idna").decode("ascii")
        if PLAIN_ADDRESS.fullmatch(f"{local}@{domain}"):
            # A dot-atom at a plain domain: the parser would give back these very parts,
            # at a fifth of an email's composing time.
            address = Address(username=local, domain=domain)
        elif local.isascii():
            address = Address(addr_spec=f"{local}@{domain}")
        elif _UTF8_LOCAL.fullmatch(local):
            address = Address(username=local, domain=domain)
        else:
            raise ValueError(local)
    except (ValueError, IndexError, UnicodeError, MessageError):
        address = Address()
    if not address.username or not address.domain:
        raise InvalidInput(f"{field} is not a valid email address.", {field: "invalid"})
    return address


def boundary() -> str:
    """A multipart boundary of the stdlib's own shape. Chosen here rather than by the
    generator, which compiles a regular expression per message to look for it in the parts:
    quoted-printable parts cannot hold a run of '=' like this one."""
    return "=" * 15 + f"{secrets.randbelow(sys.maxsize):019d}" + "=="


def _feedback_part(value: str) -> str:
    return _FEEDBACK_PART.sub("-", value).strip("-")[:40] or "platform"
