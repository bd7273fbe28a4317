"""The server's words, sorted by what they say about the address.

`DEAD`: the address is dead (no such user, no such domain, moved). `DOMAIN_GONE`: the
part of those about the domain or a move rather than one user. `SOFT`: the address is
fine but something else failed (full, blocked, spam, policy, later). `VAGUE`: refusal
words that go with either. `OWN_DIRECTORY`: the words of a mail system that looked the
user up in its own directory or delivered locally (Domino, Notes, Exchange, IMail,
mail.local), the last word on whether a mailbox exists.
"""

from __future__ import annotations

import re

# "x.example does not exist" is matched only from the start of the host name, so that a
# long dotted word is scanned once, not once per dot.
DEAD = re.compile(
    "|".join(
        (
            r"\b(user|recipient|addressee|mailbox|account|address|destination|local part)"
            r"( name)?( is)? (unknown|not known|does ?n[o']t exist|not found|did not exist"
            r"|doesn't exist|not listed|not exist|no longer exists|has been (removed|deleted))",
            r"\bunknown (local[ -]?part|user|recipient|address|mailbox|account|alias)(?! error)",
            r"\bno such (user|mailbox|recipient|address|account|person|local user|domain)",
            r"\b(invalid|bad|illegal|non-?existent|unknown) (e-?mail |destination )?"
            r"(recipient|mailbox|address|user|account)(?! error)",
            r"\bnot (a )?(valid|known|registered) (user|recipient|mailbox|address|account)",
            r"\bno (mailbox|account|user) (here )?(by that name|with that name|found)",
            r"\b(mailbox|account|user|address) (is )?(not found|unavailable|inexistent)",
            r"\b(user|recipient|address|mailbox) (not|no longer) (found|valid|available)",
            r"\brecipient (address )?rejected: (undeliverable|user unknown|unknown|no such)",
            r"\bunrouteable (mail )?(address|domain)|\bunroutable (address|domain)",
            r"\b(host|domain)( name)?( or domain name)? (is )?(not found|unknown|not exist"
            r"|does not exist|doesn't exist|lookup failed)",
            r"\b(unknown|invalid|non-?existent|bad) (host|domain)\b|\bhost [\w.-]+ not found",
            r"\bnxdomain\b|\bno mx (record|host)|\bnull mx\b",
            r"\bdoes not accept (e-?)?mail",
            r"\bhas moved\b|\bmoved (permanently|to)\b|\bno longer (at|with) ",
            r"\b(mailbox|account|address) (was |has been )?(permanently )?"
            r"(deleted|removed|closed|terminated)",
            r"\bpermanently (disabled|deactivated|deleted)",
            r"\bthe email account that you tried to reach does not exist",
            r"\bdoesn't have an? [\w.-]+ account",
            r"\bnot our (customer|user)|\bno such domain",
            r"\brecipient not in (the )?(directory|list)",
            r"\buser doesn't exist|\buser not exist|\bno valid recipients",
            r"\b(recipient|user|address|name) (is )?not recogni[sz]ed",
            r"\bnot listed in (the )?([\w ]+ )?(directory|address book)",
            r"\binvalid (final delivery )?userid|\bindicated no smtp service",
            r"\bnot accepting network messages|\bdomain (is )?not reachable",
            r"\bcould ?n[o']t find (a |any )?mail exchanger|\bno mx (found|for)",
            r"\brecipient address rejected: access denied|\brecipient address rejected(\.|$)",
            r"\b(?<![a-z0-9.-])[a-z0-9-]+(\.[a-z0-9-]+)+ does not exist",
            r"(ユーザ|アドレス|宛先|ディレクトリ).{0,20}(見つかりません|存在しません|ありません)",
        )
    ),
    re.IGNORECASE,
)

