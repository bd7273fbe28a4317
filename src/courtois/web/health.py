"""`GET /healthz`: can this process do its work? The database answers and is migrated, and
the SMTP server (when one is configured) accepts a session as the worker opens it (TLS,
STARTTLS, AUTH). 200 when all hold, 503 naming what fails.

No key is needed (load balancers and orchestrators call it), and the answer names no
host, user or address, only what is wrong.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import replace
from typing import Literal

import aiosmtplib
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine, text

from courtois.config import Settings
from courtois.delivery.smtp import SmtpSettings, parse_smtp_url
from courtois.delivery.smtp_session import CONNECT, SessionRefused, open_session
from courtois.services.context import Context
from courtois.store.migrate import newest_revision, schema_status
from courtois.web.deps import Ctx

router = APIRouter(tags=["operations"])

SMTP_TIMEOUT_SECONDS = 3.0
# The database gets as long as SMTP: past it, a database that holds the connection open but
# answers nothing (a hung server, a network partition) is reported, not waited for.
DATABASE_TIMEOUT_SECONDS = 3.0

# The database check under way for each engine, as the answer it will give. Probes that
# come meanwhile wait for that same answer (each up to its own deadline) rather than start
# another: a check past its deadline may stay blocked on a socket that never answers, and
# each new one would block one more thread and one more pooled connection.
_UNDER_WAY: weakref.WeakKeyDictionary[Engine, Future[Check]] = weakref.WeakKeyDictionary()
_UNDER_WAY_LOCK = threading.Lock()


class Check(BaseModel):
    """One dependency's state."""

    ok: bool
    detail: str
    took_ms: int


class Health(BaseModel):
    """Every check, and whether they all hold."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, Check]


def check_database(ctx: Context) -> Check:
    """A round trip, and a schema this code can run against: its own revision, or a later
    release's that allows it (a rolling upgrade under way, said in the detail)."""
    started = time.perf_counter()
    try:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        status = schema_status(ctx.engine)
    except Exception as error:  # any failure to reach it is the answer, not a crash
        return Check(ok=False, detail=f"unreachable ({type(error).__name__})", took_ms=_ms(started))
    revision, expected = status.revision, newest_revision()
    if status.problem is None:
        newer = f", newer than this release's {expected}, which it allows" if status.newer else ""
        detail = f"reachable, schema at revision {revision}{newer}"
        return Check(ok=True, detail=detail, took_ms=_ms(started))
    if status.newer:
        detail = (
            f"schema at revision {revision}, newer than this release's {expected}, which it"
            " does not allow: run the newer release"
        )
    else:
        detail = f"schema at revision {revision}, expected {expected}: run `courtois migrate`"
    return Check(ok=False, detail=detail, took_ms=_ms(started))


async def check_database_within(ctx: Context, timeout: float = DATABASE_TIMEOUT_SECONDS) -> Check:
    """`check_database` with a deadline: a database that does not answer within `timeout`
    is unavailable. The check runs on a thread of its own, since a driver blocked on a
    frozen socket cannot be interrupted; at most one such thread per engine is ever
    waiting."""
    started = time.perf_counter()
    with _UNDER_WAY_LOCK:
        answer = _UNDER_WAY.get(ctx.engine)
        if answer is None or answer.done():
            answer = Future()
            _UNDER_WAY[ctx.engine] = answer
            threading.Thread(
                target=_check_into, args=(ctx, answer), name="courtois-health-database", daemon=True
            ).start()
    # Waited for, never cancelled: other probes may be waiting for the same answer.
    done, _pending = await asyncio.wait({asyncio.wrap_future(answer)}, timeout=timeout)
    if not done:
        detail = f"no answer within {timeout:g} s"
        return Check(ok=False, detail=detail, took_ms=_ms(started))
    return answer.result()


def _check_into(ctx: Context, answer: Future[Check]) -> None:
    """Run `check_database` and hand its result to whoever still waits."""
    started = time.perf_counter()
    try:
        result = check_database(ctx)
    except Exception as error:  # reported by the waiting probes, never lost
        result = Check(
            ok=False, detail=f"unreachable ({type(error).__name__})", took_ms=_ms(started)
        )
    answer.set_result(result)


async def check_smtp(settings: Settings, timeout: float = SMTP_TIMEOUT_SECONDS) -> Check:
    """The session opened as the worker opens it (TLS, greeting, STARTTLS and AUTH as the
    URL says), then QUIT, all within `timeout`: a relay that greets but that the worker
    cannot use (no STARTTLS where it is required, our credentials refused) is down. No
    server configured is fine (mail waits)."""
    started = time.perf_counter()
    if not settings.smtp_url:
        return Check(ok=True, detail="not configured: allowed mail waits", took_ms=0)
    try:
        smtp = parse_smtp_url(settings.smtp_url, ca_file=settings.smtp_ca_file)
    except ValueError:
        return Check(ok=False, detail="COURTOIS_SMTP_URL is not a valid URL", took_ms=0)
    try:
        # One deadline over every step and QUIT: each waiting up to `timeout` on its own
        # would let a slow server hold the answer for several times that.
        await asyncio.wait_for(_open_and_quit(replace(smtp, timeout=timeout)), timeout)
    except SessionRefused as refused:
        return Check(ok=False, detail=_refusal(refused), took_ms=_ms(started))
    except TimeoutError:
        detail = f"no answer within {timeout:g} s"
        return Check(ok=False, detail=detail, took_ms=_ms(started))
    return Check(ok=True, detail="greets", took_ms=_ms(started))


async def _open_and_quit(smtp: SmtpSettings) -> None:
    """Open the worker's session, then say goodbye; closed whatever happens."""
    client = await open_session(smtp)
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError) as error:
        raise SessionRefused("quit", error) from error
    finally:
        client.close()


def _refusal(refused: SessionRefused) -> str:
    """The failed step and the error's type (and the server's code when it gave one): its
    text may name the host, the port or the user, which this answer never does."""
    kind = type(refused.cause).__name__
    code = getattr(refused.cause, "code", None)
    said = f"{kind} {code}" if isinstance(code, int) else kind
    if refused.step == CONNECT:
        return f"unreachable ({said})"
    return f"{refused.step} failed ({said})"


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency fails"}},
    summary="Database and SMTP reachable",
)
async def healthz(ctx: Ctx) -> JSONResponse:
    """200 when every check holds, 503 otherwise; each check says what it found, within
    a few seconds whatever the database or the SMTP server does."""
    # Side by side, each with its own deadline: the answer comes within the longer one.
    database, smtp = await asyncio.gather(check_database_within(ctx), check_smtp(ctx.settings))
    checks = {"database": database, "smtp": smtp}
    healthy = all(check.ok for check in checks.values())
    body = Health(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )
