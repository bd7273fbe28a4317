"""The bounce classifier on real messages, its rules one by one, its robustness against
anything at all, and the readers (single files, mbox files, Maildir folders).

The samples are in tests/data/bounces (see its README: source, license, expectations).
"""

from __future__ import annotations

import json
import mailbox
import random
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courtois.delivery.bounce_classify import effective_status, is_hard
from courtois.delivery.bounces import BounceReport, _classify, classify, iter_messages
from courtois.delivery.transport import Delivery, SendResult
from courtois.services.smtp_problems import is_dead_address

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces"
EXPECTED: dict[str, list[list[Any]]] = json.loads((DATA / "expected.json").read_text())
NOT_BOUNCES = sorted((DATA / "not-bounces").glob("*.eml"))
KINDS = {"hard_bounce", "soft_bounce", "complaint", "auto_reply", "not_a_bounce"}


def expected_kind(rows: list[list[Any]]) -> str:
    """The kind the rows imply (see the README)."""
    if not rows:
        return "not_a_bounce"
    if any(row[2] == "feedback" for row in rows):
        return "complaint"
    if any(row[2] == "vacation" for row in rows):
        return "auto_reply"
    return "hard_bounce" if any(row[3] for row in rows) else "soft_bounce"


def sample(name: str) -> bytes:
    return (DATA / "bounces" / name).read_bytes()


# --- every sample ----------------------------------------------------------------------


def test_the_samples_cover_the_servers_asked_for() -> None:
    families = {name.split("-")[1] if name.startswith("lhost") else name for name in EXPECTED}
    for family in ("postfix", "exim", "sendmail", "qmail", "office365", "gmail", "yahoo"):
        assert family in families
    assert {"amazonses", "exchange2003", "exchange2007"} <= families
    kinds = {expected_kind(rows) for rows in EXPECTED.values()}
    assert kinds == KINDS
    assert len(EXPECTED) + len(NOT_BOUNCES) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_classified_as_expected(name: str) -> None:
    rows = EXPECTED[name]
    report = classify(sample(name), name)
    assert report.source == name
    assert report.kind == expected_kind(rows)
    got = [(r.status, r.hard) for r in report.recipients]
    assert got == [(row[0], row[3]) for row in rows]
    for recipient in report.recipients:
        assert "@" in recipient.address
    addresses = [r.address.lower() for r in report.recipients]
    assert len(addresses) == len(set(addresses))


@pytest.mark.parametrize("path", NOT_BOUNCES, ids=lambda p: p.name)
def test_a_message_that_is_no_bounce_names_nobody(path: Path) -> None:
    report = classify(path.read_bytes(), path.name)
    assert report == BounceReport(path.name, "not_a_bounce", ())


def test_the_dead_recipient_is_told_from_the_full_mailbox_in_one_report() -> None:
    report = classify(sample("lhost-postfix-13.eml"), "x")
    by_status = {r.status: r.hard for r in report.recipients}
    assert by_status == {"5.2.1": True, "5.2.2": False}
    assert [r.address for r in report.hard_recipients] == [
        r.address for r in report.recipients if r.status == "5.2.1"
    ]


def test_a_complaint_names_the_reported_recipients() -> None:
    report = classify(sample("arf-16.eml"), "arf")
    assert report.kind == "complaint"
    assert len(report.recipients) == 7
    assert not report.hard_recipients
    hotmail = classify(sample("arf-22.eml"), "hotmail")
    assert [r.address for r in hotmail.recipients] == ["kijitora@example.com"]


def test_the_report_as_the_cli_prints_it() -> None:
    report = classify(sample("lhost-gmail-01.eml"), "gmail.eml")
    assert report.as_dict() == {
        "source": "gmail.eml",
        "kind": "hard_bounce",
        "recipients": [{"address": "userunknown@example.jp", "status": "5.1.1", "hard": True}],
    }