# The dead words about the domain (or a moved mailbox) rather than one user: a server
# says these about the whole destination, at whatever step of the dialogue.
DOMAIN_GONE = re.compile(
    "|".join(
        (
            r"\bunrouteable (mail )?(address|domain)|\bunroutable (address|domain)",
            r"\b(host|domain)( name)?( or domain name)? (is )?(not found|unknown|not exist"
            r"|does not exist|doesn't exist|lookup failed)",
            r"\b(unknown|invalid|non-?existent|bad) (host|domain)\b|\bhost [\w.-]+ not found",
            r"\bnxdomain\b|\bno mx (record|host)|\bnull mx\b|\bno such domain",
            r"\bdoes not accept (e-?)?mail|\bindicated no smtp service",
            r"\bnot accepting network messages|\bdomain (is )?not reachable",
            r"\bcould ?n[o']t find (a |any )?mail exchanger|\bno mx (found|for)",
            r"\b(?<![a-z0-9.-])[a-z0-9-]+(\.[a-z0-9-]+)+ does not exist",
            r"\bhas moved\b|\bmoved (permanently|to)\b|\bno longer (at|with) ",
        )
    ),
    re.IGNORECASE,
)

SOFT = re.compile(
    "|".join(
        (
            # The mailbox is there but cannot take this message now.
            r"\b(mail ?box|inbox|mail folder|account|disk|storage) (is )?(full|over ?quota)",
            r"\bover ?quota|\bquota\b|\binsufficient (disk )?(space|storage)",
            r"\bexceeded? (the )?(storage|quota|maximum size|size limit|its)",
            r"\bmailbox size limit|\bno (more )?space|\bout of (disk )?space",
            r"\btoo (big|large)|\bsize (limit|exceeds)|\bexceeds? .{0,30}size",
            # The sender or the message, not the address, is refused.
            r"\bspam|\bjunk|\bbl[ao]ck ?list|\bdenylist|\bdnsbl|\brbl\b|spamhaus|spamcop",
            r"\bbarracuda|\breputation|\bcontent (rejected|filter|violation)|\bfilter",
            r"\bvirus|\bmalware|\bphish|\bblocked|\bbanned|\brelay|\bpolicy|\bpolicies",
            r"\bspf\b|\bdkim\b|\bdmarc\b|\bauthenticat|\bptr\b|\breverse (dns|lookup)",
            r"\brdns\b|\bstarttls|\btls\b|\bcertificate|\bencrypt",
            r"\bunsolicited|\bbulk mail|\bsuspicious",
            # Later might work.
            r"\bgr[ae]ylist|\btry (again )?later|\brate limit|\btoo many|\bthrottl",
            r"\btemporar|\bdeferr|\bdelayed|\bexpired|\btime[d ]?out|\bretry",
            r"\bconnection (refused|timed out|reset|lost|closed|dropped)|\bunreachable",
            r"\bname server reply|\bservfail|\bdns (error|failure|timeout|temporar)",
            r"\bsuspend|\bfrozen|\bon hold|\binactive|\bdisabled|\blocked",
            r"\bmail (system|server) (error|failure)|\bsystem error|\bmail loop",
        )
    ),
    re.IGNORECASE,
)
# Refusal words that go with dead addresses as often as with anything else ("Recipient
# address rejected: Access denied" is how Exchange Online says no such user).
VAGUE = re.compile(
    r"\bdenied\b|\bnot (allowed|authorized|authorised|permitted)|\bprohibited|\bforbidden"
    r"|\bsecurity|\bsender|\bdeclined|\bsyntax|\bmalformed|\bnot (rfc|compliant)"
    r"|\bconfig|\bnot accepting (mail|messages) from|\bloop",
    re.IGNORECASE,
)
OWN_DIRECTORY = re.compile(
    "|".join(
        (
            r"\bnot listed in (the )?([\w&.' -]+ )?(directory|address book)",
            r"ディレクトリ",
            r"\brecipient name is not recognized|\bresolver\.adr\.|\bby smtp address lookup",
            r"\binvalid final delivery userid|\bmail\.local\b",
        )
    ),
    re.IGNORECASE,
)
