"""Every email as subject, plain text and HTML, from the templates, in the reader's language.

Per-recipient links come from `Tokens`; previews and hashes use `Tokens.placeholders`, so
the message a member previews and each copy delivered differ only in those tokens
(invariant 2). What members typed is data, never template: a name that reads "{token:u}"
is printed as typed, and escaped in HTML.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache

from babel.lists import format_list
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from courtois.config import Settings
from courtois.delivery.elision import after
from courtois.delivery.hyphens import unbroken
from courtois.delivery.i18n import install_translations, translations
from courtois.delivery.text import clean_name, clean_note, one_line, quote, wrap
from courtois.domain.messages import MessageKind

UNSUBSCRIBE_SLOT = "{token:u}"
WHY_SLOT = "{token:why}"
JOIN_SLOT = "{token:join}"


@dataclass(frozen=True, slots=True)
class Rendered:
    """One email's visible content."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Inviter:
    """One member's invitation, as they wrote it."""

    name: str
    note: str = ""
    reminders: int = 0


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Everything shown besides the tokens; the preview and the delivery build it alike."""

    platform: str
    base_url: str
    inviters: tuple[Inviter, ...]
    postal_address: str = ""
    privacy_contact: str = ""
    reminder_days: int = 14
    retention_days: int = 30
    first_contact: bool = True
    # A reminder the recipient asked for from /why ("remind me later"), not the member: its
    # words say so. Never set in a preview, which shows only what the member's consent covers.
    asked_by_recipient: bool = False
    # The text a member sends from their own mailbox (strict-eu): it must not say the platform
    # sent it or will send anything more, nor speak as the platform ("we").
    by_member: bool = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        inviters: tuple[Inviter, ...],
        *,
        first_contact: bool = True,
        asked_by_recipient: bool = False,
        by_member: bool = False,
    ) -> RenderContext:
        """The context for this platform's configuration."""
        return cls(
            platform=settings.platform_name,
            base_url=settings.base_url,
            inviters=inviters,
            postal_address=settings.platform_postal_address,
            privacy_contact=settings.privacy_contact,
            reminder_days=settings.policy.reminder_min_days,
            retention_days=settings.policy.invitation_expiry_days,
            first_contact=first_contact,
            asked_by_recipient=asked_by_recipient,
            by_member=by_member,
        )


@dataclass(frozen=True, slots=True)
class Tokens:
    """The per-recipient parts of the links: unsubscribe and why (for the whole email), and
    one join token per invitation carried."""

    unsubscribe: str
    why: str
    join: tuple[str, ...]

    @classmethod
    def placeholders(cls, count: int = 1) -> Tokens:
        """The slots shown in previews and hashed."""
        return cls(UNSUBSCRIBE_SLOT, WHY_SLOT, (JOIN_SLOT,) * count)

    def slots(self) -> list[tuple[str, str]]:
        """(token, placeholder) pairs, to turn a delivered message back into its preview."""
        return [
            (self.unsubscribe, UNSUBSCRIBE_SLOT),
            (self.why, WHY_SLOT),
            *((token, JOIN_SLOT) for token in self.join),
        ]


@dataclass(frozen=True, slots=True)
class Previewed:
    """What a member sees before consenting: the invitation, every follow-up it may cause,
    and the hash their consent pins."""

    message: Rendered
    follow_ups: tuple[Rendered, ...]
    preview_hash: str

    @property
    def subject(self) -> str:
        """The invitation's subject."""
        return self.message.subject

    @property
    def text(self) -> str:
        """The invitation's plain text."""
        return self.message.text

    @property
    def html(self) -> str:
        """The invitation's HTML."""
        return self.message.html


def preview_hash(rendered: Rendered, *follow_ups: Rendered) -> str:
    """SHA-256 over subject, text and HTML (placeholders in place of tokens) of the message
    and of each follow-up, every part length-prefixed so no two contents collide."""
    digest = hashlib.sha256(b"courtois-preview-1")
    for message in (rendered, *follow_ups):
        for part in (message.subject, message.text, message.html):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return digest.hexdigest()


