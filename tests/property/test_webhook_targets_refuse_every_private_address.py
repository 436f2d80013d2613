"""The SSRF policy (scrip_actor/webhooks/_targets.py): every address of a private, loopback, link-local, shared,
reserved or multicast network is refused, written plainly or IPv4-mapped, and no URL text makes the check raise."""

from __future__ import annotations

import ipaddress

import trio
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.webhooks._targets import refusal

NON_PUBLIC = [
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
]


@st.composite
def non_public_addresses(draw: st.DrawFn) -> str:
    network = draw(st.sampled_from(NON_PUBLIC))
    address = network[draw(st.integers(0, network.num_addresses - 1))]
    if isinstance(address, ipaddress.IPv4Address) and draw(st.booleans()):
        return f"[::ffff:{address}]"
    return f"[{address}]" if address.version == 6 else str(address)


@given(host=non_public_addresses(), port=st.none() | st.integers(1, 65535), path=st.sampled_from(["", "/", "/h?x=1"]))
def test_every_non_public_address_is_refused(host: str, port: int | None, path: str) -> None:
    url = f"https://{host}{'' if port is None else f':{port}'}{path}"
    problem = trio.run(refusal, url, False)
    assert problem is not None and "non-public" in problem, (url, problem)
    assert trio.run(refusal, url, True) is None  # the setting lets tests reach loopback


@given(st.text(max_size=80))
def test_no_url_text_makes_the_check_raise(text: str) -> None:
    for candidate in (text, "https://" + text, "http://" + text):
        for allow_private in (False, True):
            problem = trio.run(refusal, candidate, allow_private)
            assert problem is None or isinstance(problem, str)
