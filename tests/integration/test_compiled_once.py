"""The two requests a platform and its recipients send most, an invitation with its
Idempotency-Key and a one-click unsubscribe, compile no SQL once the app has served one of
each: every statement after that comes from SQLAlchemy's cache of compiled statements.

A statement SQLAlchemy cannot cache (its PostgreSQL and SQLite `insert()` constructs, which
`on_conflict_do_nothing` needs) is compiled again on every execution, which cost more CPU
than running it; such a statement on either path fails this test, on the engine it runs on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api_support import add_member, preview_and_invite, running_api
from sqlalchemy import Engine, event
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.engine.interfaces import CacheStats

from courtois.services.context import Context
from courtois.tokens import Scope, make_token

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@contextmanager
def compiled(engine: Engine) -> Iterator[list[str]]:
    """The SQL of each statement compiled, rather than found in the cache, meanwhile."""
    found: list[str] = []

    def watch(*args: Any) -> None:
        context = args[4]
        if not isinstance(context, DefaultExecutionContext) or context.compiled is None:
            return  # SQL given as a string (`exec_driver_sql`) is never compiled
        if context.cache_hit is not CacheStats.CACHE_HIT:
            found.append(str(context.compiled))

    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", watch)


def test_a_second_invitation_and_unsubscribe_compile_nothing(ctx: Context) -> None:
    with running_api(ctx) as api:
        add_member(api, "ana")
        add_member(api, "bruno", "Bruno Costa")

        def invite_and_click(member: str, emails: list[str], key: str) -> None:
            answer = preview_and_invite(api, emails, member_id=member, key=key)
            first = answer["invitations"][0]["id"]
            token = make_token(api.ctx.settings.secret, Scope.UNSUBSCRIBE, first)
            response = api.http.post(f"/u/{token}", data=ONE_CLICK)
            assert response.status_code == 200, response.text

        invite_and_click("ana", ["bo@example.org", "cy@example.org"], "first")
        with compiled(api.ctx.engine) as found:
            invite_and_click("bruno", ["di@example.org", "ed@example.org"], "second")
    assert found == []
