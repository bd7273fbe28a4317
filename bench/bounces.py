"""How well the bounce classifier tells a dead address from everything else.

Run with `.venv/bin/python bench/bounces.py [CORPUS] [--verbose]` against the real-world
corpus (default /work/shared/corpora/bounces, or $COURTOIS_BOUNCE_CORPUS): 557 bounces and
complaints from Sisimai's set-of-emails with Sisimai's own expectations, and 3 messages
that are no bounce at all. The yardsticks (DESIGN.md):

- hard bounces recognised as hard: at least 95%;
- everything else (full mailbox, expired, blocked, spam, policy...) left unsuppressed: at
  least 97%;
- not-bounces: nothing suppressed.

The same figures are given for flufl.bounce alone, where any permanent failure counts as
hard (the baseline the classifier has to beat).

Matching. expected.json gives, per file, one row per failed recipient
`[enhanced status, SMTP code, reason, hard]` but not the address. Reported recipients are
first made unique by address, compared case-insensitively; then each expected row is
paired with the reported recipient of the same status code when there is one, otherwise
with the next unpaired recipient in the order the message names them. An expected hard
row counts as recognised only if its recipient is reported hard; an expected non-hard row
counts as left unsuppressed unless its recipient is reported hard. A reported hard
recipient paired with no row at all is a false suppression and is listed (and counted
against the non-hard figure).
"""

from __future__ import annotations

import argparse
import email
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from figures import figure, write
from flufl.bounce import all_failures

from courtois.delivery.bounces import BouncedRecipient, classify

DEFAULT_CORPUS = Path(os.environ.get("COURTOIS_BOUNCE_CORPUS", "/work/shared/corpora/bounces"))
HARD_GOAL = 95.0
SOFT_GOAL = 97.0


@dataclass
class Score:
    """Counts for one classifier over the corpus."""

    hard_total: int = 0
    hard_found: int = 0
    soft_total: int = 0
    soft_kept: int = 0
    extra_hard: int = 0
    not_bounce_total: int = 0
    not_bounce_clean: int = 0
    not_bounce_kind: int = 0
    complaints_total: int = 0
    complaints_found: int = 0
    misses: list[str] = field(default_factory=list)

    def hard_pct(self) -> float:
        return 100.0 * self.hard_found / max(self.hard_total, 1)

    def soft_pct(self) -> float:
        return 100.0 * self.soft_kept / max(self.soft_total + self.extra_hard, 1)


def pair(rows: list[list[object]], reported: list[BouncedRecipient]) -> list[int | None]:
    """For each expected row, the index of its reported recipient (or None)."""
    free = list(range(len(reported)))
    paired: list[int | None] = [None] * len(rows)
    for i, row in enumerate(rows):
        for j in free:
            if row[0] and reported[j].status == row[0]:
                paired[i] = j
                free.remove(j)
                break
    for i in range(len(rows)):
        if paired[i] is None and free:
            paired[i] = free.pop(0)
    return paired


def score_file(
    score: Score, name: str, rows: list[list[object]], kind: str, found: list[BouncedRecipient]
) -> None:
    seen: set[str] = set()
    reported = []
    for recipient in found:
        if recipient.address.lower() not in seen:
            seen.add(recipient.address.lower())
            reported.append(recipient)
    paired = pair(rows, reported)
    problems = []
    for row, index in zip(rows, paired, strict=True):
        got = reported[index] if index is not None else None
        got_hard = bool(got and got.hard)
        if row[2] == "feedback":
            score.complaints_total += 1
            score.complaints_found += kind == "complaint"
        if row[3]:
            score.hard_total += 1
            score.hard_found += got_hard
            if not got_hard:
                problems.append(f"expected hard ({row[2]} {row[0]}), got {_show(got)}")
        else:
            score.soft_total += 1
            score.soft_kept += not got_hard
            if got_hard:
                problems.append(f"expected not hard ({row[2]} {row[0]}), got hard {got.status}")
    used = {i for i in paired if i is not None}
    for j, recipient in enumerate(reported):
        if j not in used and recipient.hard:
            score.extra_hard += 1
            problems.append(f"an unexpected recipient reported hard ({recipient.status})")
    if problems:
        score.misses.append(f"{name} [{kind}]: " + "; ".join(problems))


def _show(got: BouncedRecipient | None) -> str:
    return "no recipient" if got is None else f"not hard ({got.status or 'no status'})"


def baseline(raw: bytes) -> tuple[str, list[BouncedRecipient]]:
    """flufl.bounce alone: every permanent failure is taken as a dead address."""
    try:
        temporary, permanent = all_failures(email.message_from_bytes(raw))
    except Exception:
        return "not_a_bounce", []
    found = [BouncedRecipient(a.decode("ascii", "replace"), "", True) for a in sorted(permanent)]
    found += [BouncedRecipient(a.decode("ascii", "replace"), "", False) for a in sorted(temporary)]
    kind = "hard_bounce" if permanent else "soft_bounce" if temporary else "not_a_bounce"
    return kind, found


