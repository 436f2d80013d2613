"""The answers Hypercorn gives itself to an HTTP/1.1 request it cannot parse, in the API's ``{code, message, details}``.

A request that h11 cannot parse never reaches the app: headers over ``h11_max_incomplete_size`` (431), a bad
request line, header or framing (400), a ``Transfer-Encoding`` other than ``chunked`` (501). Hypercorn answers
those from ``H11Protocol._send_error_response(status_code)`` with an empty body, and offers no setting or hook to
change it. That method is the one place all of them go through, its signature has not changed since Hypercorn 0.11
(2020), and the version is pinned in ``requirements.txt``; so :func:`install` wraps it, once, to send the same
status with a JSON body, ``Content-Type: application/json``, an ``X-Request-Id`` and ``Connection: close``.

If a future Hypercorn drops or changes that method, :func:`install` leaves it alone, logs a warning and returns
False: those errors are then empty-bodied again (still the right status), and
``tests/http/test_protocol_errors_are_shaped.py`` fails so the upgrade is noticed. What cannot be shaped at all
is listed in docs/http.md ("Errors the server cannot shape").
"""

from __future__ import annotations

import inspect
import logging
import secrets
from itertools import chain
from typing import Any

import h11
import msgspec
from hypercorn.protocol import h11 as hypercorn_h11

from scrip_actor.http.errors import ErrorBody

__all__ = ["PROTOCOL_ERRORS", "install"]

log = logging.getLogger("scrip_actor.http.protocol_errors")

# Status -> (code, message). h11 only ever hints these three; anything else gets the generic 400 text.
PROTOCOL_ERRORS: dict[int, tuple[str, str]] = {
    400: ("malformed_request", "the request is not well-formed HTTP/1.1 (request line, headers or body framing)"),
    431: ("headers_too_large", "the request line and headers are too large"),
    501: ("not_implemented", "unsupported Transfer-Encoding: only chunked is accepted"),
}

_encoder = msgspec.json.Encoder()


def _body(status_code: int) -> tuple[bytes, str]:
    code, message = PROTOCOL_ERRORS.get(status_code, PROTOCOL_ERRORS[400])
    request_id = "req_" + secrets.token_hex(8)
    body = ErrorBody(code=code, message=message, details={"status": status_code}, request_id=request_id)
    return _encoder.encode(body), request_id


async def _send_shaped_error_response(self: Any, status_code: int) -> None:
    """Hypercorn's ``_send_error_response`` with a JSON body (same status, same ``Connection: close``)."""
    body, request_id = _body(status_code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
    ]
    response = h11.Response(status_code=status_code, headers=list(chain(headers, self.config.response_headers("h11"))))
    await self._send_h11_event(response)
    await self._send_h11_event(h11.Data(data=body))
    await self._send_h11_event(h11.EndOfMessage())


_send_shaped_error_response.scrip_shaped = True  # type: ignore[attr-defined]


def install() -> bool:
    """Make Hypercorn's own HTTP/1.1 error answers carry the error body; idempotent. False if it cannot."""
    protocol = hypercorn_h11.H11Protocol
    current = getattr(protocol, "_send_error_response", None)
    if getattr(current, "scrip_shaped", False):
        return True
    expected = ["self", "status_code"]
    if (
        current is None
        or not inspect.iscoroutinefunction(current)
        or list(inspect.signature(current).parameters) != expected
    ):
        log.warning("hypercorn's H11Protocol._send_error_response changed; its protocol errors keep empty bodies")
        return False
    protocol._send_error_response = _send_shaped_error_response  # type: ignore[method-assign]
    return True
