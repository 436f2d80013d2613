"""A webhook connection goes only to an address the SSRF policy checked: the one it connects to.

The policy is checked when an endpoint is saved and before every attempt (docs/webhooks.md), but a name whose DNS
answer changes between that check and the connect (rebinding) used to reach whatever the second answer named. The
transport's backend now resolves once, checks, and connects to the checked address. The resolver below is trio's
documented hook (``trio.socket.set_custom_hostname_resolver``), standing in for a DNS server that changes its
answer; everything else is the real client, the real backend and a real loopback listener.
"""

from __future__ import annotations

import socket
from typing import Any

import httpcore
import httpx
import pytest
import trio

from scrip_actor.webhooks._targets import CheckedBackend, checked_transport, refusal

PUBLIC = "93.184.216.34"  # a globally routable address (never connected to: the test refuses before that)


class _Rebinding(trio.abc.HostnameResolver):
    """Answers ``rebind.example`` with a public address first, then with loopback (a rebinding DNS server)."""

    def __init__(self, loopback_port: int) -> None:
        self.answers = 0
        self.loopback_port = loopback_port

    async def getaddrinfo(self, host: Any, port: Any, family: int = 0, kind: int = 0, proto: int = 0, flags: int = 0):
        name = host.decode() if isinstance(host, bytes) else host
        if name != "rebind.example":
            return await trio.to_thread.run_sync(socket.getaddrinfo, host, port, family, kind, proto, flags)
        self.answers += 1
        address = PUBLIC if self.answers == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    async def getnameinfo(self, sockaddr: Any, flags: int) -> Any:
        raise NotImplementedError


async def _listener(nursery: trio.Nursery) -> tuple[int, list[bytes]]:
    """A loopback HTTP/1.1 receiver answering 200 to everything; returns its port and what it received."""
    received: list[bytes] = []
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        data = await stream.receive_some(65536)
        received.append(data)
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return listeners[0].socket.getsockname()[1], received


async def test_a_rebound_name_passes_the_check_but_is_refused_at_connect() -> None:
    async with trio.open_nursery() as nursery:
        port, received = await _listener(nursery)
        resolver = _Rebinding(port)
        trio.socket.set_custom_hostname_resolver(resolver)
        url = f"https://rebind.example:{port}/hook"
        assert await refusal(url, allow_private=False) is None  # the first answer is public: the check passes
        async with httpx.AsyncClient(transport=checked_transport(False), trust_env=False) as client:
            with pytest.raises(httpx.ConnectError, match="non-public address \\(127.0.0.1\\)"):
                await client.post(url, content=b"{}")
        assert resolver.answers == 2
        assert received == []  # nothing reached the loopback receiver
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "169.254.169.254", "10.0.0.1"])
async def test_the_backend_refuses_private_addresses(host: str) -> None:
    with pytest.raises(httpcore.ConnectError, match="non-public|does not resolve"):
        await CheckedBackend(allow_private=False).connect_tcp(host, 9, timeout=5.0)


async def test_the_backend_refuses_unix_sockets() -> None:
    with pytest.raises(httpcore.ConnectError, match="unix socket"):
        await CheckedBackend(allow_private=True).connect_unix_socket("/tmp/anything.sock")


async def test_the_transport_really_uses_the_backend() -> None:
    """Through httpx: refused to loopback by default, delivered with allow_private (the tests' receiver setting)."""
    async with trio.open_nursery() as nursery:
        port, received = await _listener(nursery)
        async with httpx.AsyncClient(transport=checked_transport(False), trust_env=False) as client:
            with pytest.raises(httpx.ConnectError, match="non-public"):
                await client.post(f"http://127.0.0.1:{port}/hook", content=b"{}")
        assert received == []
        async with httpx.AsyncClient(transport=checked_transport(True), trust_env=False) as client:
            response = await client.post(f"http://127.0.0.1:{port}/hook", content=b'{"a":1}')
        assert response.status_code == 200
        assert len(received) == 1
        assert received[0].startswith(b"POST /hook HTTP/1.1")
        nursery.cancel_scope.cancel()