# --- the rules, one by one -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "diagnostic", "action", "hard"),
    [
        ("5.1.1", "550 5.1.1 <a@b.example>... User unknown", "failed", True),
        ("5.0.0", "550 No such user here (in reply to RCPT TO command)", "failed", True),
        ("5.4.4", "Host or domain name not found. Name service error", "failed", True),
        ("5.1.6", "550 5.1.6 recipient no longer on server", "failed", True),
        ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied", "failed", True),
        ("4.1.1", "450 4.1.1 Recipient address rejected: User unknown", "failed", True),
        ("5.2.2", "552 5.2.2 Mailbox full", "failed", False),
        ("5.7.1", "554 5.7.1 Message rejected as spam", "failed", False),
        ("5.7.1", "550 5.7.1 Blocked using zen.spamhaus.org", "failed", False),
        ("5.0.0", "550 Unknown user (in reply to end of DATA command)", "failed", False),
        ("5.1.7", "550 5.1.7 No such domain (sender)", "failed", False),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "failed", False),
        ("4.4.7", "Delivery expired: user unknown", "failed", False),
        ("5.1.1", "550 5.1.1 User unknown", "delayed", False),
        ("4.7.0", "421 4.7.0 Try again later, greylisted", "failed", False),
        ("5.4.4", "Host not found, try again", "failed", False),
        (
            "5.6.7",
            "SMTPUTF8 is required, but was not offered by host mx.b.example",
            "failed",
            False,
        ),
        # A relay lacking SMTPUTF8 (RFC 6531), whatever words it adds: not a dead address.
        (
            "5.6.7",
            "553 5.6.7 Invalid address: non-ASCII in reply to RCPT TO command",
            "failed",
            False,
        ),
        ("", "", "failed", False),
    ],
)
def test_what_makes_an_address_dead(status: str, diagnostic: str, action: str, hard: bool) -> None:
    assert is_hard(status, diagnostic, action) is hard


def test_words_inside_an_address_decide_nothing() -> None:
    assert is_hard("5.2.1", "550 5.2.1 <filtered@example.jp>: User unknown", command="RCPT")
    assert not is_hard("5.0.0", "550 <userunknown@example.jp>: Mailbox full", command="RCPT")


@pytest.mark.parametrize(
    ("status", "diagnostic", "command", "hard"),
    [
        # Said at RCPT TO, or with an X.1 (addressing) code: the user does not exist.
        ("5.0.0", "550 No such user here", "RCPT", True),
        ("5.2.1", "550 5.2.1 <a@b.example>... User Unknown", "RCPT", True),
        ("5.0.0", "550 User unknown (in reply to RCPT TO command)", "", True),
        ("5.1.1", "550 5.1.1 <a@b.example>... User Unknown", "", True),
        ("5.1.351", "550 5.1.351 unknown recipient -> 550 Unknown user a@b.example", "", True),
        # Said after the message, or at an unknown step with a code that says something
        # else (X.2 mailbox, X.7 policy, X.3 system) or nothing: a filter may have said it.
        ("5.0.0", "550 No such user here", "", False),
        ("5.0.0", "550 No such user here", "DATA", False),
        ("5.2.1", "550 5.2.1 <a@b.example>... User Unknown", "", False),
        ("5.7.1", "550 5.7.1 550 User Unknown: a@b.example", "", False),
        ("5.3.0", "5.3.0 - Other mail system problem 550-'Unknown user a@b.example'", "", False),
        ("", "a@b.example [User unknown]", "", False),
        # Refused at MAIL FROM or HELO: about us, whatever the words.
        ("5.0.0", "550 No such user here", "MAIL", False),
        ("5.0.0", "550 No such user here", "HELO", False),
        # Words about the domain or a move do not depend on the step.
        ("5.0.0", "550 Host unknown", "", True),
        ("5.0.0", "553 Unrouteable address", "", True),
    ],
)
def test_user_unknown_counts_at_rcpt_or_with_an_addressing_code(
    status: str, diagnostic: str, command: str, hard: bool
) -> None:
    assert is_hard(status, diagnostic, command=command) is hard


def test_a_refusal_at_send_time_is_judged_by_the_command_it_answered() -> None:
    # What the sender knows at RCPT TO, where a report would have to say it in words.
    reply = "550 No such user here"
    status = effective_status("", reply)
    assert is_hard(status, reply, command="RCPT")
    assert is_hard(status, reply, command="rcpt to")
    assert not is_hard(status, reply, command="DATA")
    assert not is_hard(status, reply)
    full = "552 Mailbox full"
    assert not is_hard(effective_status("", full), full, command="RCPT")


@pytest.mark.parametrize(
    ("code", "reply", "dead"),
    [
        (550, "5.1.1 <a@b.example>: Recipient address rejected: User unknown", True),
        (550, "<a@b.example>: Recipient address rejected: User unknown in local table", True),
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", True),
        (550, "Unrouteable address", True),
        (552, "5.2.2 Mailbox full", False),
        (554, "5.7.1 Message rejected as spam", False),
        (550, "5.7.1 Service unavailable; client host blocked using zen.spamhaus.org", False),
        (450, "4.1.1 <a@b.example>: Recipient address rejected: User unknown", False),
    ],
)
def test_a_refusal_while_sending_is_judged_by_the_same_classifier(
    code: int, reply: str, dead: bool
) -> None:
    delivery = Delivery(SendResult.PERMANENT if code >= 500 else SendResult.TEMPORARY, code, reply)
    assert is_dead_address(delivery) is dead


