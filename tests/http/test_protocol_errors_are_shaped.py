"""Requests Hypercorn refuses before the app sees them (431, bad framing, 501) still get the JSON error shape.

Sent over raw sockets on loopback, since an HTTP client library will not write such requests.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from tests.http.conftest import Api

_RESPONSE_BYTES_MAX = 64 * 1024


async def _raw(api: Api, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; read until the server closes; return (status, headers, body)."""
    port = int(api.base_url.rsplit(":", 1)[1])
    received = b""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request)
            while len(received) < _RESPONSE_BYTES_MAX:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


CASES: dict[str, tuple[bytes, int, str]] = {
    "headers too large": (
        # No blank line: h11 gives up once the unfinished head passes h11_max_incomplete_size (16 KiB).
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (40 * 1024),
        431,
        "headers_too_large",
    ),
    "not HTTP at all": (b"hello there, server\r\n\r\n", 400, "malformed_request"),
    "bad header line": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "malformed_request"),
    "two content lengths": (
        b"POST /v1/programs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "content length not a number": (
        b"POST /v1/programs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        400,
        "malformed_request",
    ),
    "unsupported transfer encoding": (
        b"POST /v1/programs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "not_implemented",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_hypercorn_refusals_carry_the_error_body(api: Api, case: str) -> None:
    request, status, code = CASES[case]
    got_status, headers, body = await _raw(api, request)
    assert got_status == status, (case, got_status, body)
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    decoded: dict[str, Any] = msgspec.json.decode(body)
    assert decoded["code"] == code
    assert set(decoded) == {"code", "message", "details", "request_id"}
    assert decoded["request_id"] == headers["x-request-id"] and decoded["request_id"].startswith("req_")
    assert decoded["message"]


async def test_the_server_still_answers_after_a_refusal(api: Api) -> None:
    await _raw(api, CASES["not HTTP at all"][0])
    assert (await api.ok("GET", "/healthz"))["status"] == "ok"