def run(corpus: Path) -> tuple[Score, Score, float]:
    expected: dict[str, list[list[object]]] = json.loads((corpus / "expected.json").read_text())
    ours, flufl = Score(), Score()
    elapsed = 0.0
    for name, rows in sorted(expected.items()):
        raw = (corpus / "bounces" / name).read_bytes()
        tick = time.perf_counter()
        report = classify(raw, name)
        elapsed += time.perf_counter() - tick
        score_file(ours, name, rows, report.kind, list(report.recipients))
        kind, found = baseline(raw)
        score_file(flufl, name, rows, kind, found)
    for path in sorted((corpus / "not-bounces").glob("*.eml")):
        raw = path.read_bytes()
        report = classify(raw, path.name)
        kind, found = baseline(raw)
        for score, got_kind, got in ((ours, report.kind, report.recipients), (flufl, kind, found)):
            score.not_bounce_total += 1
            score.not_bounce_clean += not any(r.hard for r in got)
            score.not_bounce_kind += got_kind == "not_a_bounce"
            if got_kind != "not_a_bounce" and score is ours:
                hard = any(r.hard for r in got)
                score.misses.append(
                    f"not-bounces/{path.name} [{got_kind}]: "
                    + ("suppressed a recipient" if hard else "nothing suppressed")
                )
    return ours, flufl, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--verbose", "-v", action="store_true", help="list misclassified files")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not (args.corpus / "expected.json").is_file():
        sys.stderr.write(f"bench: no corpus at {args.corpus}\n")
        return 2
    ours, flufl, elapsed = run(args.corpus)
    files = ours.not_bounce_total + len(json.loads((args.corpus / "expected.json").read_text()))
    print(f"corpus: {args.corpus} ({files} messages, classified in {elapsed:.2f} s)")
    for label, score in (("courtois classifier", ours), ("flufl.bounce alone", flufl)):
        print(f"\n{label}")
        print(
            f"  hard bounces recognised as hard: {score.hard_found}/{score.hard_total}"
            f" = {score.hard_pct():.1f}%  (goal >= {HARD_GOAL:.0f}%)"
        )
        denominator = score.soft_total + score.extra_hard
        extra = f", incl. {score.extra_hard} unexpected hard" if score.extra_hard else ""
        print(
            f"  non-hard left unsuppressed:      {score.soft_kept}/{denominator}"
            f" = {score.soft_pct():.1f}%  (goal >= {SOFT_GOAL:.0f}%{extra})"
        )
        print(
            f"  not-bounces: nothing suppressed {score.not_bounce_clean}/"
            f"{score.not_bounce_total}, kind not_a_bounce {score.not_bounce_kind}/"
            f"{score.not_bounce_total}"
        )
        print(
            f"  complaint rows reported as complaint: {score.complaints_found}/"
            f"{score.complaints_total}"
        )
    if args.verbose:
        print(f"\nmisclassified ({len(ours.misses)}):")
        for line in ours.misses:
            print(f"  {line}")
    met = ours.hard_pct() >= HARD_GOAL and ours.soft_pct() >= SOFT_GOAL
    met = met and ours.not_bounce_clean == ours.not_bounce_total
    print(f"\ngoals {'met' if met else 'NOT met'}")
    rows = [
        figure(
            "bounces: hard bounces recognised as hard",
            ours.hard_pct(),
            "%",
            baseline="flufl.bounce alone",
            baseline_value=flufl.hard_pct(),
            goal=f">= {HARD_GOAL:.0f}%",
            met=ours.hard_pct() >= HARD_GOAL,
            note=f"{ours.hard_found}/{ours.hard_total}",
        ),
        figure(
            "bounces: non-hard left unsuppressed",
            ours.soft_pct(),
            "%",
            baseline="flufl.bounce alone",
            baseline_value=flufl.soft_pct(),
            goal=f">= {SOFT_GOAL:.0f}%",
            met=ours.soft_pct() >= SOFT_GOAL,
            note=f"{ours.soft_kept}/{ours.soft_total + ours.extra_hard}",
        ),
        figure(
            "bounces: not-bounces with nothing suppressed",
            ours.not_bounce_clean,
            "messages",
            baseline="all of them",
            baseline_value=ours.not_bounce_total,
            goal="all",
            met=ours.not_bounce_clean == ours.not_bounce_total,
        ),
    ]
    write(args.json, "bounces", rows, messages=files, seconds=elapsed)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
