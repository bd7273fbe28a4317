"""A serving worker (`courtois worker` without --once) freezes what it made while starting
out of the garbage collector's passes before its first pass (`long_lived`), then goes on
until SIGTERM."""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from courtois.cli import _serve_worker
from courtois.services.context import Context


@pytest.fixture
def handlers_kept() -> Iterator[None]:
    """The test process gets its own signal handlers back, and is not left frozen."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    gc.unfreeze()
    yield
    gc.unfreeze()
    for sig, handler in kept.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("handlers_kept")
def test_a_serving_worker_freezes_its_start_up_then_stops_on_sigterm(ctx: Context) -> None:
    assert gc.get_freeze_count() == 0
    stop = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    stop.start()
    try:
        _serve_worker(ctx, interval=0.05, as_json=True)
    finally:
        stop.cancel()
    assert gc.get_freeze_count() > 10_000