@pytest.mark.parametrize(
    "reply",
    [
        "5.6.7 Invalid recipient address: non-ASCII local part not accepted",
        "5.6.7 <bö@b.example>: Recipient address rejected.",
        "5.6.7 Non-ASCII addresses not permitted for that recipient",
    ],
)
def test_a_refusal_for_want_of_smtputf8_is_never_a_dead_address(reply: str) -> None:
    # A relay lacking a feature (RFC 6531's X.6.7) says nothing of the address.
    assert not is_dead_address(Delivery(SendResult.PERMANENT, 553, reply, "RCPT"))


@pytest.mark.parametrize(
    "diagnostic",
    [
        "User some.name (a@b.example) not listed in Domino Directory",
        "User not listed in public Name & Address Book",
        "The recipient name is not recognized MSEXCH:IMS:NNN:KIJITORACAT:NEKO",
        "Invalid final delivery userid: a@b.example",
        "mail.local: unknown user: kijitora 554 <a@b.example>... Service unavailable",
    ],
)
def test_a_lookup_in_the_receivers_own_directory_is_final(diagnostic: str) -> None:
    assert is_hard("", diagnostic)
    assert is_hard("5.0.0", diagnostic)


def test_the_sending_servers_own_bad_mailbox_category_backs_the_words() -> None:
    diagnostic = "550 5.2.1 <a@b.example>... User Unknown"
    assert is_hard("5.2.1", diagnostic, category="bad-mailbox")
    assert not is_hard("5.2.1", diagnostic, category="quota-issues")
    assert not is_hard("5.2.1", diagnostic)
    # A category never makes words that say something else a dead address.
    assert not is_hard("5.2.2", "552 5.2.2 Mailbox full", category="bad-mailbox")


@pytest.mark.parametrize(
    ("diagnostic", "recipient", "servers", "hard"),
    [
        # au by KDDI: naming the address, the user is unknown; naming nobody, the
        # recipient's filter refused us; its notice of a disabled account wins.
        ("550 <a@ezweb.ne.jp>: User unknown", "a@ezweb.ne.jp", (), True),
        ("550 <a@other.example>: User unknown", "a@other.example", (), False),
        ("550 : User unknown", "a@ezweb.ne.jp", (), False),
        ("550 5.1.351 unknown recipient -> 550 : User unknown", "a@b.example", (), False),
        (
            "The user(s) account is disabled. <a@ezweb.ne.jp>: 550 user unknown"
            " (in reply to RCPT TO command)",
            "a@ezweb.ne.jp",
            (),
            False,
        ),
        # Yahoo refuses an unknown account once the message is sent.
        (
            ">>> DATA\n<<< 554 delivery error: dd This user doesn't have a yahoo.com account"
            " (a@yahoo.com) [0] - mta1061.mail.ne1.yahoo.com",
            "a@yahoo.com",
            (),
            True,
        ),
        ("554 delivery error: dd a@yahoo.com is no longer valid. [-20]", "a@yahoo.com", (), False),
        # iCloud's "inactive email address" is a gone address; elsewhere it is a state.
        ("550 5.1.1 <a@icloud.com>: inactive email address", "a@icloud.com", (), True),
        ("550 5.1.1 <a@b.example>: inactive email address", "a@b.example", (), False),
        # Outlook.com's "mailbox unavailable"; the same generic text elsewhere proves nothing.
        (
            "550 Requested action not taken: mailbox unavailable (-0000000022:2222)",
            "a@hotmail.example",
            ("bay004-mc1.hotmail.com",),
            True,
        ),
        ("550 Requested action not taken: mailbox unavailable", "a@hotmail.com", (), True),
        ("550 Requested action not taken: mailbox unavailable", "a@b.example", (), False),
    ],
)
def test_services_own_wordings(
    diagnostic: str, recipient: str, servers: tuple[str, ...], hard: bool
) -> None:
    status = effective_status("", diagnostic)
    assert is_hard(status, diagnostic, recipient=recipient, servers=servers) is hard


