"""Feedback reports (RFC 5965): only a recipient's objection is a complaint. A DMARC
failure report (RFC 6591, `auth-failure`) or a "not spam" report is told, and is no
complaint; `abuse`, `fraud` and the drafts' `opt-out` are.

The samples are in tests/data/bounces (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from courtois.delivery.bounces import classify

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces"


def report_of(feedback_type: str) -> bytes:
    """A minimal feedback report of this type about r@dest.example."""
    return (
        "From: <fbl@provider.example>\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
        "--B\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nVersion: 1\r\n"
        "Original-Rcpt-To: <r@dest.example>\r\n\r\n--B--\r\n"
    ).encode()


@pytest.mark.parametrize("name", ["arf-18.eml", "arf-19.eml", "arf-20.eml"])
def test_a_dmarc_failure_report_is_no_complaint(name: str) -> None:
    report = classify((DATA / "cases" / name).read_bytes(), name)
    assert (report.kind, report.feedback) == ("not_a_bounce", "auth-failure")
    assert report.recipients
    assert not any(r.hard for r in report.recipients)
    assert set(report.as_dict()) == {"source", "kind", "recipients"}


@pytest.mark.parametrize("feedback_type", ["not-spam", "auth-failure", "virus", "other", "x-new"])
def test_reports_that_are_no_objection_are_told_and_no_complaint(feedback_type: str) -> None:
    report = classify(report_of(feedback_type), "t")
    assert (report.kind, report.feedback) == ("not_a_bounce", feedback_type)
    assert [(r.address, r.hard) for r in report.recipients] == [("r@dest.example", False)]


@pytest.mark.parametrize("feedback_type", ["abuse", "Abuse", "fraud", "opt-out"])
def test_a_recipients_objection_is_a_complaint(feedback_type: str) -> None:
    report = classify(report_of(feedback_type), "t")
    assert (report.kind, report.feedback) == ("complaint", "")
    assert [r.address for r in report.recipients] == ["r@dest.example"]


def test_older_reports_without_a_type_stay_complaints() -> None:
    # Hotmail's format names no Feedback-Type.
    report = classify((DATA / "bounces" / "arf-22.eml").read_bytes(), "arf-22")
    assert report.kind == "complaint"
