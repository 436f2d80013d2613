"""Where webhooks may go: https URLs whose host resolves only to public addresses (SSRF policy).

Refused unless ``webhooks.allow_private_targets``: plain http, ``localhost`` / ``*.localhost`` / ``*.local`` /
``*.internal`` names, and any host with an address that is not globally routable (private, loopback, link-local,
shared, reserved, unspecified) or is multicast. Every resolved address is checked, when an endpoint is saved and
again before every attempt (a name may be re-pointed after it was accepted).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx
import trio

__all__ = ["refusal", "url_problem"]

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
