"""Errors as RFC 9457 problem details, each with a stable `type` a client can switch on.

`type` is a relative URI (`/problems/<code>`), resolved against the service's own base URL,
so the same code means the same thing on every deployment. The `detail` is the domain's
human sentence; `errors` names each bad item, never echoing an email address back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from courtois.domain.addresses import without_addresses
from courtois.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from courtois.store.faults import DatabaseFault, database_fault
from courtois.web.problem_types import PROBLEM_TYPES, PROBLEM_URIS

MEDIA_TYPE = "application/problem+json"
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

# What FastAPI says when a body cannot be decoded at all.
BODY_NOT_PARSED = "There was an error parsing the body"

log = logging.getLogger("courtois.web")

STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (DomainError, 400),
)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    507: "Insufficient storage",
}
# A database out of reach or out of room: the client may try again (after Retry-After).
FAULT_STATUS = {DatabaseFault.UNAVAILABLE: 503, DatabaseFault.FULL: 507}
RETRY_AFTER_SECONDS = "5"


class ProblemDetails(BaseModel):
    """The body of every error answer of the API (RFC 9457)."""

    type: str = Field(
        description="Stable identifier of the kind of error, one of:\n"
        + "\n".join(f"- `/problems/{code}`: {meaning}" for code, meaning in PROBLEM_TYPES.items()),
        json_schema_extra={"enum": list(PROBLEM_URIS)},
    )
    title: str = Field(description="Short summary of the kind of error.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for people.")
    errors: dict[str, str] = Field(
        default_factory=dict, description="Each offending item and what is wrong with it."
    )


class Problem(Exception):
    """Raised by routes for errors that are not domain refusals (auth, size, media type)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors or {}
        self.headers = headers or {}


