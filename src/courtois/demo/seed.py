"""What the demo starts with: a platform (Agora), a member (Ana Lima) and her address book,
imported through the same use case as any upload, so it arrives unselected.

Seeding is idempotent: an existing member is left as she is, and the sample is imported
only into an empty address book (again after the purge of the contacts, a day on).
Nothing is invited on the member's behalf: no consent, no mail, in the demo too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources

from courtois.config import Settings
from courtois.demo.folder import DemoFolder, Keys
from courtois.domain.errors import NotFound
from courtois.policy.config import PolicyConfig
from courtois.services.contacts import ImportReport, list_contacts
from courtois.services.context import Context
from courtois.services.imports import import_file
from courtois.services.members import get_member, register_member

SAMPLE_FILE = "sample_contacts.vcf"


@dataclass(frozen=True, slots=True)
class DemoMember:
    """The member whose name the demo's invitations carry."""

    id: str = "demo"
    email: str = "ana.lima@example.com"
    name: str = "Ana Lima"
    locale: str = "en"


MEMBER = DemoMember()

# A platform that does not exist, at reserved names (RFC 2606) that no mail can reach.
PLATFORM = Settings(
    platform_name="Agora",
    platform_postal_address="Agora Demo Ltd, 1 Example Street, 99999 Exampleton",
    privacy_contact="privacy@agora.example.org",
    mail_from="invitations@agora.example.org",
    dkim_domain="agora.example.org",
    dkim_selector="demo",
)


def demo_settings(
    folder: DemoFolder, keys: Keys, base_url: str, smtp_url: str, policy: PolicyConfig
) -> Settings:
    """The demo platform over this folder's database, sending to the capture server."""
    return replace(
        PLATFORM,
        database_url=folder.database_url,
        smtp_url=smtp_url,
        # One connection: the capture server is local, and its list reads in send order.
        smtp_connections=1,
        base_url=base_url,
        secret_key=keys.secret_key,
        api_key=keys.api_key,
        dkim_private_key_file=str(folder.ensure_dkim_key()),
        policy=policy,
    )


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What seeding did, counts only (the console never shows an address)."""

    member_created: bool
    contacts: int
    imported: ImportReport | None


def seed(ctx: Context, now: datetime) -> SeedReport:
    """Make sure the demo member exists and has an address book to choose from."""
    try:
        get_member(ctx, MEMBER.id)
        created = False
    except NotFound:
        register_member(ctx, MEMBER.id, MEMBER.email, MEMBER.name, MEMBER.locale, now)
        created = True
    report = None
    if not list_contacts(ctx, MEMBER.id):
        data = resources.files("courtois.demo").joinpath(SAMPLE_FILE).read_bytes()
        report = import_file(
            ctx, MEMBER.id, io.BytesIO(data), now, size=len(data), file_format="vcard"
        )
    return SeedReport(created, len(list_contacts(ctx, MEMBER.id)), report)
