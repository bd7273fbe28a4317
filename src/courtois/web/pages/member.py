"""The member pages: sign in, import, choose, preview and consent, follow and stop.

The reference integration for platforms that want no pages of their own: server-rendered,
in the member's language, usable without JavaScript, on the same use cases as the API.
"""

from __future__ import annotations

from fastapi import APIRouter

from courtois.web.pages import (
    member_contacts,
    member_dashboard,
    member_import,
    member_invite,
    member_sign_in,
)

routers: list[APIRouter] = [
    member_sign_in.router,
    member_dashboard.router,
    member_import.router,
    member_contacts.router,
    member_invite.router,
]