def problem_body(
    status: int, code: str, detail: str, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """The JSON body of one problem, with any address in it hidden."""
    return ProblemDetails(
        type=f"/problems/{code}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=without_addresses(detail),
        errors={
            without_addresses(key): without_addresses(value)
            for key, value in (errors or {}).items()
        },
    ).model_dump()


def problem_response(
    status: int,
    code: str,
    detail: str,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """One problem, as JSON with the problem media type."""
    return JSONResponse(
        problem_body(status, code, detail, errors),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def body_of(error: DomainError | Problem) -> tuple[int, dict[str, Any]]:
    """The status and body an error is answered with (kept by idempotent requests)."""
    if isinstance(error, Problem):
        return error.status, problem_body(error.status, error.code, error.detail, error.errors)
    status = status_for(error)
    return status, problem_body(status, error.code, error.message, error.details)


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain refusal: the first matching class wins."""
    for kind, status in STATUS_OF:
        if isinstance(error, kind):
            return status
    return 400


def _validation_errors(error: RequestValidationError) -> dict[str, str]:
    """Pydantic's errors, keyed by where they are, with the message but never the input.
    A body that is not JSON at all is named `body` (as on every route, imports included),
    not by the character offset FastAPI puts where a field's name would be."""
    found: dict[str, str] = {}
    for item in error.errors():
        if item.get("type") == "json_invalid":
            found["body"] = _not_json(item)
            continue
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        found[where or "body"] = str(item.get("msg", "invalid"))
    return found


def _not_json(item: Any) -> str:
    """Why a body is not JSON, and where (the decoder's words quote no input)."""
    reason = (item.get("ctx") or {}).get("error")
    offsets = [part for part in item.get("loc", ()) if isinstance(part, int)]
    where = f" (at character {offsets[0]})" if offsets else ""
    return f"not valid JSON: {reason}{where}" if reason else "not valid JSON"


def install(app: FastAPI) -> None:
    """Route every error of the app through problem details."""

    async def on_domain(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return problem_response(status_for(error), error.code, error.message, error.details)

    async def on_problem(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Problem)
        headers = dict(error.headers)
        if error.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return problem_response(
            error.status, error.code, error.detail, error.errors, headers or None
        )

    async def on_validation(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem_response(
            422, "invalid-request", "The request is not valid.", _validation_errors(error)
        )

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 400 and error.detail == BODY_NOT_PARSED:
            # A body that is not even text: the same answer as a body that is bad JSON.
            return problem_response(
                422, "invalid-request", "The request is not valid.", {"body": "not valid JSON"}
            )
        code = TITLES.get(error.status_code, "error").lower().replace(" ", "-")
        detail = (
            error.detail if isinstance(error.detail, str) else TITLES.get(error.status_code, "")
        )
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405 and (allowed := allowed_methods(request)):
            headers["Allow"] = ", ".join(allowed)
        return problem_response(error.status_code, code, detail, headers=headers or None)

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_middleware(UnexpectedErrors)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path: Starlette's 405 names only the first
    route that matched the path, so `/v1/members/{id}/contacts` (GET and DELETE) was said
    to allow GET alone. Each method is tried through the routes' own `matches`, which sees
    into included routers. HEAD is answered wherever GET is (`web.head.HeadAsGet`)."""
    routes = request.app.router.routes
    answered = {
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    }
    if "GET" in answered:
        answered.add("HEAD")
    return [method for method in HTTP_METHODS if method in answered]


class UnexpectedErrors:
    """A bug becomes a 500 problem and one log line naming the error's type and where it
    happened, never its message: driver errors quote the SQL parameters, which may be
    addresses. The traceback stops here, so the server does not print it either. A database
    out of reach or out of room is no bug: a 503 or 507 problem with Retry-After."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as error:  # the last stop before the server's logs
            fault = database_fault(error)
            if fault is not None and not started:
                await _fault_response(fault, scope)(scope, receive, send)
                return
            where = _innermost_frame(error)
            # Not log.exception: the traceback would print the message.
            log.error(
                "unexpected %s in %s %s at %s",
                type(error).__name__,
                scope.get("method", ""),
                _route_of(scope),
                where,
            )
            if started:
                raise
            response = problem_response(
                500, "internal-error", "Something went wrong on the server; nothing was changed."
            )
            await response(scope, receive, send)


def _fault_response(fault: DatabaseFault, scope: Scope) -> JSONResponse:
    """A database out of reach or full is the environment, not a bug: a problem the
    client can act on, and one warning line (the error's type only, as for bugs)."""
    log.warning("%s in %s %s", fault.value, scope.get("method", ""), _route_of(scope))
    status = FAULT_STATUS[fault]
    return problem_response(
        status, fault.value, fault.sentence, headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(unmatched path)"


def _innermost_frame(error: BaseException) -> str:
    trace = error.__traceback__
    if trace is None:
        return "(unknown)"
    while trace.tb_next is not None:
        trace = trace.tb_next
    code = trace.tb_frame.f_code
    return f"{code.co_filename}:{trace.tb_lineno} ({code.co_name})"


def complete_openapi(app: FastAPI, checks_body: Callable[[str], bool]) -> None:
    """The document also lists what an operation may answer besides its own refusals: 500,
    503 and 507 (database out of reach or full, with Retry-After); 413 and 415 wherever
    `checks_body` says the body middleware answers, whatever the method, since it judges
    the body before the route is known; and Retry-After on the 409 of every operation that
    takes an Idempotency-Key (a key still in use). Error answers are given in the problem
    media type only."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = build()
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                _complete(operation, body_checked=checks_body(path))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(operation: dict[str, Any], *, body_checked: bool) -> None:
    answers: dict[str, Any] = operation.setdefault("responses", {})
    for code, answer in answers.items():
        content = answer.get("content", {})
        if code.isdigit() and int(code) >= 400 and MEDIA_TYPE in content:
            content.pop("application/json", None)
    if body_checked:
        answers.setdefault("413", _problem_answer(413))
        answers.setdefault("415", _problem_answer(415))
    if any(_is_idempotency_key(parameter) for parameter in operation.get("parameters", ())):
        conflict = answers.setdefault("409", _problem_answer(409))
        conflict.setdefault("headers", {}).update(_RETRY_AFTER)
    answers.setdefault("500", _problem_answer(500))
    for status in FAULT_STATUS.values():
        answers.setdefault(str(status), _problem_answer(status, retry=True))


def _is_idempotency_key(parameter: dict[str, Any]) -> bool:
    return parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key"


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string"},
    }
}


def _problem_answer(status: int, *, retry: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": TITLES.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
    }
    if retry:
        answer["headers"] = dict(_RETRY_AFTER)
    return answer


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give, all as problem details."""
    return {
        status: {
            "model": ProblemDetails,
            "description": TITLES.get(status, "Error"),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for status in statuses
    }
