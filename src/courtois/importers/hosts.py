"""Which servers a member may make courtois connect to: public ones only, by default.

A CardDAV URL or an IMAP host comes from a member, so without this check a member could
make the service open connections inside the operator's network (its database, its admin
ports, a cloud metadata address) and learn from the answers what listens there. Every
address the name resolves to must be globally routable. The check runs before each
connection, redirects included; a name that resolves differently between the check and the
connection (DNS rebinding) is not caught, which is why operators running courtois next to
sensitive services should also filter its outgoing traffic.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from courtois.domain.errors import InvalidInput

HostCheck = Callable[[str], None]


def public_only(host: str) -> None:
    """Refuse a host that is, or resolves to, a loopback, private or otherwise local address."""
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise InvalidInput(f"The server {name} could not be found.") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise InvalidInput(
                f"The server {name} is on a private network; address books are read only "
                "from public servers.",
                {"host": "not public"},
            )


def any_host(_host: str) -> None:
    """For operators who allow private servers (import_private_hosts = true)."""
