"""Server-rendered pages: recipient pages (signed tokens), member and admin pages."""

from __future__ import annotations

from fastapi import APIRouter

from courtois.web.pages import admin, member, problem_pages, recipient, why

routers: list[APIRouter] = [
    recipient.router,
    why.router,
    *member.routers,
    admin.router,
    problem_pages.router,
]
