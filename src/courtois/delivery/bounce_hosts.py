"""What some mail services mean by their own refusals, where the general reading would
get them wrong. Each rule follows the service's documentation of its error texts (the
same rules as Sisimai's `Sisimai::Rhost::*`), keyed on a wording only that service uses
or on the recipient's domain.

- au by KDDI (ezweb.ne.jp, au.com) answers "550 <a@b>: User unknown" for an address
  that does not exist, and "550 : User unknown", naming nobody, when the recipient's own
  filter refuses the sender (https://www.au.com/support/service/internet/trouble/mail/01/);
  its own notices "The user(s) account is disabled / temporarily limited / temporarily
  over quota" speak of an account that exists, whatever SMTP answer they quote.
- Outlook.com (Hotmail) answers "550 Requested action not taken: mailbox unavailable"
  for a mailbox it does not have (Sisimai's `Rhost::Outlook`; the same text from any
  other server means anything at all, RFC 5321 gives it as the generic 550).
- Apple iCloud answers "550 5.1.1 <a@icloud.com>: inactive email address" for an address
  that is gone (https://support.apple.com/en-us/102322).
- Yahoo accepts any recipient at RCPT TO and refuses an unknown one after the message:
  "554 delivery error: dd This user doesn't have a yahoo.com account", and a closed one
  with "dd ... is no longer valid" (https://senders.yahooinc.com/smtp-error-codes).
"""

from __future__ import annotations

import re

_KDDI_DOMAINS = ("ezweb.ne.jp", "au.com")
_KDDI_UNKNOWN = re.compile(r">:? user unknown", re.IGNORECASE)
_KDDI_EXISTS = re.compile(
    r"\bthe user\(s\) account is (disabled|temporarily limited|temporarily over quota)", re.I
)
_APPLE_DOMAINS = ("icloud.com", "me.com", "mac.com")
_OUTLOOK_DOMAINS = ("hotmail.com", "outlook.com", "live.com", "msn.com")
# Outlook.com's own servers (Microsoft 365's *.protection.outlook.com serve every tenant).
_OUTLOOK_SERVERS = ("hotmail.com",)
_OUTLOOK_GONE = re.compile(r"\brequested action not taken: mailbox unavailable\b", re.I)
_APPLE_GONE = re.compile(r"\binactive email address\b", re.IGNORECASE)
# Sent by any server, the empty-address form says the same: the message was refused,
# not one recipient.
_NOBODY_UNKNOWN = re.compile(r"\b5\d\d:? : user unknown", re.IGNORECASE)
_YAHOO_UNKNOWN = re.compile(r"\bdd this user doesn't have an? [\w.-]+ account", re.IGNORECASE)
_YAHOO_CLOSED = re.compile(r"\bdd \S+ is no longer valid|\bthis mailbox is disabled", re.I)


def host_verdict(recipient: str, servers: tuple[str, ...], text: str) -> tuple[bool, str] | None:
    """Dead (True) or not (False) with the rule that says so, or None when no service's
    own rule applies. A service is known by the recipient's domain or by the name of a
    server that refused or reported the message (`servers`)."""
    if _NOBODY_UNKNOWN.search(text):
        return False, "a user-unknown answer naming nobody: the recipient's filter"
    domain = recipient.rpartition("@")[2].lower()
    if _within(domain, _KDDI_DOMAINS):
        if _KDDI_EXISTS.search(text):
            return False, "au by KDDI: the account exists but is disabled, limited or full"
        if _KDDI_UNKNOWN.search(text):
            return True, "au by KDDI: user unknown naming the address"
    outlook = _within(domain, _OUTLOOK_DOMAINS) or any(
        _within(s, _OUTLOOK_SERVERS) for s in servers
    )
    if outlook and _OUTLOOK_GONE.search(text):
        return True, "Outlook.com: mailbox unavailable"
    if _within(domain, _APPLE_DOMAINS) and _APPLE_GONE.search(text):
        return True, "Apple iCloud: inactive email address"
    if _YAHOO_CLOSED.search(text):
        return False, "Yahoo: a closed or disabled mailbox"
    if _YAHOO_UNKNOWN.search(text):
        return True, "Yahoo: no such account, said after the message"
    return None


def _within(domain: str, domains: tuple[str, ...]) -> bool:
    return any(domain == d or domain.endswith(f".{d}") for d in domains)
