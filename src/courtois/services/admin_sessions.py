"""Admin sessions end on the server when the admin signs out.

The admin pages' session is a signed cookie (`web/pages/admin_session.py`) valid for 8
hours; signing out asks the browser to drop it, but a copy (another profile, a proxy's
log, a stolen cookie) would stay valid. Signing out records the session's id, and a cookie
naming an ended session is refused. The ids are kept only while such a cookie could still
be valid: each sign-out forgets those past that time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from courtois.services.context import Context
from courtois.store.sql import insert_new
from courtois.store.tables import admin_sessions_ended

# The cookie's life (8 hours, checked against the wall clock), and an hour more.
SESSION_MAX_AGE = timedelta(hours=8)
KEPT = SESSION_MAX_AGE + timedelta(hours=1)


def end_admin_session(ctx: Context, session_id: str, now: datetime) -> None:
    """The session is over, for this browser and for every copy of its cookie."""
    with ctx.unit_of_work(now) as uow:
        uow.conn.execute(
            delete(admin_sessions_ended).where(admin_sessions_ended.c.ended_at <= now - KEPT)
        )
        insert_new(
            uow.conn,
            admin_sessions_ended,
            {"session_id": session_id, "ended_at": now},
            "session_id",
        )
        uow.commit()


def admin_session_ended(ctx: Context, session_id: str) -> bool:
    """Whether the admin signed out of this session."""
    query = select(admin_sessions_ended.c.session_id).where(
        admin_sessions_ended.c.session_id == session_id
    )
    with ctx.engine.connect() as connection:
        return connection.execute(query).first() is not None
