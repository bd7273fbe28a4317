"""An httpx transport whose every connect, send and receive is cut to one `Deadline`.

httpx bounds each network wait by its timeout, and a response's headers and body are read in
many waits: a server sending one byte a few seconds apart never trips it. httpx takes no
network backend of its own, so this transport is httpx's, its connection pool rebuilt with a
backend that gives each wait what is left of the deadline. A wait cut short raises httpx's
own timeout exceptions; the caller asks the deadline which limit was reached.
"""

from __future__ import annotations

import httpcore
import httpx

from courtois.http_waits import CutBackend
from courtois.importers.deadline import Deadline, DeadlinePassed


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport (HTTP/1.1, certificates checked as httpx checks them), bounded."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()

        def cut(timeout: float | None, kind: type[Exception]) -> float:
            try:
                return deadline.cut(timeout)
            except DeadlinePassed as passed:
                raise kind(str(passed)) from passed

        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=CutBackend(httpcore.SyncBackend(), cut),
        )
