"""Whether a report is about our email: our Message-IDs and our sending domain are known
by their DNS form, however the configuration or the report writes an internationalised
sending domain."""

from __future__ import annotations

import pytest

from courtois.delivery.bounce_origin import ours, sent_by_us

ID = "01a22f15-2036-78f5-b571-84bb2742e151"


@pytest.mark.parametrize("configured", ["bücher.example", "xn--bcher-kva.example"])
@pytest.mark.parametrize("quoted", ["xn--bcher-kva.example", "BÜCHER.example", "bücher.example"])
def test_an_internationalised_sending_domain_is_ours_in_either_form(
    configured: str, quoted: str
) -> None:
    assert ours((f"{ID}@{quoted}",), configured) == (ID,)
    assert sent_by_us((f"invitations@{quoted}",), configured)


def test_another_domain_is_not_ours() -> None:
    for other in ("xn--bchr-kva.example", "bucher.example", "bücher.example.org", "@@"):
        assert ours((f"{ID}@{other}",), "bücher.example") == ()
        assert not sent_by_us((f"invitations@{other}",), "bücher.example")
    assert ours((f"{ID}@agora.example",), "Agora.Example") == (ID,)