@lru_cache(maxsize=1024)
def preview(locale: str, context: RenderContext) -> Previewed:
    """One member's invitation as it will be sent (a first contact), and the reminder when
    they ticked it: the whole of what their consent covers. Pure, so cached: the worker checks
    every email of a consent against the same preview."""
    if len(context.inviters) != 1:
        raise ValueError("A preview shows one member's invitation.")
    invitation = render(MessageKind.INVITATION, locale, replace(context, first_contact=True))
    follow_ups: tuple[Rendered, ...] = ()
    if context.inviters[0].reminders:
        reminder_context = replace(context, first_contact=False)
        follow_ups = (render(MessageKind.REMINDER, locale, reminder_context),)
    return Previewed(invitation, follow_ups, preview_hash(invitation, *follow_ups))


def render(
    kind: MessageKind | str, locale: str, context: RenderContext, tokens: Tokens | None = None
) -> Rendered:
    """Subject, text and HTML of one email; placeholders for tokens unless given.

    One member's email is rendered once with placeholders (which its preview and the
    worker's check of it render anyway) and each recipient's tokens put in their places:
    the templates print the tokens only inside links, each on a line of its own in the
    text, so a token of any length changes nothing else, and a token of letters, digits,
    '_', '.' and '-' is the same escaped in HTML. When a placeholder could also come from
    what a member or the configuration wrote (any "{" in it), or a digest names several
    join links, the templates are rendered with the tokens themselves."""
    kind = MessageKind(kind)
    count = len(context.inviters)
    if count == 0 or (kind is not MessageKind.DIGEST and count != 1):
        raise ValueError(f"A {kind.value} carries one invitation, a digest one or more.")
    if tokens is not None and len(tokens.join) != count:
        raise ValueError("One join token per invitation carried.")
    if count == 1 and _substitutable(context, tokens):
        shown = _with_placeholders(kind, locale, context)
        if tokens is None:
            return shown
        return filled(shown, tokens)
    return _rendered(kind, locale, context, tokens or Tokens.placeholders(count))


# Tokens printed as they are, in a link of the text or of the HTML (no escaping changes them).
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")


def _substitutable(context: RenderContext, tokens: Tokens | None) -> bool:
    """Whether this email's tokens can be put in place of the placeholders of its
    rendering: no text of the context can print a placeholder, and every token prints as
    itself."""
    return substitutable(context) and (tokens is None or plain_tokens(tokens))


def substitutable(context: RenderContext) -> bool:
    """Whether no text of the context can print a placeholder: they all open with "{",
    which no cleaning or escaping adds."""
    written = (
        context.platform,
        context.base_url,
        context.postal_address,
        context.privacy_contact,
        *(part for inviter in context.inviters for part in (inviter.name, inviter.note)),
    )
    return not any("{" in text for text in written)


def plain_tokens(tokens: Tokens) -> bool:
    """Whether every token prints as itself in a link of the text and of the HTML."""
    return all(
        _PLAIN_TOKEN.fullmatch(token) is not None
        for token in (tokens.unsubscribe, tokens.why, *tokens.join)
    )


def filled(shown: Rendered, tokens: Tokens) -> Rendered:
    """A one-invitation rendering with each placeholder replaced by its token."""
    return Rendered(
        _filled(shown.subject, tokens), _filled(shown.text, tokens), _filled(shown.html, tokens)
    )


def _filled(text: str, tokens: Tokens) -> str:
    """The rendering with each placeholder replaced by its token (one join link)."""
    return (
        text.replace(UNSUBSCRIBE_SLOT, tokens.unsubscribe)
        .replace(WHY_SLOT, tokens.why)
        .replace(JOIN_SLOT, tokens.join[0])
    )


@lru_cache(maxsize=1024)
def _with_placeholders(kind: MessageKind, locale: str, context: RenderContext) -> Rendered:
    """One member's email with placeholders: the same for every recipient in the same
    situation (first contact or not, reminder asked for or not)."""
    return _rendered(kind, locale, context, Tokens.placeholders(1))


def _rendered(kind: MessageKind, locale: str, context: RenderContext, tokens: Tokens) -> Rendered:
    """The templates rendered with these tokens."""
    env = _environment(locale)
    values = _shared_values(locale, context, tokens)
    texts, htmls = [], []
    for inviter, join in zip(context.inviters, tokens.join, strict=True):
        text, html = _section(
            env, values, inviter, join, follow_ups=kind is not MessageKind.REMINDER
        )
        texts.append(text)
        htmls.append(Markup(html))  # noqa: S704 - rendered by the autoescaping HTML template
    subject = env.get_template("subject.txt").render(values, kind=kind.value).strip()
    return Rendered(
        subject=subject,
        text=env.get_template(f"{kind.value}.txt").render(values, subject=subject, sections=texts),
        html=env.get_template(f"{kind.value}.html").render(values, subject=subject, sections=htmls),
    )


def sections(locale: str, context: RenderContext, *, follow_ups: bool = True) -> list[Rendered]:
    """Each member's part (text, HTML) with placeholders: identical alone or in a digest,
    which is how a digest keeps to what each member previewed."""
    env = _environment(locale)
    values = _shared_values(locale, context, Tokens.placeholders(len(context.inviters)))
    return [
        Rendered("", *_section(env, values, inviter, JOIN_SLOT, follow_ups=follow_ups))
        for inviter in context.inviters
    ]


def member_list(names: list[str], locale: str) -> str:
    """The members as one phrase, "Ana, Bo and Cy": no comma before the last, as the
    subjects of larger digests write them ("Ana, Bo and 3 others"). Babel's English lists
    put one there ("Ana, Bo, and Cy"); French has none either way."""
    if len(names) <= 2:
        return format_list(names, locale=locale)
    return format_list([", ".join(names[:-1]), names[-1]], locale=locale)


def _shared_values(locale: str, context: RenderContext, tokens: Tokens) -> dict[str, object]:
    base = context.base_url.rstrip("/")
    platform = clean_name(context.platform)
    names = [clean_name(inviter.name) for inviter in context.inviters]
    postal = one_line(context.postal_address)
    why_url = f"{base}/why/{tokens.why}"
    return {
        "lang": locale,
        "platform": platform,
        "base": base,
        "names": names,
        "members": member_list(names, locale),
        "count": len(names),
        "postal_address": postal,
        "controller": f"{platform}, {postal}" if postal else platform,
        "privacy_contact": one_line(context.privacy_contact),
        "first_contact": context.first_contact,
        "asked": context.asked_by_recipient,
        "by_member": context.by_member,
        "retention_days": context.retention_days,
        "days": context.reminder_days,
        "why_url": why_url,
        "forget_url": f"{why_url}#forget",
        "stop_url": f"{base}/u/{tokens.unsubscribe}",
    }


def _section(
    env: Environment, values: dict[str, object], inviter: Inviter, join: str, *, follow_ups: bool
) -> tuple[str, str]:
    own = {
        "name": clean_name(inviter.name),
        "note": clean_note(inviter.note),
        "reminders": inviter.reminders,
        "join_url": f"{values['base']}/join/{join}",
        "follow_ups": follow_ups,
    }
    return (
        env.get_template("_inviter.txt").render(values, **own),
        env.get_template("_inviter.html").render(values, **own),
    )


@cache
def _environment(locale: str) -> Environment:
    env = Environment(
        loader=PackageLoader("courtois.delivery", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Packaged templates do not change under a running process: no file check per use.
        auto_reload=False,
    )
    install_translations(env, translations(locale))
    env.filters["wrap"] = wrap
    env.filters["quote"] = quote
    env.filters["after"] = after
    env.filters["unbroken"] = unbroken
    return env
