"""The French recipient pages write a member's name as French does after "de": "d'Ana",
"d'Élodie", "d'Yves", but "de Bruno" and "de Hugo"; over real HTTP, on both engines."""

from __future__ import annotations

from pages_site import invite_and_deliver, serve
from support import T0

from courtois.services.context import Context
from courtois.services.members import register_member

# (member id, name, the name after "de")
MEMBERS = [
    ("ana", "Ana", "d'Ana"),
    ("elodie", "Élodie", "d'Élodie"),
    ("bruno", "Bruno", "de Bruno"),
    ("hugo", "Hugo", "de Hugo"),
    ("yves", "Yves", "d'Yves"),
]


def test_the_french_pages_elide_before_each_members_name(ctx: Context) -> None:
    mails = {}
    for member_id, name, _ in MEMBERS:
        register_member(ctx, member_id, f"{member_id}@example.com", name, "fr", T0)
        (mails[member_id],) = invite_and_deliver(ctx, member_id, [f"to-{member_id}@example.org"])
    with serve(ctx) as site:
        for member_id, name, after_de in MEMBERS:
            tokens = mails[member_id].tokens
            stop = site.get(f"/u/{tokens.unsubscribe}").text
            assert '<html lang="fr">' in stop
            assert (
                f"Ou n'arrêtez que les invitations {after_de}\u00a0: d'autres membres pourront "
                "encore vous inviter." in stop
            )
            why = site.get(f"/why/{tokens.why}").text
            assert f"{name}, membre de la plateforme Agora, a choisi votre adresse" in why
            # The email brought this one invitation: "not interested" closes it alone.
            assert (
                f"Ça ne m'intéresse pas\u00a0: nous clôturons cette invitation. {name} verra que "
                "vous avez décliné." in why
            )
            # Each recipient had this one invitation: the answer speaks of it alone.
            done = site.post(f"/why/{tokens.why}", data={"action": "decline"}).text
            assert f"Cette invitation est close. {name} verra que vous avez décliné." in done