def test_a_bounce_forwarded_as_an_attachment_is_read_inside() -> None:
    report = classify(sample("lhost-x5-01.eml"), "fwd")
    assert (report.kind, [r.status for r in report.recipients]) == ("hard_bounce", ["5.1.1"])


# --- robustness ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    report = classify(raw, "random")
    assert report.kind in KINDS
    # Not even thanks to classify's last-resort guard: the reading itself copes.
    assert _classify(message_from_bytes(raw), "random") == report


def _mangle(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(5)
        index = rng.randrange(len(lines))
        if choice == 0:
            del lines[index : index + rng.randint(1, 10)]
        elif choice == 1:
            lines[index] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        elif choice == 2:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif choice == 3:
            lines = lines[: index + 1]
        else:
            lines[index] = lines[index][::-1]
        if not lines:
            lines = [b""]
    return b"\n".join(lines)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(EXPECTED)), seed=st.integers(0, 2**32 - 1))
def test_mangled_messages_still_classify(name: str, seed: int) -> None:
    raw = _mangle(sample(name), random.Random(seed))
    report = classify(raw, name)
    assert _classify(message_from_bytes(raw), name) == report
    assert report.kind in KINDS
    assert all("@" in r.address for r in report.recipients)
    if report.kind in ("hard_bounce",):
        assert report.hard_recipients
    if report.kind != "hard_bounce":
        assert not report.hard_recipients


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"Content-Type: multipart/report; boundary=x\n\n--x\n",
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822;\nAction: failed\n",
        b'Content-Type: text/plain\n\n{"notificationType": "Bounce", "bounce": 3}',
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered\n\n" + b"a@b.example " * 500,
    ],
)
def test_degenerate_messages_classify(raw: bytes) -> None:
    assert classify(raw, "odd").kind in KINDS


# --- readers ---------------------------------------------------------------------------

SOME = ["lhost-gmail-01.eml", "lhost-yahoo-02.eml", "arf-01.eml"]


def test_a_single_message_file(tmp_path: Path) -> None:
    path = DATA / "bounces" / SOME[0]
    assert list(iter_messages(path)) == [(str(path), path.read_bytes())]


def test_an_eml_file_is_one_message_even_when_it_starts_like_an_mbox() -> None:
    # Its first line is an mbox "From " line, and so is a line of the message it returns.
    path = DATA / "bounces" / "rb-issue-368-bug.eml"
    assert path.read_bytes().startswith(b"From ")
    assert path.read_bytes().count(b"\nFrom ") >= 1
    ((source, raw),) = iter_messages(path)
    assert (source, raw) == (str(path), path.read_bytes())


def test_an_mbox_yields_each_message(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for name in SOME:
        box.add(mailbox.mboxMessage(sample(name)))
    box.flush()
    box.close()
    found = list(iter_messages(path))
    assert [source for source, _ in found] == [f"{path}#{n}" for n in (1, 2, 3)]
    kinds = [classify(raw, source).kind for source, raw in found]
    assert kinds == ["hard_bounce", "soft_bounce", "complaint"]


def test_a_maildir_yields_each_message(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(folder, create=True)
    keys = {box.add(mailbox.MaildirMessage(sample(name))): name for name in SOME}
    found = dict(iter_messages(folder))
    assert set(found) == {f"{folder}/new/{key}" for key in keys}
    for source, raw in found.items():
        name = keys[source.rsplit("/", 1)[1]]
        assert classify(raw, source).kind == expected_kind(EXPECTED[name])


def test_a_maildir_message_is_named_by_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file as the operator finds it under the folder they gave, flags and all, not
    the Maildir's key (which drops `cur/` or `new/` and the `:2,S`)."""
    monkeypatch.chdir(tmp_path)
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True)
    (tmp_path / "md" / "cur" / "123.host:2,S").write_bytes(sample(SOME[0]))
    (tmp_path / "md" / "new" / "1.eml").write_bytes(sample(SOME[1]))
    (tmp_path / "md" / "tmp" / "2.eml").write_bytes(sample(SOME[2]))  # not delivered yet
    assert [source for source, _ in iter_messages("md/")] == ["md/new/1.eml", "md/cur/123.host:2,S"]
    found = dict(iter_messages(tmp_path / "md"))
    assert found == {
        f"{tmp_path}/md/new/1.eml": sample(SOME[1]),
        f"{tmp_path}/md/cur/123.host:2,S": sample(SOME[0]),
    }


def test_missing_paths_and_plain_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_messages(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError):
        list(iter_messages(tmp_path))
