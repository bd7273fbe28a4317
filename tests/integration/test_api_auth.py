"""Every `/v1` route wants the platform's bearer key; `/healthz` and `/metrics` do not."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from api_support import API_KEY, Api, running_api

from courtois.services.context import Context


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        yield running


def v1_operations(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every /v1 operation in the OpenAPI document, ids filled in."""
    spec = api.ok(api.get("/openapi.json"))
    found = []
    for path, operations in spec["paths"].items():
        if path.startswith("/v1/"):
            concrete = re.sub(r"\{[^}]+\}", "x1", path)
            found.extend((method.upper(), concrete) for method in operations)
    return found


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Basic {API_KEY}", f"Bearer {API_KEY}x", "Bearer"],
)
def test_every_v1_route_refuses_a_missing_or_wrong_key(api: Api, authorization: str | None) -> None:
    operations = v1_operations(api)
    assert len(operations) >= 18
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=api.base_url, headers=headers) as stranger:
        for method, path in operations:
            response = stranger.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["type"] == "/problems/unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


def test_the_openapi_document_declares_the_bearer_scheme_on_every_v1_route(api: Api) -> None:
    spec = api.ok(api.get("/openapi.json"))
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            declared = {name for need in operation.get("security", []) for name in need}
            assert ("HTTPBearer" in declared) == path.startswith("/v1/"), path
            assert "401" in operation["responses"] or not path.startswith("/v1/")


def test_health_and_metrics_need_no_key(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as stranger:
        assert stranger.get("/healthz").status_code == 200
        assert stranger.get("/metrics").status_code == 200


def test_without_a_configured_key_the_api_is_off(ctx: Context) -> None:
    with running_api(ctx, api_key="") as api:
        response = api.get("/v1/members/ana")
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/api-disabled"


def test_the_right_key_is_let_in(api: Api) -> None:
    response = api.get("/v1/members/nobody")
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/member-not-found"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"\xff\xfe"),
        ("text/plain", b"hello"),
        ("application/json", b"x" * (5 * 1024 * 1024)),
    ],
)
def test_a_stranger_is_asked_for_the_key_before_the_body_is_judged(
    api: Api, content_type: str, body: bytes
) -> None:
    """Malformed, mistyped or oversized: without the key the answer is the same 401."""
    with httpx.Client(base_url=api.base_url) as stranger:
        response = stranger.post(
            "/v1/members/ana/invitations", content=body, headers={"Content-Type": content_type}
        )
    assert response.status_code == 401, response.text
    assert response.json()["type"] == "/problems/unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_stranger_is_answered_before_the_server_waits_for_the_body(api: Api) -> None:
    """A body announced but never sent: the refusal comes at once, so the server neither
    waits for nor parses what a stranger sends."""
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"POST /v1/members/ana/invitations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
        )
        head = conn.recv(4096)
    assert head.startswith(b"HTTP/1.1 401 "), head[:80]


def test_the_key_holder_still_hears_about_a_malformed_body(api: Api) -> None:
    response = api.http.post(
        "/v1/members/ana/invitations",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/invalid-request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/members", b'{"id":"x1",'),
        ("/v1/members", b"{not json"),
        ("/v1/joined", b""),
        ("/v1/members/ana/imports", b'{"contacts": ['),
    ],
)
def test_a_body_that_is_not_json_is_named_body_on_every_route(
    api: Api, path: str, body: bytes
) -> None:
    """Not by the character offset FastAPI reports (`{"11": "JSON decode error"}`): the
    body is the bad item, as the import route already said."""
    response = api.http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/invalid-request"
    assert list(response.json()["errors"]) == ["body"], response.text


def test_a_body_without_a_media_type_is_refused_as_one(api: Api) -> None:
    """JSON sent with no Content-Type is 415, as any body that does not say it is JSON,
    not a validation error about a dictionary; nothing is stored."""
    body = b'{"id": "ana", "email": "ana@members.example", "name": "Ana"}'
    response = api.http.post("/v1/members", content=body)
    assert "content-type" not in response.request.headers
    assert response.status_code == 415, response.text
    assert response.json()["type"] == "/problems/unsupported-media-type"
    assert response.json()["errors"] == {"Content-Type": "missing"}
    assert api.get("/v1/members/ana").status_code == 404
    # A request without a body needs no media type.
    assert api.http.post("/v1/members/ana/login-link").status_code == 404


def test_a_wrong_method_names_every_method_the_path_answers(api: Api) -> None:
    response = api.http.put("/v1/members/ana/contacts")
    assert response.status_code == 405
    assert response.json()["type"] == "/problems/method-not-allowed"
    assert response.headers["allow"] == "DELETE, GET, HEAD"
