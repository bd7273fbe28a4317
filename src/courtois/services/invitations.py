"""invite: record the member's consent and decide, recipient by recipient, what may go."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from courtois.delivery.consented_words import fill
from courtois.delivery.render import Inviter, RenderContext, Rendered, Tokens, render
from courtois.domain.addresses import ROLE_MAILBOX, Address, is_role_mailbox, parse_address
from courtois.domain.consent import Consent
from courtois.domain.errors import Conflict, InvalidInput
from courtois.domain.ids import new_id
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind
from courtois.domain.preview import check_note
from courtois.policy.chain import evaluate
from courtois.policy.facts import Candidate, Facts, InvitationFacts, Stage
from courtois.policy.verdict import Decision, Outcome
from courtois.services import facts as gather
from courtois.services import sender_activity as activity
from courtois.services.batching import collector_paused
from courtois.services.context import Context
from courtois.services.decisions import (
    decision_entry,
    decision_row,
    is_unavailable,
    member_schedule,
    member_shares,
    public_decision,
)
from courtois.services.idempotency import find_answer, invite_scope, request_hash, store_answer
from courtois.services.locks import lock_recipients
from courtois.services.members import lock_and_get_member
from courtois.services.previews import consent_language, consent_text, render_for, words_to_keep
from courtois.services.transitions import scheduled_message
from courtois.services.webhooks import record_invitation_events
from courtois.store.bulk import insert_rows
from courtois.store.tables import consent_recipients, consents, decisions, invitations, messages
from courtois.tokens import Scope, make_token

MAX_RECIPIENTS = 10_000
# Built once: building and cache-keying a statement per request costs more than running it.
_ADD_CONSENT = consents.insert()


@dataclass(frozen=True, slots=True)
class ConsentInput:
    """What the member was shown and where they clicked from."""

    text_shown: str
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class InviteRequest:
    """One consent to invite these recipients with this message."""

    member_id: str
    emails: tuple[str, ...]
    note: str
    locale: str | None
    reminders: int
    preview_hash: str
    consent: ConsentInput


def _parse_all(emails: tuple[str, ...]) -> list[Address]:
    """Every address valid, or nothing happens; duplicates collapse to the first."""
    if not emails:
        raise InvalidInput("Name at least one recipient.", {"emails": "empty"})
    if len(emails) > MAX_RECIPIENTS:
        raise InvalidInput(
            f"At most {MAX_RECIPIENTS} recipients per consent.", {"emails": "too many"}
        )
    # Each bad address is named by its position, as the API names it, never by itself:
    # the refusal reaches stderr and logs, where no address may be written.
    problems: dict[str, str] = {}
    seen: dict[str, Address] = {}
    for index, raw in enumerate(emails):
        try:
            address = parse_address(raw)
        except InvalidInput as error:
            problems[f"emails[{index}]"] = error.message
            continue
        if is_role_mailbox(address):
            problems[f"emails[{index}]"] = ROLE_MAILBOX
            continue
        seen.setdefault(address.key, address)
    if problems:
        raise InvalidInput(f"{len(problems)} address(es) are not valid.", problems)
    return list(seen.values())


def shared_by_member(decision: Decision) -> bool:
    """Whether the member sends this invitation from their own mailbox (`member_shares`)."""
    return member_shares(v.rule for v in decision.verdicts if v.outcome is Outcome.DENY)


def share_for(
    ctx: Context,
    invitation_id: str,
    inviter: Inviter,
    locale: str,
    words: Rendered | None = None,
) -> dict[str, str]:
    """The personal link, and the subject and ready-to-send text, for a member who sends
    the invitation from their own mailbox: the subject and words they previewed (written
    to be sent by them, see `RenderContext.by_member`; the preview hash covers both), with
    this invitation's links: the `words` their consent kept, filled, when given, else
    rendered now.
    The member reads those links too, so the text's "why" and "stop" links are shared ones,
    which open this invitation only (`Scope.SHARED`), not the recipient's own."""
    secret = ctx.settings.token_secrets
    shared = make_token(secret, Scope.SHARED, invitation_id)
    tokens = Tokens(shared, shared, (make_token(secret, Scope.JOIN, invitation_id),))
    rendered = fill(words, tokens) if words is not None else None
    if rendered is None:
        context = RenderContext.from_settings(ctx.settings, (inviter,), by_member=True)
        rendered = render(MessageKind.INVITATION, locale, context, tokens)
    base = ctx.settings.base_url.rstrip("/")
    return {
        "share_link": f"{base}/join/{tokens.join[0]}",
        "share_subject": rendered.subject,
        "share_text": rendered.text,
    }


def _isoformat(at: datetime | None) -> str | None:
    """An instant as the stored answer keeps it (JSON text), or null."""
    return None if at is None else at.isoformat()


def _fingerprint(
    member_id: str, digests: list[str], request: InviteRequest, text_shown: str
) -> str:
    """What tells a repeat from another request under the same key: the recipients and
    everything the member agreed to, as sent. The note and the language asked for are in
    it, as the preview hash stands for them only once checked against them, and a repeat
    is answered before any check (so a stale hash sent with other words is no repeat)."""
    return request_hash(
        {
            "member": member_id,
            "emails": digests,
            "hash": request.preview_hash,
            "reminders": request.reminders,
            "text": text_shown,
            "note": request.note,
            "locale": request.locale,
        }
    )


def _earlier_fingerprint(
    member_id: str, digests: list[str], request: InviteRequest, text_shown: str
) -> str:
    """The fingerprint of the releases before `_fingerprint` took in the note and the
    language, for the answers they stored (kept a day after the upgrade, no longer)."""
    return request_hash(
        {
            "member": member_id,
            "emails": digests,
            "hash": request.preview_hash,
            "reminders": request.reminders,
            "text": text_shown,
        }
    )


def recipient_count(emails: tuple[str, ...]) -> int:
    """How many distinct people these addresses name (Ana@ and ana@ are one)."""
    return len(_parse_all(emails))


@dataclass(frozen=True, slots=True)
class Invited:
    """`invite`'s answer, and whether it is the one stored for an earlier request with the
    same key (which the API says with `Idempotent-Replayed`)."""

    answer: dict[str, Any]
    replayed: bool = False


def invite(
    ctx: Context, request: InviteRequest, now: datetime, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Check the request whole, then in one transaction: record the consent, decide for
    each recipient at the queue stage, and schedule what may go after the undo window.
    A repeat under the same key gets the first answer, whatever would be refused now."""
    return invite_once(ctx, request, now, idempotency_key).answer


def invite_once(
    ctx: Context, request: InviteRequest, now: datetime, idempotency_key: str | None = None
) -> Invited:
    """`invite`, telling a first answer from a repeat's."""
    # The addresses are parsed and digested before the transaction, so its locks are not
    # held for it; an unknown member is still refused first (the member is read under its
    # lock), and invalid addresses right after.
    try:
        addresses, invalid = _parse_all(request.emails), None
    except InvalidInput as refusal:
        addresses, invalid = [], refusal
    by_digest = {ctx.digest(a): a for a in addresses}
    policy = ctx.settings.policy
    with collector_paused(), ctx.unit_of_work(now) as uow:
        conn = uow.conn
        # The member is read under its lock, which the whole transaction holds.
        member = lock_and_get_member(conn, request.member_id)
        if invalid is not None:
            raise invalid
        text_shown = request.consent.text_shown.strip()
        if not text_shown:
            raise InvalidInput(
                "The consent text shown to the member is required.", {"consent": "empty"}
            )
        digests = sorted(by_digest)
        payload_hash = _fingerprint(member.id, digests, request, text_shown)
        scope = invite_scope(member.id)
        # A repeat gets its first answer before the request is checked against what it
        # would send now: since it was recorded, the member's language (the consent
        # sentence's), their name, the policy or the release's words may have changed, and
        # a retry of what was done must not be told that nothing was (invariant 8). The
        # key is looked up under the member's lock: a retry racing the first request waits
        # for it, then finds its answer instead of inviting a second time.
        found = None
        if idempotency_key is not None:
            earlier = _earlier_fingerprint(member.id, digests, request, text_shown)
            found = find_answer(conn, scope, idempotency_key, payload_hash, earlier)
            if found is not None and not found.by_earlier_fingerprint:
                return Invited(found.answer, replayed=True)
        rendered, locale = render_for(ctx, member, request.note, request.locale, request.reminders)
        if request.preview_hash != rendered.preview_hash:
            raise Conflict(
                "The message changed since it was previewed; preview it again before consenting.",
                {"preview_hash": "stale"},
            )
        # The sentence the member read, in their own language (the email may be in another).
        expected = consent_text(ctx, consent_language(member), len(addresses), request.reminders)
        if text_shown != expected:
            raise Conflict(
                "The consent text does not match what this request would send.",
                {"consent.text_shown": expected},
            )
        if found is not None:
            # Kept by the earlier release, whose fingerprint leaves out the note and the
            # language: only the checks tell that this is the request it answered.
            return Invited(found.answer, replayed=True)
        locked = lock_recipients(conn, by_digest)
        consent = Consent(
            id=new_id(),
            member_id=member.id,
            recipients=frozenset(by_digest),
            kind=MessageKind.INVITATION,
            preview_hash=rendered.preview_hash,
            reminders=request.reminders,
            text_shown=text_shown[:2000],
            ip=request.consent.ip[:64],
            user_agent=request.consent.user_agent[:512],
            given_at=now,
        )
        conn.execute(
            _ADD_CONSENT,
            {
                "id": consent.id,
                "member_id": member.id,
                "kind": consent.kind.value,
                "preview_hash": consent.preview_hash,
                "reminders": consent.reminders,
                "locale": locale,
                "note": request.note,
                "text_shown": consent.text_shown,
                "ip": consent.ip,
                "user_agent": consent.user_agent,
                "given_at": now,
                "revoked_at": None,
                "words": words_to_keep(ctx, member, request.note, request.reminders, rendered),
            },
        )
        insert_rows(
            conn,
            consent_recipients,
            [{"consent_id": consent.id, "recipient_digest": d} for d in by_digest],
        )
        uow.record(
            EventType.CONSENT_GIVEN,
            {
                "consent": consent.id,
                "member": member.id,
                "recipients": sorted(by_digest),
                "preview_hash": consent.preview_hash,
                "reminders": consent.reminders,
            },
        )
        recipient_facts = gather.recipient_facts(conn, by_digest, now, policy, locked=locked)
        sender = gather.sender_facts(conn, member.id, now)
        previous = gather.previous_invitations(conn, member.id, by_digest)
        invitation_rows, message_rows, decision_rows, results = [], [], [], []
        unavailable: set[str] = set()
        expiry = timedelta(days=policy.invitation_expiry_days)
        expires_at = now + policy.long_window + expiry
        # The text a member sends by hand (strict-eu) is the one previewed, with no reminder:
        # `check_reminders` refuses one there, as none would ever be sent.
        inviter = Inviter(member.name, check_note(request.note), 0)
        for digest, address in by_digest.items():
            invitation_id, message_id = new_id(), new_id()
            candidate = Candidate(
                member.id, digest, MessageKind.INVITATION, Stage.QUEUE, invitation_id
            )
            facts = Facts(
                policy=policy,
                recipient=recipient_facts[digest],
                sender=sender,
                invitation=InvitationFacts(
                    consent=consent, other_invitations_by_sender=previous.get(digest, 0)
                ),
            )
            decision = evaluate(candidate, facts, now)
            if is_unavailable(decision):
                unavailable.add(digest)
            denied = decision.outcome is Outcome.DENY
            shared = denied and shared_by_member(decision)
            if shared:
                state = InvitationState.SENT
            else:
                state = InvitationState.BLOCKED if denied else InvitationState.SCHEDULED
            invitation_rows.append(
                {
                    "id": invitation_id,
                    "member_id": member.id,
                    "consent_id": consent.id,
                    "recipient_digest": digest,
                    "address": None if denied else address.normalized,
                    "locale": locale,
                    "state": state.value,
                    "created_at": now,
                    "updated_at": now,
                    # Shared by the member, it is out now: its expiry counts from today.
                    "expires_at": now + expiry if shared else expires_at,
                    "sent_at": now if shared else None,
                    "answered_at": None,
                    "remind_at": None,
                }
            )
            if not denied:
                # This message now counts against the sender's caps for the next recipient
                # (times stay sorted: `now` is the latest).
                sender = replace(sender, recent_messages=(*sender.recent_messages, now))
                message_rows.append(
                    scheduled_message(
                        message_id,
                        invitation_id,
                        member.id,
                        digest,
                        MessageKind.INVITATION,
                        decision.retry_at or now,
                        now,
                    )
                )
            stored_message = None if denied else message_id
            decision_rows.append(
                decision_row(decision, candidate=candidate, message_id=stored_message, now=now)
            )
            uow.record(EventType.DECISION, decision_entry(decision, candidate, stored_message))
            results.append(
                {
                    "id": invitation_id,
                    "email": address.normalized,
                    "status": state.value,
                    "scheduled_at": _isoformat(member_schedule(decision, now)),
                    "decision": public_decision(decision),
                    **(share_for(ctx, invitation_id, inviter, locale) if shared else {}),
                }
            )
        insert_rows(conn, invitations, invitation_rows)
        # Shared by the member (strict-eu) counts as sent: the platform hears of it too.
        shared_ids = [str(r["id"]) for r in invitation_rows if r["sent_at"]]
        record_invitation_events(uow, shared_ids, InvitationState.SENT)
        insert_rows(conn, messages, message_rows)
        # Refused invitations never count for the sender (no email, never sent): no row.
        emails = {str(row["invitation_id"]): row["id"] for row in message_rows}
        activity.record_invitations(
            conn,
            [
                {**row, "message_id": emails.get(str(row["id"]))}
                for row in invitation_rows
                if row["sent_at"] or str(row["id"]) in emails
            ],
        )
        insert_rows(conn, decisions, decision_rows)
        answer = {"consent_id": consent.id, "invitations": results}
        if idempotency_key is not None:
            subjects = [str(row["recipient_digest"]) for row in invitation_rows]
            # Kept a day for repeats: without the address of anyone unavailable (opted out,
            # stopped this member, forgotten, bounced, complained), as `scrub_answers` leaves
            # the answers kept before; the same for every cause, as the member may not tell
            # them apart (invariant 11).
            kept = {
                **answer,
                "invitations": [
                    {**item, "email": None} if digest in unavailable else item
                    for digest, item in zip(by_digest, results, strict=True)
                ],
            }
            store_answer(conn, scope, idempotency_key, payload_hash, kept, now, subjects)
        uow.commit()
    return Invited(answer)
