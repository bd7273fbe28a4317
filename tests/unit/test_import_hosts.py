"""Members' servers must be public: no probing of the operator's own network."""

from __future__ import annotations

import pytest

from courtois.domain.errors import InvalidInput
from courtois.importers.hosts import public_only


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "192.168.0.10", "172.16.5.4", "169.254.169.254",
     "::1", "[::1]", "fe80::1", "fc00::1", "0.0.0.0", "100.64.0.1"]  # noqa: S104,
)  # fmt: skip
def test_local_and_private_addresses_are_refused(host: str) -> None:
    with pytest.raises(InvalidInput, match="private network"):
        public_only(host)


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1"])
def test_documentation_ranges_are_not_public_either(host: str) -> None:
    with pytest.raises(InvalidInput, match="private network"):
        public_only(host)


@pytest.mark.parametrize("host", ["93.184.215.14", "2606:4700:4700::1111", "[2606:4700::1]"])
def test_public_addresses_pass(host: str) -> None:
    public_only(host)


def test_a_name_that_does_not_resolve_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="could not be found"):
        public_only("no-such-host.invalid")
