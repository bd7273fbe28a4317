"""How fast the policy decides: the pure chain in memory, and `invite` end to end.

Run with `.venv/bin/python bench/policy.py` (about half a minute), or `--quick` for a
smoke run (200 recipients, 0.3 s of pure evaluation) that tests use to prove it works.
`--profile` adds a cProfile of one stored `invite` call per engine.

PostgreSQL is reached through COURTOIS_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test); a fresh database is created there for
the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from databases import postgres_database, postgres_server
from figures import Row, cpu_model, figure, write
from sqlalchemy import Engine, func, select

from courtois.config import Settings
from courtois.domain.consent import Consent
from courtois.domain.messages import MessageKind
from courtois.policy.chain import CHAIN, evaluate
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import (
    Candidate,
    Facts,
    InvitationFacts,
    RecipientFacts,
    SenderFacts,
    Stage,
)
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import decisions, ledger

PURE_TARGET = 50_000
STORED_TARGET = 5_000
SECRET = "bench-secret-key-0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FIGURES: list[Row] = []  # what --json writes


# --- 1. the pure chain ----------------------------------------------------------------------


def _digest(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _times(
    rng: random.Random, count: int, before: timedelta, after: timedelta
) -> tuple[datetime, ...]:
    """`count` sorted instants between NOW - before and NOW + after."""
    span = (before + after).total_seconds()
    return tuple(
        sorted(NOW - before + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    )


def build_pairs(count: int, seed: int = 20260302) -> list[tuple[Candidate, Facts]]:
    """A varied, realistic mix of candidates and facts, as the services would gather them.

    Senders range from new to heavy (some at their caps, some with low acceptance or a
    complaint surge); recipients from untouched to opted out, suppressed, already members or
    with quota slots taken; a share of reminders, digests, send-stage checks, revoked or
    foreign consents, consents still in their undo window, and a strict-eu deployment.
    """
    rng = random.Random(seed)
    balanced = PolicyConfig()
    strict = PolicyConfig(profile="strict-eu")
    tight = PolicyConfig(sender_daily_cap=20, sender_weekly_cap=60, recipient_long_max=1)

    members = [f"member-{i:03d}" for i in range(60)]
    senders: dict[str, SenderFacts] = {}
    for member in members:
        sent = rng.choice([0, 0, 5, 30, 200, 900, 2500])
        accepted = int(sent * rng.choice([0.0, 0.05, 0.15, 0.3, 0.5]))
        declined = int((sent - accepted) * rng.choice([0.0, 0.2, 0.6]))
        complaints = rng.choices([0, 1, 2, 5], weights=[85, 8, 4, 3])[0]
        # Messages created in the last 7 days: most members invite a few people, a few
        # invite up to their caps (100/day, 500/week).
        recent = rng.choices(
            [0, 3, 12, 30, 60, 99, 100, 160, 300, 499, 500],
            weights=[20, 20, 15, 12, 10, 6, 5, 4, 3, 3, 2],
        )[0]
        senders[member] = SenderFacts(
            recent_messages=_times(rng, recent, timedelta(days=7), timedelta(0)),
            sent_90d=sent,
            accepted_90d=accepted,
            declined_90d=declined,
            complaints_90d=complaints,
        )

    pairs: list[tuple[Candidate, Facts]] = []
    while len(pairs) < count:
        member = rng.choice(members)
        digests = [_digest(rng) for _ in range(rng.randint(5, 40))]
        given_at = NOW - rng.choice(
            [timedelta(minutes=2), timedelta(hours=3), timedelta(days=16), timedelta(days=40)]
        )
        consent = Consent(
            id=str(uuid.UUID(int=rng.getrandbits(128))),
            member_id=member,
            recipients=frozenset(digests),
            kind=MessageKind.INVITATION,
            preview_hash=f"{rng.getrandbits(256):064x}",
            reminders=rng.choice([0, 1]),
            text_shown="I ask courtois to send this invitation, in my name.",
            ip="192.0.2.1",
            user_agent="bench",
            given_at=given_at,
            revoked_at=given_at + timedelta(minutes=5) if rng.random() < 0.03 else None,
        )
        policy = rng.choices([balanced, strict, tight], weights=[90, 4, 6])[0]
        for digest in digests:
            if len(pairs) >= count:
                break
            kind = rng.choices(list(MessageKind), weights=[78, 15, 7])[0]
            stage = (
                Stage.QUEUE
                if kind is MessageKind.INVITATION and rng.random() < 0.6
                else (Stage.SEND)
            )
            candidate_member = member if rng.random() > 0.01 else rng.choice(members)
            candidate = Candidate(
                candidate_member, digest, kind, stage, str(uuid.UUID(int=rng.getrandbits(128)))
            )
            slots = rng.choices([0, 1, 2, 3], weights=[60, 25, 10, 5])[0]
            recipient = RecipientFacts(
                unsubscribed_all=rng.random() < 0.04,
                blocked_members=frozenset({member}) if rng.random() < 0.02 else frozenset(),
                suppressed=rng.choices([None, "hard-bounce", "complaint"], weights=[95, 4, 1])[0],
                is_member=rng.random() < 0.05,
                slots=_times(rng, slots, timedelta(days=100), timedelta(days=20)),
                reminder_requested_for=(
                    NOW + timedelta(days=rng.choice([-2, 5]))
                    if kind is MessageKind.REMINDER and rng.random() < 0.3
                    else None
                ),
            )
            last_sent = (
                NOW - timedelta(days=rng.choice([3, 15, 30]))
                if kind is not MessageKind.INVITATION or rng.random() < 0.3
                else None
            )
            invitation = InvitationFacts(
                consent=consent if rng.random() > 0.02 else None,
                other_invitations_by_sender=rng.choices([0, 1], weights=[93, 7])[0],
                reminders_sent=rng.choices([0, 1], weights=[85, 15])[0],
                last_sent_at=last_sent,
            )
            facts = Facts(
                policy=policy,
                recipient=recipient,
                sender=senders[member],
                invitation=invitation,
            )
            pairs.append((candidate, facts))
    return pairs


@contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU for the duration, where the OS allows it."""
    getter = getattr(os, "sched_getaffinity", None)
    setter = getattr(os, "sched_setaffinity", None)
    if getter is None or setter is None:
        yield "not pinned"
        return
    before = getter(0)
    cpu = min(before)
    try:
        setter(0, {cpu})
    except OSError:
        yield "not pinned"
        return
    try:
        yield f"pinned to cpu {cpu}"
    finally:
        setter(0, before)


