"""The worker's pass: re-decide every due message right before it leaves (invariant 7),
merge what meets at one inbox into a digest (invariant 6), send at most once (invariant 8).

A pass decides and claims a batch (each claim committed before anything leaves), hands the
batch to the transport, then records each outcome.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from datetime import datetime, timedelta

from courtois.delivery.transport import Outgoing, Pooled, Transport
from courtois.services import leases
from courtois.services.context import Context
from courtois.services.hand_off import SLICE_SECONDS, last_look
from courtois.services.housekeeping import expire_invitations, expire_leases, purge_expired_data
from courtois.services.outgoing import PreviewMismatch, Uncomposable, outgoing_batch
from courtois.services.send_decisions import decide_and_claim, recarry
from courtois.services.send_outcomes import record_outcomes
from courtois.services.unsent_claims import hold_claims, put_back
from courtois.services.webhook_delivery import WebhookReport, deliver_due_webhooks
from courtois.services.worker_due import (
    WEBHOOK_PROBLEM,
    Claim,
    Due,
    PassReport,
    Shard,
    due_messages,
)
from courtois.store.wal import truncate_wal

__all__ = ["PassReport", "Shard", "run_pass"]

log = logging.getLogger("courtois.worker")


def run_pass(
    ctx: Context,
    now: datetime,
    transport: Transport | None,
    rng: random.Random | None = None,
    shard: Shard | None = None,
) -> PassReport:
    """One pass of all work due at `now` (for one shard's recipients, when given: the first
    shard also does the housekeeping). Without a transport, messages the policy allows stay
    scheduled (counted as `waiting`): nothing is marked sent that did not leave."""
    chance = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
    report = PassReport()
    started = time.monotonic()
    leads = shard is None or shard.leads
    if leads:
        report.unknown = expire_leases(ctx, now)
        report.expired = expire_invitations(ctx, now)
        report.purged = purge_expired_data(ctx, now)
    try:
        _send_due(ctx, now, transport, report, chance, shard)
    finally:
        if isinstance(transport, Pooled):
            transport.release()
    if leads:
        # As of `now` moved on by the pass so far, as the email leases are: after a long
        # send, leases from the pass's start would already have run out.
        posted = deliver_due_webhooks(ctx, now + timedelta(seconds=time.monotonic() - started))
        _count_webhooks(report, posted)
        # Whatever a checkpoint after an erasure could not truncate (a reader held the log)
        # goes now: no page that held an address outlives the next pass (SQLite only).
        truncate_wal(ctx.engine)
    return report


def _count_webhooks(report: PassReport, posted: WebhookReport) -> None:
    """The webhook attempts into the pass's report, each failure's kind among its problems,
    so `worker --once` and the worker's log say what became of them."""
    report.webhooks["delivered"] += posted.delivered
    report.webhooks["failed"] += posted.retried + posted.failed
    report.webhooks["given_up"] += posted.failed
    for problem, count in posted.problems.items():
        report.note(f"{WEBHOOK_PROBLEM}{problem}", count)


def _send_due(
    ctx: Context,
    now: datetime,
    transport: Transport | None,
    report: PassReport,
    chance: random.Random,
    shard: Shard | None,
) -> None:
    """Batch after batch: decide and claim, compose, send, record. Every batch is decided
    as of the pass's `now`, but leased from `now` moved on by the time the pass has run:
    a pass that outlasts a lease (a backlog behind a slow relay) would otherwise claim its
    later batches with leases already run out, which another worker takes for abandoned."""
    done: set[str] = set()
    started = time.monotonic()
    while True:
        due = due_messages(ctx, now, exclude=done, shard=shard)
        if not due:
            break
        by_recipient: dict[str, list[Due]] = defaultdict(list)
        for message in due:
            by_recipient[message.digest].append(message)
            # Seen once per pass: what another worker holds now is theirs to send, and
            # anything held by a request is taken by the next pass.
            done.add(message.id)
        leased_at = now + timedelta(seconds=time.monotonic() - started)
        claims, _ = decide_and_claim(
            ctx, list(by_recipient.values()), now, transport is not None, report, leased_at
        )
        # A claimed message is `sending` from now on (or, after a refusal, scheduled for
        # later than `now`): the query no longer finds it, so it need not be excluded, and
        # the next query need not read past it. Only what stayed scheduled is kept out.
        done.difference_update(m.id for claim in claims for m in claim.messages)
        if transport is None or not claims:
            continue
        # Every claim is committed: a crash from here on leaves its messages `sending`,
        # then `unknown` when the lease runs out, never sent twice.
        try:
            ready, held, unwritten, batch = _compose_claims(ctx, claims, now)
        except Exception as error:
            put_back(ctx, claims, now, f"put back: not composed ({type(error).__name__})")
            raise
        hold_claims(ctx, held, now, "held: differs from the preview the member consented to")
        report.failed += len(held)
        report.note("held: differs from the preview", len(held))
        hold_claims(ctx, unwritten, now, "failed: the email could not be written")
        report.failed += len(unwritten)
        report.note("failed: the email could not be written", len(unwritten))
        # A slow server may keep the batch out longer than a lease: renewed meanwhile, so
        # no other worker takes a live worker's messages for abandoned.
        with leases.renewed(ctx, [i for claim in ready for i in claim.ids], leased_at):
            _hand_over(ctx, transport, ready, batch, now, report, chance)


