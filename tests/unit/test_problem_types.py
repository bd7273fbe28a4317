"""The list of problem types is the one the code can answer: read from the source, every
`Problem(status, "code")`, every `not_found_as("kind")`, every domain error's code and every
database fault, plus the two statuses the framework raises itself (404, 405). A type added
in code but not to the list, or left in the list after its code went, fails here; the
OpenAPI document carries the list as an enum, which schemathesis holds every answer to."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import courtois
from courtois.config import Settings
from courtois.domain.errors import DomainError
from courtois.services.context import Context
from courtois.store.engine import make_engine
from courtois.store.faults import DatabaseFault
from courtois.web.app import create_app
from courtois.web.problem_types import NOT_FOUND_KINDS, PROBLEM_TABLE, PROBLEM_TYPES, PROBLEM_URIS
from courtois.web.problems import MEDIA_TYPE

SOURCE = Path(courtois.__file__).parent
# Raised by Starlette itself for an unknown path or method, named from the status's title.
FRAMEWORK = {"not-found", "method-not-allowed"}


def _calls(name: str) -> list[ast.Call]:
    found = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.id if isinstance(node.func, ast.Name) else None
            if isinstance(node.func, ast.Attribute):
                called = node.func.attr
            if called == name:
                found.append(node)
    return found


def _literal_codes() -> set[str]:
    codes = set()
    for name in ("Problem", "problem_response"):
        for call in _calls(name):
            if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant):
                codes.add(str(call.args[1].value))
    return codes


def _domain_codes() -> set[str]:
    for module in pkgutil.walk_packages(courtois.__path__, "courtois."):
        importlib.import_module(module.name)
    seen, waiting = set(), [DomainError]
    while waiting:
        kind = waiting.pop()
        seen.add(kind.code)
        waiting.extend(kind.__subclasses__())
    return seen


def test_every_problem_the_code_can_answer_is_listed_and_nothing_else() -> None:
    kinds = {
        str(call.args[0].value)
        for call in _calls("not_found_as")
        if call.args and isinstance(call.args[0], ast.Constant)
    }
    assert kinds == set(NOT_FOUND_KINDS)
    produced = (
        _literal_codes()
        | {f"{kind}-not-found" for kind in NOT_FOUND_KINDS}
        | _domain_codes()
        | {fault.value for fault in DatabaseFault}
        | FRAMEWORK
    )
    assert produced == set(PROBLEM_TYPES)
    assert all(meaning.endswith(".") for meaning in PROBLEM_TYPES.values())
    # Each type's page says what to do, under a title of its own.
    assert all(kind.advice.endswith(".") for kind in PROBLEM_TABLE.values())
    titles = [kind.title for kind in PROBLEM_TABLE.values()]
    assert len(set(titles)) == len(titles)


def test_the_document_lists_them_and_every_operation_its_server_faults() -> None:
    ctx = Context(make_engine("sqlite://"), Settings(secret_key="a-secret-key-of-some-length"))
    document = create_app(ctx).openapi()
    problem = document["components"]["schemas"]["ProblemDetails"]["properties"]["type"]
    assert problem["enum"] == list(PROBLEM_URIS)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert {"500", "503", "507"} <= set(answers), (method, path)
            if path != "/healthz":  # whose 503 is its own report of what is down
                assert "Retry-After" in answers["503"]["headers"], (method, path)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert "413" in answers, (method, path)
            for code, answer in answers.items():
                content = answer.get("content", {})
                if int(code) >= 400 and MEDIA_TYPE in content:  # problems: in their own type
                    assert "application/json" not in content, (method, path)
