"""The demo's worker: `run_pass` every few seconds on a background thread, as
`courtois worker` does in its own process, plus one pass on demand past the undo window.

Passes never overlap: the loop and the button share one lock, so the outbox fills in the
order the worker decided.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from courtois.delivery.transport import Transport
from courtois.domain.errors import DomainError
from courtois.services.context import Context
from courtois.services.worker import PassReport, run_pass

_COUNTED = ("digests", "deferred", "cancelled", "failed", "retried", "waiting", "expired")


def summary(report: PassReport) -> str:
    """The counts of a pass in words: sent always, the others when not zero."""
    parts = [f"sent {report.sent}"]
    parts += [f"{name} {getattr(report, name)}" for name in _COUNTED if getattr(report, name)]
    if report.unknown:
        parts.append(f"unknown {report.unknown}")
    return ", ".join(parts)


def did_something(report: PassReport) -> bool:
    """Whether a pass is worth a line on the console."""
    return bool(report.sent or report.failed or report.unknown or report.retried)


class WorkerLoop:
    """Passes at the wall clock's now, every `interval` seconds, until stopped."""

    def __init__(
        self,
        ctx: Context,
        transport: Transport | None,
        interval: float,
        say: Callable[[str], None],
    ) -> None:
        self.ctx = ctx
        self.transport = transport
        self.interval = interval
        self.say = say
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-worker", daemon=True)

    def start(self) -> None:
        """Begin passing in the background."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to end; a pass in progress finishes first."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_at(self, now: datetime) -> PassReport:
        """One pass as of `now`, never alongside another."""
        with self._lock:
            return run_pass(self.ctx, now, self.transport)

    def skip_undo_window(self) -> str:
        """One pass as of the end of an undo window begun now: what members consented to
        until now is sent, stamped with that instant, instead of in ten minutes."""
        now = datetime.now(UTC) + self.ctx.settings.policy.undo_window
        report = self.run_at(now)
        text = summary(report)
        self.say(f"worker pass as of {now:%H:%M:%S} UTC (undo window skipped): {text}")
        return f"as of {now:%H:%M:%S} UTC, the end of an undo window begun now: {text}"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.run_at(datetime.now(UTC))
            except DomainError as error:
                _complain(error.message)
            except Exception as error:  # the demo keeps serving; the next pass tries again
                # The first line only: database errors append the statement's parameters.
                first = (str(error).splitlines() or [""])[0]
                _complain(f"{type(error).__name__}: {first[:200]}")
            else:
                if did_something(report):
                    self.say(f"worker pass: {summary(report)}")
            self._stop.wait(self.interval)


def _complain(line: str) -> None:
    sys.stderr.write(f"courtois demo: worker pass failed: {line}\n")
