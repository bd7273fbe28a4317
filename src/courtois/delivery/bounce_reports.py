"""The structured reports: RFC 3464 delivery-status fields, RFC 5965 feedback reports and
Amazon SES notifications, each read into plain data."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

from courtois.delivery.bounce_mime import (
    Failure,
    clean_address,
    decoded,
    embedded,
    field_lines,
    full_text,
    header_addresses,
    unique,
    walk_own,
)


def _fields(text: str) -> list[dict[str, str]]:
    """RFC 3464 field blocks from text: blank-line separated, folded lines joined."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
        elif line[:1] in " \t" and last:
            current[last] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            last = name.strip().lower()
            current[last] = (current.get(last, "") + " " + value.strip()).strip()
    if current:
        blocks.append(current)
    return blocks


def dsn_failures(msg: Message) -> list[Failure]:
    """Per-recipient fields of RFC 3464 delivery-status parts (or of fields quoted in the
    text by servers that do not send MIME reports)."""
    blocks: list[dict[str, str]] = []
    for part in walk_own(msg):
        if part.get_content_type() not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            for block in payload:
                if isinstance(block, Message):
                    fields: dict[str, str] = {}
                    for name, value in block.items():
                        key = name.lower()
                        fields[key] = (fields.get(key, "") + " " + str(value)).strip()
                    blocks.append(fields)
        else:
            blocks.extend(_fields(decoded(part)))
    if not blocks:
        text = full_text(msg)
        if re.search(r"^(final|original)-recipient:", text, re.IGNORECASE | re.MULTILINE):
            blocks = _fields(text)
    failures = []
    reporting = ""
    for fields in blocks:
        reporting = _host(fields.get("reporting-mta", "")) or reporting
        original = clean_address(fields.get("original-recipient", ""))
        final = clean_address(fields.get("final-recipient", ""))
        address = original or final or clean_address(fields.get("x-actual-recipient", ""))
        if not address:
            continue
        diagnostic = fields.get("diagnostic-code", "")
        diagnostic = diagnostic.split(";", 1)[1] if ";" in diagnostic[:12] else diagnostic
        failures.append(
            Failure(
                address=address,
                status=fields.get("status", "").split()[0] if fields.get("status") else "",
                action=fields.get("action", "").split()[0].lower() if fields.get("action") else "",
                diagnostic=" ".join(diagnostic.split()),
                # PowerMTA's own reading of the failure ("bad-mailbox", "quota-issues"...).
                category=fields.get("x-powermta-bouncecategory", "").strip(),
                servers=tuple(h for h in (_host(fields.get("remote-mta", "")), reporting) if h),
            )
        )
    return failures


def _host(field: str) -> str:
    """The host name of an MTA field: "dns; mx.example.org (192.0.2.1)" to
    "mx.example.org"."""
    value = field.split(";", 1)[1] if ";" in field else field
    words = value.split()
    return words[0].strip("[]").lower() if words else ""


def ses_notification(msg: Message) -> dict[str, Any] | None:
    """An Amazon SES notification (JSON, possibly inside an SNS envelope), or None."""
    data: Any
    if msg.is_multipart():
        return None
    text = decoded(msg).strip()
    if not text.startswith("{"):
        return None
    try:
        # Mail transport may fold the long JSON line; the folds are no part of it.
        # SNS appends a footer after the object: read the object only.
        data, _ = json.JSONDecoder().raw_decode(text.replace("\r", "").replace("\n", ""))
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"])
    except ValueError:
        return None
    if isinstance(data, dict) and ("notificationType" in data or "eventType" in data):
        return data
    return None


def ses_failures(data: dict[str, Any]) -> tuple[str, list[Failure]]:
    """The notification's type ("Bounce", "Complaint", "Delivery") and its recipients."""
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    failures: list[Failure] = []
    if kind == "Complaint":
        complaint = data.get("complaint")
        for item in (
            complaint.get("complainedRecipients", []) if isinstance(complaint, dict) else []
        ):
            if isinstance(item, dict) and item.get("emailAddress"):
                failures.append(Failure(clean_address(str(item["emailAddress"]))))
    elif kind == "Bounce":
        bounce = data.get("bounce")
        bounce = bounce if isinstance(bounce, dict) else {}
        permanent = str(bounce.get("bounceType", "")) == "Permanent"
        subtype = str(bounce.get("bounceSubType", ""))
        for item in bounce.get("bouncedRecipients", []):
            if not isinstance(item, dict) or not item.get("emailAddress"):
                continue
            diagnostic = str(item.get("diagnosticCode", "")) + f" ({subtype})"
            status = str(item.get("status", "")) or ("5.0.0" if permanent else "4.0.0")
            failures.append(
                Failure(
                    clean_address(str(item["emailAddress"])),
                    status=status,
                    action=str(item.get("action", "failed")).lower(),
                    diagnostic=diagnostic,
                )
            )
    return kind, failures


# Feedback types (RFC 5965, RFC 6650, RFC 6591) that are a recipient objecting to the
# mail: "abuse" (reported as spam); "fraud" (reported as phishing or forgery: a person
# saw it and wanted none of it, for our mail as much as a spam report); and "opt-out",
# the pre-RFC drafts' removal request, which asks for no more mail. The others change
# nothing: "not-spam" is the opposite of a complaint; "auth-failure" is the receiving
# system's DMARC/DKIM/SPF verdict on how the mail was signed, not a person's word about
# it; "virus" is a scanner's verdict on content (invitations carry no attachment, and
# a false positive must not stop a member); "other" and unknown types say nothing usable.
_COMPLAINTS = frozenset({"abuse", "fraud", "opt-out"})


@dataclass(frozen=True, slots=True)
class Feedback:
    """An ARF report (RFC 5965): its Feedback-Type, lower-cased ("abuse" when the report
    names none, as the older formats do), and the recipients it is about."""

    type: str
    recipients: tuple[str, ...]

    @property
    def is_complaint(self) -> bool:
        """Whether a recipient objected to the mail (see `_COMPLAINTS`)."""
        return self.type in _COMPLAINTS


def feedback_report(msg: Message) -> Feedback | None:
    """The feedback report the message is (RFC 5965, or Hotmail's older format), or None
    when it is none."""
    reports = [p for p in walk_own(msg) if p.get_content_type() == "message/feedback-report"]
    is_arf = bool(reports) or msg.get_param("report-type", header="content-type") == (
        "feedback-report"
    )
    original = embedded(msg)
    hotmail = original is not None and original.get("X-HmXmrOriginalRecipient") is not None
    if not (is_arf or hotmail):
        return None
    found: list[str] = []
    types: list[str] = []
    for report in reports:
        for line in field_lines(report):
            name, _, value = line.partition(":")
            field = name.strip().lower()
            if field in ("original-rcpt-to", "removal-recipient"):
                found.append(clean_address(value))
            elif field == "feedback-type" and value.split():
                types.append(value.split()[0].lower())
    if not found and original is not None:
        for name in ("X-HmXmrOriginalRecipient", "To"):
            found.extend(sorted(header_addresses(original, name)))
            if found:
                break
    return Feedback(types[0] if types else "abuse", tuple(unique([a for a in found if a])))
