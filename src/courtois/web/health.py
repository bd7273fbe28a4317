"""`GET /healthz`: can this process do its work? The database answers and is migrated, and
the SMTP server (when one is configured) greets. 200 when all hold, 503 naming what fails.

No key is needed (load balancers and orchestrators call it), and the answer names no
host, user or address, only what is wrong.
"""

from __future__ import annotations

import time
from typing import Literal

import aiosmtplib
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from courtois.config import Settings
from courtois.delivery.smtp import parse_smtp_url
from courtois.services.context import Context
from courtois.store.migrate import current_revision, newest_revision
from courtois.web.deps import Ctx

router = APIRouter(tags=["operations"])

SMTP_TIMEOUT_SECONDS = 3.0


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
    """A round trip, and the schema at the revision this code expects."""
    started = time.perf_counter()
    try:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(ctx.engine)
    except Exception as error:  # any failure to reach it is the answer, not a crash
        return Check(ok=False, detail=f"unreachable ({type(error).__name__})", took_ms=_ms(started))
    expected = newest_revision()
    if revision != expected:
        detail = f"schema at revision {revision}, expected {expected}: run `courtois migrate`"
        return Check(ok=False, detail=detail, took_ms=_ms(started))
    return Check(ok=True, detail=f"reachable, schema at revision {revision}", took_ms=_ms(started))


async def check_smtp(settings: Settings) -> Check:
    """The SMTP server's greeting, then QUIT; no server configured is fine (mail waits)."""
    started = time.perf_counter()
    if not settings.smtp_url:
        return Check(ok=True, detail="not configured: allowed mail waits", took_ms=0)
    try:
        smtp = parse_smtp_url(settings.smtp_url)
    except ValueError:
        return Check(ok=False, detail="COURTOIS_SMTP_URL is not a valid URL", took_ms=0)
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.use_tls,
        start_tls=False,
        timeout=SMTP_TIMEOUT_SECONDS,
    )
    try:
        await client.connect()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError) as error:
        return Check(ok=False, detail=f"unreachable ({type(error).__name__})", took_ms=_ms(started))
    return Check(ok=True, detail="greets", took_ms=_ms(started))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency fails"}},
    summary="Database and SMTP reachable",
)
async def healthz(ctx: Ctx) -> JSONResponse:
    """200 when every check holds, 503 otherwise; each check says what it found."""
    checks = {
        "database": await run_in_threadpool(check_database, ctx),
        "smtp": await check_smtp(ctx.settings),
    }
    healthy = all(check.ok for check in checks.values())
    body = Health(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )
