"""The one place where settings, engine and use-case context are wired together."""

from __future__ import annotations

from courtois.config import Settings, load_settings
from courtois.services.context import Context
from courtois.store.engine import make_engine


def bootstrap(settings: Settings | None = None) -> Context:
    """Load settings (file and environment) and build the context; fails fast on bad config."""
    chosen = settings or load_settings()
    chosen.secret  # noqa: B018 - refuse to start without a usable secret key
    engine = make_engine(chosen.database_url, pool_size=chosen.database_pool_size)
    return Context(engine=engine, settings=chosen)
