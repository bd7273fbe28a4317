"""The preview a member consents to is the email as it will be sent, postal address
included, and a worker that sends must have one: a consent taken without it can never be
sent as previewed. `courtois invite` (and `serve`, where the pages take previews) still
goes on, since nothing is sent without SMTP, but says so in one line on stderr."""

from __future__ import annotations

from pathlib import Path

from smtp_server import FaultyHandler, smtp_server
from test_cli import BO, NOW, at, courtois, environment, ok

POSTAL = "Agora, 1 Example Street, 99999 Exampleton"
WARNING = (
    "courtois: warning: platform_postal_address is not set: previews and consents taken now "
    "show no postal address, and the worker that sends (which needs one) will hold these "
    "invitations as differing from their preview; set COURTOIS_PLATFORM_POSTAL_ADDRESS first."
)


def _member(env: dict[str, str]) -> None:
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@members.example", "--name", "Ana Lima")


def test_an_invite_without_a_postal_address_warns_and_is_held_by_a_sending_worker(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    _member(env)
    done = courtois(env, "invite", "--member", "ana", "--email", BO, "--now", NOW, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [WARNING]

    # What the warning is about: the sending worker adds the address, the preview had none.
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        sending = {**env, "COURTOIS_SMTP_URL": url, "COURTOIS_PLATFORM_POSTAL_ADDRESS": POSTAL}
        passed = ok(sending, "worker", "--once", "--now", at(minutes=11), "--json")
    assert passed["sent"] == 0
    assert handler.received == []


def test_with_a_postal_address_the_invite_is_silent_and_sent_as_previewed(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}", COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL)
    _member(env)
    done = courtois(env, "invite", "--member", "ana", "--email", BO, "--now", NOW, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""

    handler = FaultyHandler()
    with smtp_server(handler) as url:
        sending = {**env, "COURTOIS_SMTP_URL": url}
        passed = ok(sending, "worker", "--once", "--now", at(minutes=11), "--json")
    assert passed["sent"] == 1
    assert [rcpts for rcpts, _ in handler.received] == [[BO]]


def test_a_refused_invite_stays_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    _member(env)
    done = courtois(env, "invite", "--member", "nobody", "--email", BO, "--now", NOW)
    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1
    assert "warning" not in done.stderr
