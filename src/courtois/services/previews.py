"""preview_invitations: the exact email and the consent sentence the member will agree to."""

from __future__ import annotations

from dataclasses import dataclass

from courtois.delivery.render import Inviter, Previewed, RenderContext, Rendered, preview
from courtois.domain.errors import InvalidInput
from courtois.domain.members import Member, check_locale
from courtois.domain.preview import check_note
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
_REMINDER = {
    "en": " If someone does not answer, one reminder, at least {days} days later.",
    "fr": " Sans réponse, un seul rappel, au moins {days} jours plus tard.",
}


def check_reminders(ctx: Context, reminders: int) -> int:
    """0 or 1, and never above the policy's cap."""
    if reminders not in (0, 1) or reminders > ctx.settings.policy.reminder_cap:
        raise InvalidInput(
            f"reminders must be 0 or at most {ctx.settings.policy.reminder_cap}.",
            {"reminders": str(reminders)},
        )
    return reminders


def render_for(
    ctx: Context, member: Member, note: str, locale: str | None, reminders: int
) -> tuple[Previewed, str]:
    """Render the invitation (and its reminder, if ticked) for this member, in the
    recipient's language when known, else the member's; returns it and the locale used."""
    language = check_locale(locale or member.locale)
    inviter = Inviter(member.name, check_note(note), check_reminders(ctx, reminders))
    return preview(language, RenderContext.from_settings(ctx.settings, (inviter,))), language


def consent_text(ctx: Context, locale: str, count: int, reminders: int) -> str:
    """The sentence the member ticks, naming what they agree to."""
    reminder = (
        _REMINDER[locale].format(days=ctx.settings.policy.reminder_min_days) if reminders else ""
    )
    sentence = _CONSENT_ONE[locale] if count == 1 else _CONSENT[locale]
    return sentence.format(platform=ctx.settings.platform_name, count=count, reminder=reminder)


def preview_invitations(
    ctx: Context, member_id: str, count: int, note: str, locale: str | None, reminders: int
) -> Preview:
    """The exact message and consent sentence for `count` recipients."""
    member = get_member(ctx, member_id)
    rendered, language = render_for(ctx, member, note, locale, reminders)
    return Preview(
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        preview_hash=rendered.preview_hash,
        consent_text=consent_text(ctx, language, count, reminders),
        reminders=reminders,
        locale=language,
        follow_ups=rendered.follow_ups,
    )
