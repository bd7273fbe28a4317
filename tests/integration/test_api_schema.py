"""The API against its own OpenAPI document (schemathesis): for generated requests, valid
and not, no answer is a server error and every answer is documented, with the documented
status, media type, headers and body schema. Bounded: a few examples per operation. And
the refusals schemathesis does not provoke (a body the middleware refuses, on every route,
whatever its method) are in the document too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_support import API_KEY, Api, add_member, preview_and_invite, running_api
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from courtois.services.context import Context
from courtois.web.body_limit import MAX_JSON_BODY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(ctx: Context) -> Iterator[schemathesis.BaseSchema]:
    """The served app's own document, with a member and invitations for ids to land on."""
    with running_api(ctx) as api:
        add_member(api)
        preview_and_invite(api, ["bo@example.org"])
        yield schemathesis.openapi.from_url(f"{api.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_every_answer_matches_the_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=CHECKS)


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        add_member(running)
        yield running


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path with ids filled in, operation) of every operation in the document."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), re.sub(r"\{[^}]+\}", "x1", path), operation


# What the body middleware (`JsonBodyLimit`) is sent to judge, on every route it guards.
REFUSED_BODIES = {
    "not JSON": (b"x", {"Content-Type": "text/plain"}),
    "JSON with no media type": (b'{"id": "x1"}', {}),
    "past the limit": (b"{" + b" " * MAX_JSON_BODY + b"}", {"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("sent", list(REFUSED_BODIES))
def test_every_answer_the_body_middleware_gives_is_in_the_document(api: Api, sent: str) -> None:
    """The middleware judges a body before the route is known, so whatever the method, and
    whether or not the operation reads a body, its refusal must be one the document lists
    for that operation; the document cannot leave out a route it guards."""
    document = api.ok(api.get("/openapi.json"))
    content, headers = REFUSED_BODIES[sent]
    answered = []
    for method, path, operation in _operations(document):
        response = api.http.request(method, path, content=content, headers=headers)
        documented = set(operation["responses"])
        assert str(response.status_code) in documented, (sent, method, path, response.text)
        if path.startswith("/v1/") and not path.endswith("/imports"):
            assert response.status_code in (413, 415), (sent, method, path, response.text)
            answered.append((method, path))
    assert len(answered) >= 18


def test_every_operation_that_takes_a_key_documents_retry_after_on_409(api: Api) -> None:
    """A key still in use is refused with 409 and `Retry-After: 1` (test_api_idempotency);
    the document says so wherever a key is taken."""
    document = api.ok(api.get("/openapi.json"))
    keyed = []
    for method, path, operation in _operations(document):
        names = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "header"}
        if "Idempotency-Key" in names:
            keyed.append((method, path))
            assert "Retry-After" in operation["responses"]["409"].get("headers", {}), path
    assert {"POST", "DELETE"} <= {method for method, _ in keyed}
