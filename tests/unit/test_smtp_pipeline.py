"""The pieces of the pipelined SMTP client: replies split and matched in order however the
bytes arrive, the body carried as aiosmtplib carries it, addresses that cannot go into a
command refused, and every reply code given the meaning it has one command at a time."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.delivery.smtp_envelope import plan
from courtois.delivery.smtp_pipeline import (
    ConnectionBroken,
    Reply,
    ReplyReader,
    data_payload,
    envelope,
)
from courtois.delivery.smtp_work import Work, classify, refused
from courtois.delivery.transport import Delivery, Outgoing, SendResult


async def replies_from(*chunks: bytes, count: int, eof: bool = False) -> list[Reply]:
    reader = ReplyReader(asyncio.get_running_loop())
    for chunk in chunks:
        reader.data_received(chunk)
    if eof:
        reader.eof_received()
    return [await reader.reply(1.0) for _ in range(count)]


def test_replies_are_split_in_order_however_the_bytes_arrive() -> None:
    stream = b"250-first line\r\n250 second\r\n354 go ahead\r\n550 5.1.1 no such user\r\n"
    expected = [
        Reply(250, "first line\nsecond"),
        Reply(354, "go ahead"),
        Reply(550, "5.1.1 no such user"),
    ]
    assert asyncio.run(replies_from(stream, count=3)) == expected
    # One byte at a time, and cut anywhere.
    assert (
        asyncio.run(replies_from(*(stream[i : i + 1] for i in range(len(stream))), count=3))
        == expected
    )
    assert asyncio.run(replies_from(stream[:7], stream[7:40], stream[40:], count=3)) == expected


def test_a_reply_that_is_not_smtp_breaks_the_connection() -> None:
    with pytest.raises(ConnectionBroken, match="malformed"):
        asyncio.run(replies_from(b"250 ok\r\nHTTP/1.1 400 Bad Request\r\n", count=2))


def test_replies_received_before_the_server_hung_up_are_still_read() -> None:
    assert asyncio.run(replies_from(b"250 queued\r\n", count=1, eof=True)) == [Reply(250, "queued")]
    with pytest.raises(ConnectionBroken, match="closed"):
        asyncio.run(replies_from(b"250 queued\r\n", count=2, eof=True))


def test_no_reply_in_time_breaks_the_connection() -> None:
    async def wait() -> Reply:
        return await ReplyReader(asyncio.get_running_loop()).reply(0.05)

    with pytest.raises(ConnectionBroken, match="in time"):
        asyncio.run(wait())


@settings(max_examples=300, deadline=None)
@given(
    raw=st.lists(
        st.sampled_from([b"a", b".", b"..", b"\r\n", b"\r", b"\n", b" ", b"\xc3\xa9"]), max_size=30
    ).map(b"".join)
)
def test_the_body_goes_as_aiosmtplib_sends_it(raw: bytes) -> None:
    expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw)) + b".\r\n"
    assert data_payload(raw) == expected


def test_an_envelope_is_one_group_of_three_commands() -> None:
    assert envelope("a@x.test", "b@y.test", smtputf8=False) == (
        b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"
    )
    assert envelope("a@x.test", "bö@y.test", smtputf8=True) == (
        "MAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<bö@y.test>\r\nDATA\r\n".encode()
    )


@pytest.mark.parametrize(
    "recipient", ["b@y.test\r\nRCPT TO:<c@z.test>", "b@y.test>", "<b@y.test", "b\x00@y.test"]
)
def test_an_address_that_would_change_the_commands_is_refused(recipient: str) -> None:
    with pytest.raises(ValueError, match="cannot carry"):
        envelope("a@x.test", recipient, smtputf8=True)


def test_an_international_address_needs_the_server_to_offer_smtputf8() -> None:
    with pytest.raises(ValueError, match="SMTPUTF8"):
        envelope("a@x.test", "bö@y.test", smtputf8=False)


def test_smtputf8_is_asked_for_when_the_message_needs_it_not_only_its_envelope() -> None:
    reply_to = "Reply-To: Jürg <jürg@m.test>\r\n\r\nbody\r\n".encode()
    ascii_raw = b"From: Agora <a@x.test>\r\n\r\nbody\r\n"
    message = Outgoing("m0", "idn@münchen.test", "invitation", ("Jürg",), ("i0",), "s", "t")
    message = replace(message, raw=reply_to, envelope_from="a@x.test")
    offered = plan(message, offered=True)
    assert (offered.sender, offered.recipient) == ("a@x.test", "idn@xn--mnchen-3ya.test")
    assert (offered.smtputf8, offered.raw) == (True, reply_to)
    assert envelope(offered.sender, offered.recipient, offered.smtputf8).startswith(
        b"MAIL FROM:<a@x.test> SMTPUTF8\r\n"
    )
    with pytest.raises(ValueError, match="SMTPUTF8"):
        plan(message, offered=False)
    # The same email without its Reply-To, when there is one, for a server without it.
    without = plan(replace(message, raw_ascii=ascii_raw), offered=False)
    assert (without.smtputf8, without.raw) == (False, ascii_raw)
    # Never for an address that needs SMTPUTF8 itself.
    with pytest.raises(ValueError, match="SMTPUTF8"):
        plan(replace(message, to="bö@y.test", raw_ascii=ascii_raw), offered=False)
    plain = plan(replace(message, raw=ascii_raw), offered=True)
    assert (plain.smtputf8, plain.raw) == (False, ascii_raw)


@pytest.mark.parametrize(
    ("code", "result"),
    [
        (250, SendResult.TEMPORARY),
        (354, SendResult.TEMPORARY),
        (0, SendResult.TEMPORARY),
        (421, SendResult.TEMPORARY),
        (452, SendResult.TEMPORARY),
        (550, SendResult.PERMANENT),
        (554, SendResult.PERMANENT),
    ],
)
def test_a_refused_envelope_is_never_accepted(code: int, result: SendResult) -> None:
    delivery = refused(code, "text", "RCPT")
    assert delivery.result is result
    assert delivery.command == "RCPT"  # the classifier judges "no such user" by it


@pytest.mark.parametrize(
    ("code", "command", "session"),
    [
        (530, "MAIL", True),  # authentication or STARTTLS required: the session's
        (530, "RCPT", True),
        (421, "MAIL", True),  # MAIL names only our sender: the relay's, not the recipient's
        (451, "MAIL", True),
        (550, "MAIL", False),  # refused for good: failed as it always was
        (421, "RCPT", False),  # the recipient's: counts toward its retry deadline
        (451, "RCPT", False),
        (452, "DATA", False),
    ],
)
def test_a_refusal_of_the_session_is_the_relays_not_the_recipients(
    code: int, command: str, session: bool
) -> None:
    delivery = refused(code, "text", command)
    assert delivery.session is session
    if session:
        assert delivery.result is SendResult.TEMPORARY


def test_a_message_whose_mail_got_no_answer_twice_is_the_relays_fault() -> None:
    batch = [Outgoing("m0", "r0@x.test", "invitation", ("Ana",), ("i0",), "s", "t")]
    work = Work(batch, rate=0)
    work.retry(work.left.popleft(), "before data: connection closed", session=True)
    work.retry(work.left.popleft(), "before data: connection closed", session=True)
    (delivery,) = work.deliveries()
    assert (delivery.result, delivery.session) == (SendResult.TEMPORARY, True)


def test_the_final_reply_means_what_it_says() -> None:
    assert [classify(c) for c in (250, 251, 451, 552)] == [
        SendResult.ACCEPTED,
        SendResult.ACCEPTED,
        SendResult.TEMPORARY,
        SendResult.PERMANENT,
    ]


def test_a_message_not_attempted_is_tried_once_more_then_given_up() -> None:
    batch = [
        Outgoing(f"m{i}", f"r{i}@x.test", "invitation", ("Ana",), (f"i{i}",), "s", "t")
        for i in range(3)
    ]
    work = Work(batch, rate=0)
    first = work.left.popleft()
    work.retry(first, "before data: connection lost")
    assert work.left[0] == first  # first in line on the next connection
    assert work.left.popleft() == first
    work.retry(first, "before data: connection lost")
    assert first not in work.left
    work.done(1, Delivery(SendResult.ACCEPTED, 250, "ok"))
    assert [d.result for d in work.deliveries()] == [
        SendResult.TEMPORARY,
        SendResult.ACCEPTED,
        SendResult.TEMPORARY,  # never attempted at all
    ]
    assert work.deliveries()[0].reply == "before data: connection lost"
