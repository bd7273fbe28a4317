"""Member sign-in links open one session each, once.

A link from `POST /v1/members/{id}/login-link` lives 15 minutes; until then anyone holding
its URL (a shared computer's history, a proxy's log) could open the member's pages with it.
Its first use records the link's id, so a second use is refused like any bad link. The ids
are kept only while a link could still be valid: each use forgets those past that time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from courtois.services.context import Context
from courtois.store.sql import insert_new
from courtois.store.tables import sign_in_links_used
from courtois.tokens import MEMBER_LINK_MAX_AGE_SECONDS

# Kept a little past a link's life: the token's age is checked against the wall clock,
# the purge against the pass's clock.
KEPT = timedelta(seconds=MEMBER_LINK_MAX_AGE_SECONDS) + timedelta(hours=1)


def use_sign_in_link(ctx: Context, link_id: str, now: datetime) -> bool:
    """True the first time this link is used, False every time after (atomically: of two
    racing uses, one wins)."""
    with ctx.unit_of_work(now) as uow:
        uow.conn.execute(
            delete(sign_in_links_used).where(sign_in_links_used.c.used_at <= now - KEPT)
        )
        taken = insert_new(
            uow.conn, sign_in_links_used, {"link_id": link_id, "used_at": now}, "link_id"
        )
        uow.commit()
    return taken


def sign_in_link_used(ctx: Context, link_id: str) -> bool:
    """Whether this link was used already: read only, so that showing the "continue as"
    page for a link spends nothing (only the confirmed POST uses it up)."""
    query = select(sign_in_links_used.c.link_id).where(sign_in_links_used.c.link_id == link_id)
    with ctx.engine.connect() as connection:
        return connection.execute(query).first() is not None
