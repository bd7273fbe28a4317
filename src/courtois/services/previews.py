"""preview_invitations: the exact email and the consent sentence the member will agree to."""

from __future__ import annotations

from dataclasses import dataclass

from courtois.delivery.consented_words import kept
from courtois.delivery.render import Inviter, Previewed, RenderContext, Rendered, preview
from courtois.domain.errors import InvalidInput, NoReminderUnderStrictEu, ReminderOverCap
from courtois.domain.members import Member, check_locale
from courtois.domain.preview import check_note
from courtois.policy.rules.strict_eu import members_send_themselves
from courtois.services.context import Context
from courtois.services.members import get_member


@dataclass(frozen=True, slots=True)
class Preview:
    """What the member sees before consenting: the invitation and every follow-up it may
    cause; `preview_hash` covers them all and is what the consent pins."""

    subject: str
    text: str
    html: str
    preview_hash: str
    consent_text: str
    reminders: int
    locale: str
    follow_ups: tuple[Rendered, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Plain form for JSON."""
        return {
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "preview_hash": self.preview_hash,
            "consent_text": self.consent_text,
            "reminders": self.reminders,
            "locale": self.locale,
            "follow_ups": [
                {"subject": f.subject, "text": f.text, "html": f.html} for f in self.follow_ups
            ],
        }


_CONSENT = {
    "en": (
        "I ask {platform} to send this invitation, in my name, to the {count} people I chose."
        "{reminder}"
    ),
    "fr": (
        "Je demande à {platform} d'envoyer cette invitation, en mon nom, aux {count} "
        "personnes que j'ai choisies.{reminder}"
    ),
}
# One recipient is named as one person, not "the 1 people".
_CONSENT_ONE = {
    "en": "I ask {platform} to send this invitation, in my name, to the person I chose.{reminder}",
    "fr": (
        "Je demande à {platform} d'envoyer cette invitation, en mon nom, à la personne que "
        "j'ai choisie.{reminder}"
    ),
}
# Under strict-eu the platform sends nothing: the member agrees to have the invitations
# recorded and their links made, and sends the text themselves.
_CONSENT_BY_HAND = {
    "en": (
        "I ask {platform} to record my invitation to the {count} people I chose and to make a "
        "personal link for each; I send them the text myself, from my own mailbox. {platform} "
        "sends them no email, and keeps their addresses only as its retention rules say."
    ),
    "fr": (
        "Je demande à {platform} d'enregistrer mon invitation aux {count} personnes que j'ai "
        "choisies et de créer un lien personnel pour chacune\u202f; je leur envoie le texte "
        "moi-même, depuis ma propre messagerie. {platform} ne leur envoie aucun e-mail et ne "
        "garde leurs adresses que selon ses règles de conservation."
    ),
}
_CONSENT_BY_HAND_ONE = {
    "en": (
        "I ask {platform} to record my invitation to the person I chose and to make a "
        "personal link for them; I send them the text myself, from my own mailbox. {platform} "
        "sends them no email, and keeps their address only as its retention rules say."
    ),
    "fr": (
        "Je demande à {platform} d'enregistrer mon invitation à la personne que j'ai choisie "
        "et de créer un lien personnel pour elle\u202f; je lui envoie le texte moi-même, depuis ma "
        "propre messagerie. {platform} ne lui envoie aucun e-mail et ne garde son adresse que "
        "selon ses règles de conservation."
    ),
}
_REMINDER = {
    "en": " If someone does not answer, one reminder, at least {days} days later.",
    "fr": " Sans réponse, un seul rappel, au moins {days} jours plus tard.",
}


def check_reminders(ctx: Context, reminders: int) -> int:
    """0 or 1, never above the policy's cap, and none where the member sends the invitation
    themselves (strict-eu): refused rather than dropped, so what the member is shown and
    agrees to is what happens (invariant 2). Every use case that takes a reminder count
    (preview, invite, explain) checks it here, so each refuses it alike."""
    if reminders not in (0, 1):
        raise InvalidInput("reminders must be 0 or 1.", {"reminders": str(reminders)})
    if reminders and members_send_themselves(ctx.settings.policy):
        raise NoReminderUnderStrictEu(
            "No reminder under the strict-eu profile: the member sends each invitation from "
            "their own mailbox and no email follows it; ask for reminders 0.",
            {"reminders": "none under strict-eu"},
        )
    cap = ctx.settings.policy.reminder_cap
    if reminders > cap:
        raise ReminderOverCap(
            f"No reminder on this platform: its policy allows at most {cap} "
            "(reminder_cap); ask for reminders 0.",
            {"reminders": f"at most {cap}"},
        )
    return reminders


def render_for(
    ctx: Context, member: Member, note: str, locale: str | None, reminders: int
) -> tuple[Previewed, str]:
    """Render the invitation (and its reminder, if ticked) for this member, in the
    language the caller names (the recipients', as the platform or the member knows it),
    else the member's; returns it and the locale used.
    Under strict-eu it is the text the member sends from their own mailbox."""
    language = check_locale(locale or member.locale)
    return preview(language, _context(ctx, member, note, reminders)), language


def words_to_keep(
    ctx: Context, member: Member, note: str, reminders: int, previewed: Previewed
) -> str | None:
    """What the consent keeps of the rendering `render_for` made with the same values: the
    words the worker sends (`consented_words`), or None when they cannot be kept."""
    return kept(previewed, _context(ctx, member, note, reminders))


def _context(ctx: Context, member: Member, note: str, reminders: int) -> RenderContext:
    inviter = Inviter(member.name, check_note(note), check_reminders(ctx, reminders))
    by_member = members_send_themselves(ctx.settings.policy)
    return RenderContext.from_settings(ctx.settings, (inviter,), by_member=by_member)


def consent_language(member: Member) -> str:
    """The language of the consent sentence: the member's own, whatever the email's.

    The member agrees to what they read, so the sentence is in the language of their pages,
    never in the recipients' (invariants 1 and 2); the email stays in the recipient's."""
    return check_locale(member.locale)


def consent_text(ctx: Context, locale: str, count: int, reminders: int) -> str:
    """The sentence the member ticks, naming what they agree to, in `locale` (the
    member's, see `consent_language`)."""
    reminder = (
        _REMINDER[locale].format(days=ctx.settings.policy.reminder_min_days) if reminders else ""
    )
    if members_send_themselves(ctx.settings.policy):
        sentence = _CONSENT_BY_HAND_ONE[locale] if count == 1 else _CONSENT_BY_HAND[locale]
    else:
        sentence = _CONSENT_ONE[locale] if count == 1 else _CONSENT[locale]
    return sentence.format(platform=ctx.settings.platform_name, count=count, reminder=reminder)


def preview_invitations(
    ctx: Context, member_id: str, count: int, note: str, locale: str | None, reminders: int
) -> Preview:
    """The exact message, in the email's language, and the consent sentence for `count`
    recipients, in the member's."""
    member = get_member(ctx, member_id)
    rendered, language = render_for(ctx, member, note, locale, reminders)
    return Preview(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        preview_hash=rendered.preview_hash,
        consent_text=consent_text(ctx, consent_language(member), count, reminders),
        reminders=reminders,
        locale=language,
        follow_ups=rendered.follow_ups,
    )
