"""Every bad link gets one and the same 404: forged, tampered, expired, of another scope,
naming no stored invitation, or not a token at all; GET or POST, on /u, /why and /join.
Same status, same body, same headers, so no answer tells the causes apart. A token 61
days old still works (CASL asks for at least 60 days after the message).
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pages_site import EVERY_PAGE, Site, invite_and_deliver, ledger_size, serve, stable_headers
from support import add_members, all_stored_text

from courtois.services.context import Context
from courtois.tokens import MAX_AGE_SECONDS, Scope, make_token

BO = "bo@example.com"
DAY = 24 * 3600
PATHS = {Scope.UNSUBSCRIBE: "/u/", Scope.WHY: "/why/", Scope.JOIN: "/join/"}


def signed_at(secret: bytes, scope: Scope, invitation_id: str, at: float) -> str:
    """A token exactly as `make_token` makes one, but stamped at another instant."""

    class Stamped(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(at)

    serializer = URLSafeTimedSerializer(secret, salt=f"courtois.{scope.value}", signer=Stamped)
    return serializer.dumps(invitation_id)


def _tamper(token: str, part: int) -> str:
    """One character changed in the middle of the payload (0), the timestamp (1) or the
    signature (2): every bit of a middle base64 character counts, unlike the last one's."""
    parts = token.split(".")
    middle = len(parts[part]) // 2
    old = parts[part][middle]
    parts[part] = parts[part][:middle] + ("A" if old != "A" else "Q") + parts[part][middle + 1 :]
    return ".".join(parts)


def _requests(site: Site, path: str) -> list[httpx.Response]:
    """GET, and for /u and /why a POST (a valid one-click body, and a /why action); /join
    takes GETs only (a POST there is refused alike for every token, good or bad)."""
    answers = [site.get(path, headers={"Accept-Language": "en"})]
    if not path.startswith("/join/"):
        answers.append(
            site.post(
                path,
                data={"List-Unsubscribe": "One-Click", "action": "forget"},
                headers={"Accept-Language": "en"},
            )
        )
    return answers


def test_every_bad_token_gets_the_same_plain_404(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    secret = ctx.settings.secret
    good = {
        Scope.UNSUBSCRIBE: mail.tokens.unsubscribe,
        Scope.WHY: mail.tokens.why,
        Scope.JOIN: mail.tokens.join[0],
    }
    expired_at = time.time() - MAX_AGE_SECONDS - DAY
    bad: dict[str, list[str]] = {
        "forged": [
            PATHS[s] + make_token(b"another-secret-0123456789", s, invitation_id) for s in PATHS
        ],
        "tampered": [PATHS[s] + _tamper(good[s], part) for s in PATHS for part in (0, 1, 2)],
        "expired": [PATHS[s] + signed_at(secret, s, invitation_id, expired_at) for s in PATHS],
        "wrong scope": [
            PATHS[Scope.UNSUBSCRIBE] + good[Scope.WHY],
            PATHS[Scope.UNSUBSCRIBE] + good[Scope.JOIN],
            PATHS[Scope.WHY] + good[Scope.UNSUBSCRIBE],
            PATHS[Scope.WHY] + good[Scope.JOIN],
            PATHS[Scope.JOIN] + good[Scope.UNSUBSCRIBE],
            PATHS[Scope.JOIN] + good[Scope.WHY],
        ],
        "unknown invitation": [PATHS[s] + make_token(secret, s, str(uuid.uuid4())) for s in PATHS],
        "not a token": [
            *(PATHS[s] + "hello" for s in PATHS),
            *(PATHS[s] for s in PATHS),
            "/u/%C3%A9t%C3%A9",
            "/why/%FF%FE",
            "/u/" + "A" * 5000,
            "/u/" + good[Scope.UNSUBSCRIBE] + "/extra",
            "/why/" + good[Scope.WHY] + "/decline",
        ],
    }
    before, events = all_stored_text(ctx), ledger_size(ctx)
    with serve(ctx) as site:
        reference = site.get("/u/x", headers={"Accept-Language": "en"})
        assert reference.status_code == 404
        assert reference.headers["content-type"] == "text/html; charset=utf-8"
        for name, value in EVERY_PAGE.items():
            assert reference.headers[name] == value
        assert "set-cookie" not in reference.headers
        assert "<script" not in reference.text.lower()
        for cause, paths in bad.items():
            for path in paths:
                for response in _requests(site, path):
                    assert response.status_code == 404, (cause, path)
                    assert response.content == reference.content, (cause, path)
                    assert stable_headers(response) == stable_headers(reference), (cause, path)
        # /join takes no POST: refused alike whatever the token.
        good_post = site.post(PATHS[Scope.JOIN] + good[Scope.JOIN])
        bad_post = site.post(PATHS[Scope.JOIN] + "hello")
        assert (good_post.status_code, good_post.content) == (
            bad_post.status_code,
            bad_post.content,
        )
        # The good tokens work, so the bad ones failed for what is wrong with them.
        assert site.get(PATHS[Scope.WHY] + good[Scope.WHY]).status_code == 200
        assert site.get(PATHS[Scope.UNSUBSCRIBE] + good[Scope.UNSUBSCRIBE]).status_code == 200
        after = (all_stored_text(ctx), ledger_size(ctx))
    assert after == (before, events)


@pytest.mark.parametrize("days", [61, 365])
def test_a_token_works_long_after_the_last_message(ctx: Context, days: int) -> None:
    """CASL: an unsubscribe link must work for at least 60 days after the message."""
    assert MAX_AGE_SECONDS >= 61 * DAY
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    old = time.time() - days * DAY
    secret = ctx.settings.secret
    with serve(ctx) as site:
        why = site.get("/why/" + signed_at(secret, Scope.WHY, invitation_id, old))
        assert why.status_code == 200
        assert "Ana" in why.text
        stop = site.post(
            "/u/" + signed_at(secret, Scope.UNSUBSCRIBE, invitation_id, old),
            data={"List-Unsubscribe": "One-Click"},
        )
        assert stop.status_code == 200
        past_age = signed_at(secret, Scope.WHY, invitation_id, time.time() - MAX_AGE_SECONDS - DAY)
        assert site.get("/why/" + past_age).status_code == 404


def test_a_wrong_method_on_a_recipient_link_carries_every_page_header(ctx: Context) -> None:
    """`POST /join/TOKEN`, `PUT /why/TOKEN`, `DELETE /u/TOKEN`: a 405 problem, and the URL
    still holds a live token, so no cache may keep the answer, no Referer carry the URL
    on, and nothing in it may run or be framed, as on every recipient page."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        answers = {
            "POST /join": site.client.post(f"{site.base}/join/{mail.tokens.join[0]}"),
            "PUT /why": site.client.put(f"{site.base}/why/{mail.tokens.why}"),
            "DELETE /u": site.client.delete(f"{site.base}/u/{mail.tokens.unsubscribe}"),
        }
    for what, answer in answers.items():
        assert answer.status_code == 405, what
        assert answer.headers["content-type"] == "application/problem+json", what
        assert answer.headers["allow"], what
        for name, value in EVERY_PAGE.items():
            assert answer.headers.get(name) == value, (what, name)
        policy = answer.headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy, what
        assert "frame-ancestors 'none'" in policy, what
