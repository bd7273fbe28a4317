"""Coverage-guided fuzzing of the bounce and complaint classifier (atheris, libFuzzer).

Run: `python fuzz/bounces.py -max_total_time=60 CORPUS_DIR`; an empty CORPUS_DIR is seeded
with tests/data/bounces and tests/fuzz/regressions. `classify` must return a report of a
known kind for any bytes, without relying on its last-resort guard, name only addresses,
and call a message a hard bounce exactly when it names a hard recipient; pass `-timeout=N`
to count an input that takes N seconds as a crash too.
"""

from __future__ import annotations

import sys
from email import message_from_bytes

import atheris
from seeds import seed

with atheris.instrument_imports():
    from courtois.delivery.bounces import _classify

KINDS = {"hard_bounce", "soft_bounce", "complaint", "auto_reply", "not_a_bounce"}


def test_one_input(data: bytes) -> None:
    try:
        message = message_from_bytes(data)
    except RecursionError:
        return  # the standard library's parser, before the classifier sees anything
    report = _classify(message, "fuzz")
    if report.kind not in KINDS:
        raise ValueError(f"unknown kind {report.kind!r}")
    if not all("@" in r.address for r in report.recipients):
        raise ValueError("a recipient that is no address")
    if (report.kind == "hard_bounce") != bool(report.hard_recipients):
        raise ValueError("a hard bounce without a hard recipient, or the other way round")


def main() -> None:
    seed(sys.argv, "tests/data/bounces", "tests/fuzz/regressions")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
