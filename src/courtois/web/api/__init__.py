"""The host API, `/v1`: JSON in and out, bearer API key, RFC 9457 problems; and the
operator's `/healthz` and `/metrics`, which need no key."""

from __future__ import annotations

from fastapi import APIRouter

from courtois.web import health, metrics
from courtois.web.api import (
    consents,
    contacts,
    explain,
    export,
    imports,
    invitations,
    joined,
    members,
    recipients,
)

routers: list[APIRouter] = [
    members.router,
    imports.router,
    contacts.router,
    invitations.router,
    consents.router,
    joined.router,
    recipients.router,
    explain.router,
    export.router,
    health.router,
    metrics.router,
]