def _hand_over(
    ctx: Context,
    transport: Transport,
    ready: list[Claim],
    batch: list[Outgoing],
    now: datetime,
    report: PassReport,
    chance: random.Random,
) -> None:
    """Slice after slice, each about `SLICE_SECONDS` long at the relay's own pace: hand
    over what the transport can begin in that time, record it, look again at the rest
    (`hand_off.last_look`; the claim was the first look), and go on with what may still
    leave. A fast relay takes a whole batch in one slice, with no look beyond the claim;
    behind a slow one a recipient's "stop" is heard within a slice. What was never handed
    over when something fails goes back to the queue, as `put_back` says: it did not leave."""
    rest = list(zip(ready, batch, strict=True))
    looked = True
    try:
        while rest:
            if not looked:
                going = last_look(ctx, [claim for claim, _ in rest], now, report)
                rest = [pair for pair, go in zip(rest, going, strict=True) if go]
                if not rest:
                    return
            looked = False
            handing = rest
            rest = []  # while the transport has them, none is known not to have left
            deliveries = transport.send_batch(
                [outgoing for _, outgoing in handing], until=time.monotonic() + SLICE_SECONDS
            )
            rest = [pair for pair, d in zip(handing, deliveries, strict=True) if not d.begun]
            begun = [(c, d) for (c, _), d in zip(handing, deliveries, strict=True) if d.begun]
            record_outcomes(ctx, begun, now, report, chance)
    except Exception as error:
        if rest:
            try:
                put_back(ctx, [claim for claim, _ in rest], now, f"put back: {_NOT_HANDED}")
            except Exception:
                # then runs out and an admin is shown these emails, as for any crash.
                log.warning("%d claimed emails never handed over stay claimed", len(rest))
            else:
                log.warning("%d claimed emails put back (%s)", len(rest), type(error).__name__)
        raise


_NOT_HANDED = "never handed to SMTP: the pass failed first"


def _compose_claims(
    ctx: Context, claims: list[Claim], now: datetime
) -> tuple[list[Claim], list[Claim], list[Claim], list[Outgoing]]:
    """Each claim's email: ready to go, held (its words differ from the preview), or
    unwritten (its own address cannot be written). A digest whose sections differ is
    regrouped without them and composed again."""
    ready: list[Claim] = []
    held: list[Claim] = []
    unwritten: list[Claim] = []
    batch: list[Outgoing] = []
    composing = claims
    while composing:
        regrouped = []
        for claim, composed in zip(composing, outgoing_batch(ctx, composing, now), strict=True):
            if isinstance(composed, Uncomposable):
                unwritten.append(claim)
            elif isinstance(composed, PreviewMismatch):
                # Only the invitations whose words changed are held: in a digest, the
                # other members' sections still leave, as one email without them.
                keep = tuple(m for m in claim.messages if m.id not in composed.differing)
                lost = tuple(m for m in claim.messages if m.id in composed.differing)
                held.append(Claim(lost[0], lost))
                if keep:
                    regrouped.append(Claim(keep[0], keep))
            else:
                batch.append(composed)
                ready.append(claim)
        recarry(ctx, regrouped, now)
        composing = regrouped
    return ready, held, unwritten, batch
