"""What every use case needs: the engine, the settings, and a way to open a unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from courtois.config import Settings, webhooks_on
from courtois.domain.addresses import Address, parse_address, recipient_digest
from courtois.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Context:
    """The wiring handed to use cases by bootstrap, the CLI or the web app."""

    engine: Engine
    settings: Settings

    def unit_of_work(self, now: datetime, *, durable: bool = False) -> UnitOfWork:
        """A new transaction whose ledger entries are stamped `now`; `durable` when its
        commit must survive a power cut (on SQLite, an fsync at commit)."""
        return UnitOfWork(self.engine, now, durable=durable, webhooks=webhooks_on(self.settings))

    def digest(self, address: Address) -> str:
        """The recipient's identity in the store."""
        return recipient_digest(address.key, self.settings.secret)

    def digest_email(self, raw: str, *, any_local_length: bool = False) -> str:
        """Parse and digest a raw address (raises InvalidAddress); `any_local_length` for
        a recipient's own request, as `parse_address` says."""
        return self.digest(parse_address(raw, any_local_length=any_local_length))
