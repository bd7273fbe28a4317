"""The API against its own OpenAPI document (schemathesis): for generated requests, valid
and not, no answer is a server error and every answer is documented, with the documented
status, media type, headers and body schema. Bounded: a few examples per operation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from api_support import API_KEY, add_member, preview_and_invite, running_api
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from courtois.services.context import Context

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
