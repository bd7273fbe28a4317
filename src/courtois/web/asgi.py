"""The app as an ASGI server loads it: settings from the file and the environment.

`uvicorn courtois.web.asgi:app_factory --factory` (or `courtois serve`) builds one app per
server process, each with its own engine and pool.
"""

from __future__ import annotations

from fastapi import FastAPI

from courtois.bootstrap import bootstrap
from courtois.web.app import create_app


def app_factory() -> FastAPI:
    """A fresh app over a fresh context; refuses to start on bad configuration."""
    return create_app(bootstrap())
