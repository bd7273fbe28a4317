"""How long a member's imported contacts keep a recipient's address and name (invariant 10,
and each email's notice: "until you join or decline, or until the invitation expires").

Contacts picked through the API stay picked after the invitation (only the member pages
untick them), so a pick must not keep a contact: every contact goes a day after its
import, and the one behind a declined invitation at once. Over real HTTP and SMTP, on both
engines, with the worker's passes run at the instants given (`worker --once --now`).
"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage

from api_support import Api, add_member, preview_and_invite, running_api
from smtp_server import FaultyHandler, smtp_server
from support import T0, all_stored_text, invitation

from courtois.delivery.compose import tokens_in
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.worker import run_pass

WITHDRAWN = ("wendy.withdrawn@example.org", "Wendy Withdrawn")
DECLINED = ("nick.notint@example.org", "Nicolas Notinterested")
BOUNCED = ("bob.bounced@example.org", "Bob Bounced")
OPEN = ("olive.open@example.org", "Olive Open")
PICKED_ONLY = ("pat.picked@example.org", "Pat Picked")
UNPICKED = ("una.unpicked@example.org", "Una Unpicked")
INVITED = [WITHDRAWN, DECLINED, BOUNCED, OPEN]
EVERYONE = [*INVITED, PICKED_ONLY, UNPICKED]
SIX_MONTHS = timedelta(days=183)


def held_contacts(api: Api) -> set[str]:
    """The addresses in Ana's address book, as the API lists them."""
    return {c["email"] for c in api.ok(api.get("/v1/members/ana/contacts"))["items"]}


def why_token(raw: bytes, api: Api) -> str:
    """The /why token of the email that reached one recipient."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return tokens_in(parsed, api.ctx.settings).why


def test_no_contact_outlives_its_day_whatever_became_of_the_invitation(ctx: Context) -> None:
    handler = FaultyHandler(
        rcpt_replies={BOUNCED[0]: f"550 5.1.1 <{BOUNCED[0]}>: Recipient address rejected"}
    )
    with smtp_server(handler) as smtp_url, running_api(ctx) as api:
        add_member(api)
        book = [{"email": address, "name": name} for address, name in EVERYONE]
        api.ok(api.post("/v1/members/ana/imports", {"contacts": book}))
        picked = [address for address, _ in EVERYONE if address != UNPICKED[0]]
        chosen = api.post("/v1/members/ana/contacts/selection", {"emails": picked})
        assert api.ok(chosen) == {"changed": 5}
        answer = preview_and_invite(api, [address for address, _ in INVITED])
        ids = {item["email"]: item["id"] for item in answer["invitations"]}

        # Ana withdraws one within the undo window; the others leave, one refused for good.
        api.clock.advance(minutes=5)
        withdrawn = api.post(f"/v1/invitations/{ids[WITHDRAWN[0]]}/withdraw")
        assert api.ok(withdrawn)["status"] == "withdrawn"
        run_pass(ctx, api.clock.advance(minutes=6), SmtpTransport(parse_smtp_url(smtp_url)))
        assert invitation(ctx, ids[BOUNCED[0]]).state == "bounced"
        assert invitation(ctx, ids[OPEN[0]]).state == "sent"

        # Nicolas is not interested: his address goes from Ana's book at once, with the
        # invitation's copy. What Ana picked stays hers for the day after the import.
        (raw,) = [raw for rcpts, raw in handler.received if rcpts == [DECLINED[0]]]
        api.clock.advance(hours=1)
        declined = api.http.post(f"/why/{why_token(raw, api)}", data={"action": "decline"})
        assert declined.status_code == 200
        assert invitation(ctx, ids[DECLINED[0]]).state == "declined"
        assert DECLINED[0] not in held_contacts(api)
        assert "notinterested" not in all_stored_text(ctx)
        run_pass(ctx, T0 + timedelta(hours=23), None)
        assert {WITHDRAWN[0], OPEN[0], PICKED_ONLY[0], UNPICKED[0]} <= held_contacts(api)

        # A day after the import the address book is gone, picked or not, invited or not;
        # only the open invitation still holds its address (never a name).
        assert run_pass(ctx, T0 + timedelta(hours=25), None).purged["contacts"] >= 4
        assert held_contacts(api) == set()
        stored = all_stored_text(ctx)
        for address, name in EVERYONE:
            assert name.lower() not in stored
            assert (address in stored) is (address == OPEN[0])

        # Six months on, the open one expired too: only digests are left.
        assert run_pass(ctx, T0 + SIX_MONTHS, None).expired == 1
        stored = all_stored_text(ctx)
        assert all(address not in stored for address, _ in EVERYONE)
        assert all(ctx.digest_email(address) in stored for address, _ in INVITED)
