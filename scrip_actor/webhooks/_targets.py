"""Where webhooks may go: https URLs whose host resolves only to public addresses (SSRF policy).

Refused unless ``webhooks.allow_private_targets``: plain http, ``localhost`` / ``*.localhost`` / ``*.local`` /
``*.internal`` names, and any host with an address that is not globally routable (private, loopback, link-local,
shared, reserved, unspecified) or is multicast. Every resolved address is checked, when an endpoint is saved and
again before every attempt (a name may be re-pointed after it was accepted), and a third time by the connection
itself: :class:`CheckedBackend` resolves the name, checks every address and connects to the checked address,
so an answer that changes between the check and the connect (DNS rebinding) cannot reach an internal host.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import trio

__all__ = ["CheckedBackend", "checked_transport", "refusal", "url_problem"]

_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal")


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a target without resolving it (None: it may be, if its addresses are public)."""
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)  # what the client will be given: refused here rather than at send time
        (parts.hostname or "").encode("idna")
    except (ValueError, UnicodeError, httpx.InvalidURL) as error:
        return f"url is not a valid URL ({error})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "url must be an absolute https URL"
    if parts.scheme == "http" and not allow_private:
        return "url must use https"
    if parts.username is not None or parts.password is not None:
        return "url must not carry credentials"
    if parts.fragment:
        return "url must not have a fragment"
    del port
    host = parts.hostname.lower().rstrip(".")
    if not allow_private and (host == "localhost" or host.endswith(_PRIVATE_SUFFIXES)):
        return f"url host {host} is private"
    return None


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def refusal(url: str, allow_private: bool) -> str | None:
    """Why ``url`` is refused now, after resolving its host (None: every address is allowed)."""
    problem = url_problem(url, allow_private)
    if problem is not None or allow_private:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await trio.socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:
        return f"url host {host} does not resolve ({error})"
    addresses = {info[4][0] for info in infos}
    if not addresses:
        return f"url host {host} does not resolve"
    private = sorted(address for address in addresses if not _public(str(address)))
    if private:
        return f"url host {host} resolves to a non-public address ({private[0]})"
    return None


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's trio backend, but a TCP connection goes only to an address the policy allows, resolved here once.

    httpcore hands ``connect_tcp`` the URL's host name; this resolves it, refuses (``httpcore.ConnectError``, which
    httpx raises as ``httpx.ConnectError``) if any address is not public, and connects to the checked addresses
    themselves, never to the name. TLS still verifies the certificate against the URL's host (httpcore passes it
    as ``server_hostname`` to ``start_tls``), so pinning the address weakens nothing. With ``allow_private`` it is
    the plain trio backend. Unix sockets are never a target.
    """

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.TrioBackend()
        self._allow_private = allow_private

    async def connect_tcp(  # the signature is httpcore's AsyncNetworkBackend's, timeout included
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        connect = self._inner.connect_tcp
        if self._allow_private:
            return await connect(host, port, timeout, local_address, socket_options)
        try:
            with trio.fail_after(timeout if timeout is not None else math.inf):
                infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError, trio.TooSlowError) as error:
            raise httpcore.ConnectError(f"host {host} does not resolve ({error})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        private = [address for address in addresses if not _public(address)]
        if not addresses or private:
            found = private[0] if private else "no address"
            raise httpcore.ConnectError(f"host {host} resolves to a non-public address ({found}): refused")
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # in the resolver's order, as a plain connect would try them
            try:
                return await connect(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a unix socket is not a webhook target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def checked_transport(allow_private: bool) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through :class:`CheckedBackend`.

    httpx does not take a network backend as an argument, so the transport's pool (an ``httpcore``
    ``AsyncConnectionPool``, which does) gets it after construction; the webhook tests send through this transport
    to a loopback receiver and expect the refusal, so a change of httpx's insides fails them, not the policy.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool), "httpx's transport no longer wraps an httpcore pool"
    assert hasattr(pool, "_network_backend"), "httpcore's pool no longer keeps its network backend"
    pool._network_backend = CheckedBackend(allow_private)
    return transport