def time_chain(pairs: list[tuple[Candidate, Facts]], seconds: float) -> tuple[int, float]:
    """Evaluate the whole set over and over for at least `seconds`; (evaluations, elapsed)."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for candidate, facts in pairs:
            evaluate(candidate, facts, NOW)
        done += len(pairs)
        now = time.perf_counter()
        if now >= deadline:
            return done, now - start


def time_rules(
    pairs: list[tuple[Candidate, Facts]], seconds: float
) -> tuple[dict[str, float], float]:
    """Mean seconds per call of each rule's check alone, and of the whole chain, timed in
    interleaved passes over the set for about `seconds`, so that a busy neighbour on the
    machine slows all of them alike rather than skewing the shares."""
    spent = dict.fromkeys((rule.code for rule in CHAIN), 0.0)
    whole = 0.0
    passes = 0
    deadline = time.perf_counter() + seconds
    while True:
        for rule in CHAIN:
            check = rule.check
            start = time.perf_counter()
            for candidate, facts in pairs:
                check(candidate, facts, NOW)
            spent[rule.code] += time.perf_counter() - start
        start = time.perf_counter()
        for candidate, facts in pairs:
            evaluate(candidate, facts, NOW)
        whole += time.perf_counter() - start
        passes += 1
        if time.perf_counter() >= deadline:
            break
    calls = passes * len(pairs)
    return {code: total / calls for code, total in spent.items()}, whole / calls


def bench_pure(count: int, seconds: float) -> None:
    pairs = build_pairs(count)
    mix = Counter(evaluate(c, f, NOW).outcome.value for c, f in pairs)
    kinds = Counter(c.kind.value for c, _ in pairs)
    print(
        f"pure set: {len(pairs)} distinct (candidate, facts) pairs; "
        f"kinds {dict(sorted(kinds.items()))}; outcomes {dict(sorted(mix.items()))}"
    )
    with one_core() as pinned:
        time_chain(pairs, min(0.2, seconds / 3))  # warm up
        done, elapsed = time_chain(pairs, seconds)
        rate = done / elapsed
        each, chain_each = time_rules(pairs, seconds / 3)
    verdict = "met" if rate >= PURE_TARGET else "BELOW target"
    FIGURES.append(
        figure(
            "pure chain",
            rate,
            "evaluations/s",
            baseline="target",
            baseline_value=PURE_TARGET,
            goal=f">= {PURE_TARGET:,}/s",
            met=rate >= PURE_TARGET,
        )
    )
    print(
        f"pure chain: {rate:,.0f} evaluations/s ({done:,} in {elapsed:.2f} s, {pinned}; "
        f"{1e6 / rate:.1f} us each) -- target >= {PURE_TARGET:,}/s: {verdict}"
    )
    print(
        "per-rule share of an evaluation (each rule alone, interleaved with whole-chain passes "
        f"at {chain_each * 1e6:.1f} us each):"
    )
    for code, seconds_each in sorted(each.items(), key=lambda item: -item[1]):
        print(f"  {code:<22} {seconds_each * 1e6:6.2f} us  {seconds_each / chain_each:6.1%}")
    rest = chain_each - sum(each.values())
    print(f"  {'(chain loop, Decision)':<22} {rest * 1e6:6.2f} us  {rest / chain_each:6.1%}")
    buckets: dict[str, list[tuple[Candidate, Facts]]] = {}
    for pair in pairs:
        size = len(pair[1].sender.recent_messages)
        label = "0-30" if size <= 30 else "31-99" if size < 100 else "100-500"
        buckets.setdefault(label, []).append(pair)
    parts = []
    with one_core():
        for label in ("0-30", "31-99", "100-500"):
            group = buckets.get(label)
            if group:
                done, elapsed = time_chain(group, seconds / 10)
                parts.append(f"{label}: {done / elapsed:,.0f}/s ({len(group)} pairs)")
    print(f"pure chain by sender's messages in the last 7 days: {'; '.join(parts)}")


# --- 2. stored invite decisions ----------------------------------------------------------------


@dataclass
class RunResult:
    seconds: float
    recipients: int
    outcomes: Counter[str]
    deniers: Counter[str]
    deferrers: Counter[str]
    stored_decisions: int
    stored_verdicts: int
    ledger_entries: int

    @property
    def rate(self) -> float:
        return self.recipients / self.seconds


def one_invite(
    ctx: Context, run: int, recipients: int, profiler: cProfile.Profile | None = None
) -> RunResult:
    """A fresh member invites `recipients` fresh addresses with one consent; only the
    `invite` call is timed."""
    member_id = f"bench-{run}-{uuid.uuid4().hex[:8]}"
    now = NOW + timedelta(minutes=run)
    register_member(ctx, member_id, f"{member_id}@example.com", f"Bench {run}", "en", now)
    note = "Join me, it is where our club organises everything now."
    preview = preview_invitations(ctx, member_id, recipients, note, "en", 0)
    tag = uuid.uuid4().hex[:6]
    emails = tuple(f"friend.{run}.{i}.{tag}@example.org" for i in range(recipients))
    request = InviteRequest(
        member_id=member_id,
        emails=emails,
        note=note,
        locale="en",
        reminders=0,
        preview_hash=preview.preview_hash,
        consent=ConsentInput(text_shown=preview.consent_text, ip="192.0.2.7", user_agent="bench"),
    )
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    answer = invite(ctx, request, now)
    seconds = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()

    outcomes: Counter[str] = Counter()
    deniers: Counter[str] = Counter()
    deferrers: Counter[str] = Counter()
    for result in answer["invitations"]:
        decision = result["decision"]
        outcomes[decision["outcome"]] += 1
        for verdict in decision["verdicts"]:
            if verdict["outcome"] == "deny":
                deniers[verdict["rule"]] += 1
            elif verdict["outcome"] == "defer":
                deferrers[verdict["rule"]] += 1
    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(decisions.c.verdicts).where(decisions.c.member_id == member_id)
        ).all()
        entries = connection.execute(select(func.count()).select_from(ledger)).scalar_one()
    verdicts = sum(len(r.verdicts) for r in rows)
    if len(rows) != recipients or verdicts != recipients * len(CHAIN):
        raise SystemExit(
            f"expected {recipients} stored decisions with {len(CHAIN)} verdicts each, "
            f"found {len(rows)} with {verdicts} verdicts"
        )
    return RunResult(
        seconds, recipients, outcomes, deniers, deferrers, len(rows), verdicts, int(entries)
    )


def report_engine(name: str, results: list[RunResult]) -> None:
    rates = [r.rate for r in results]
    best, median = max(rates), statistics.median(rates)
    times = ", ".join(f"{r.seconds:.2f} s" for r in results)
    verdict = "met" if best >= STORED_TARGET else "BELOW target"
    FIGURES.append(
        figure(
            f"stored invite [{name}], best of {len(results)}",
            best,
            "decisions/s",
            baseline="target",
            baseline_value=STORED_TARGET,
            goal=f">= {STORED_TARGET:,}/s",
            met=best >= STORED_TARGET,
            note=f"median {median:,.0f}/s, {results[0].recipients:,} recipients per invite",
        )
    )
    print(
        f"stored invite [{name}]: best {best:,.0f} decisions/s, median {median:,.0f} "
        f"decisions/s over {len(results)} runs of {results[0].recipients:,} recipients "
        f"({times}) -- target >= {STORED_TARGET:,}/s: {verdict}"
    )
    last = results[-1]
    outcomes = ", ".join(f"{k} {last.outcomes[k]:,}" for k in ("allow", "defer", "deny"))
    deniers = ", ".join(f"{k} {v:,}" for k, v in last.deniers.most_common()) or "none"
    deferrers = ", ".join(f"{k} {v:,}" for k, v in last.deferrers.most_common()) or "none"
    print(
        f"  outcomes [{name}]: {outcomes}; deny verdicts by rule: {deniers}; "
        f"defer verdicts by rule: {deferrers}"
    )
    print(
        f"  stored [{name}]: {last.stored_decisions:,} decision rows with "
        f"{last.stored_verdicts:,} verdicts; ledger now {last.ledger_entries:,} entries "
        "(sender-quota caps a member at 100 invitations a day, so most are stored denials)"
    )


def run_engine(
    name: str, ctx: Context, runs: int, recipients: int, profile: bool
) -> list[RunResult]:
    results = [one_invite(ctx, run, recipients) for run in range(runs)]
    report_engine(name, results)
    if profile:
        profiler = cProfile.Profile()
        one_invite(ctx, runs, recipients, profiler)
        print_profile(name, profiler)
    return results


def print_profile(name: str, profiler: cProfile.Profile, limit: int = 30) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(limit)
        print(f"--- profile [{name}] by {order} ---")
        print(out.getvalue().split("\n", 4)[-1].rstrip())


def sqlite_context(folder: Path) -> Context:
    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
    if str(mode).lower() != "wal":
        raise SystemExit(f"SQLite is in {mode} mode, not WAL")
    return Context(engine=engine, settings=Settings(secret_key=SECRET, database_url=url))


def bench_stored(runs: int, recipients: int, profile: bool) -> None:
    """`runs` invites of `recipients` on SQLite, then on PostgreSQL."""
    with tempfile.TemporaryDirectory(prefix="courtois-bench-") as folder:
        ctx = sqlite_context(Path(folder))
        try:
            run_engine("sqlite", ctx, runs, recipients, profile)
        finally:
            ctx.engine.dispose()
    with postgres_database() as url:
        engine: Engine = make_engine(url)
        try:
            migrate(engine)
            ctx = Context(engine=engine, settings=Settings(secret_key=SECRET, database_url=url))
            run_engine("postgresql", ctx, runs, recipients, profile)
        finally:
            engine.dispose()


# --- 3. the machine ----------------------------------------------------------------------------


def print_machine(postgres_version: str) -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(
        f"machine: cpu {cpu_model()}; cores {os.cpu_count()} (usable {usable}); "
        f"python {platform.python_version()} ({platform.python_implementation()}); "
        f"sqlite {sqlite3.sqlite_version}; postgresql {postgres_version}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run for tests")
    parser.add_argument("--profile", action="store_true", help="cProfile one invite per engine")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    pairs, seconds = (200, 0.3) if args.quick else (2_000, 3.0)
    runs, recipients = (3, 200) if args.quick else (3, 10_000)

    print(f"courtois policy bench{' (--quick)' if args.quick else ''}")
    version, _ = postgres_server()
    print_machine(version)
    bench_pure(pairs, seconds)
    bench_stored(runs, recipients, args.profile)
    write(args.json, "policy", FIGURES, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
