"""The routes an app serves, read at request time so the demo lists whatever the product
has grown since, and never hard-codes a page that may not exist."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Paths that are the demo's own or the API's documentation, listed apart from the product's.
_OWN = ("/demo", "/outbox", "/docs", "/openapi.json", "/redoc")


def flat_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, frozenset[str]]]:
    """(path, methods) of every HTTP route, included routers opened up: recent FastAPI
    versions keep an included router whole instead of copying its routes into the app."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from flat_routes(inner.routes, prefix + str(getattr(context, "prefix", "")))
            continue
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None)
        if path and methods:
            yield prefix + path, frozenset(methods)


def serves(routes: Iterable[Any], method: str, path_prefix: str) -> bool:
    """Whether some route answers `method` on a path starting with `path_prefix`."""
    return any(
        path.startswith(path_prefix) and method in methods for path, methods in flat_routes(routes)
    )


@dataclass(frozen=True, slots=True)
class RouteLine:
    """One route of the app, linked when a browser can open it as it is."""

    methods: str
    path: str
    linkable: bool


def app_routes(routes: Iterable[Any]) -> list[RouteLine]:
    """The product's routes (not the demo's own), sorted by path."""
    lines = set()
    for path, methods in flat_routes(routes):
        if path == "/" or path.startswith(_OWN):
            continue
        shown = sorted(m for m in methods if m != "HEAD")
        lines.add(RouteLine(" ".join(shown), path, "GET" in shown and "{" not in path))
    return sorted(lines, key=lambda line: (line.path, line.methods))
