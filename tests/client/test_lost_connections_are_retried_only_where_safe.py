"""A server that drops the connection, or never answers, after reading the request: reads are retried up to the
attempt limit, then a TransportError; a write without a key is sent once, since it may have been done.

The peer is a raw loopback TCP server that reads a request and then misbehaves, as a crashing or hung server
would; the client's read timeout (``timeout_s``) bounds the wait for a silent one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio

from scrip_actor.client import AsyncScripClient, RetryPolicy, TransportError
from scrip_actor.model import ProgramCreate
from tests.client.conftest import API_KEY

_RETRY = RetryPolicy(attempts_max=3, total_s=10.0, backoff_initial_s=0.01, backoff_max_s=0.02)


class BrokenPeer:
    """Counts requests; ``silent`` holds the connection open without answering, else it closes it."""

    def __init__(self, *, silent: bool) -> None:
        self.silent = silent
        self.requests = 0
        self.base_url = ""

    async def handle(self, stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = await stream.receive_some()
            if not chunk:
                return
            received += chunk
        self.requests += 1
        if self.silent:
            await trio.sleep_forever()
        await stream.aclose()


async def _serve(peer: BrokenPeer) -> AsyncIterator[BrokenPeer]:
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(partial(trio.serve_tcp, peer.handle, 0, host="127.0.0.1"))
        peer.base_url = f"http://127.0.0.1:{listener.socket.getsockname()[1]}"
        yield peer
        nursery.cancel_scope.cancel()


@pytest.fixture
async def dropping() -> AsyncIterator[BrokenPeer]:
    async for peer in _serve(BrokenPeer(silent=False)):
        yield peer


@pytest.fixture
async def silent() -> AsyncIterator[BrokenPeer]:
    async for peer in _serve(BrokenPeer(silent=True)):
        yield peer


async def test_a_dropped_read_is_retried_up_to_the_limit(dropping: BrokenPeer) -> None:
    async with AsyncScripClient(dropping.base_url, API_KEY, retry=_RETRY) as client:
        with pytest.raises(TransportError) as raised:
            await client.list_programs()
    assert dropping.requests == _RETRY.attempts_max
    assert isinstance(raised.value.__cause__, httpx.RemoteProtocolError)
    assert "failed after 3 attempt(s)" in raised.value.message


async def test_a_dropped_write_without_a_key_is_sent_once(dropping: BrokenPeer) -> None:
    async with AsyncScripClient(dropping.base_url, API_KEY, retry=_RETRY) as client:
        with pytest.raises(TransportError):
            await client.create_program(ProgramCreate(name="Maybe"))
    assert dropping.requests == 1


async def test_a_silent_server_times_out_per_attempt(silent: BrokenPeer) -> None:
    async with AsyncScripClient(silent.base_url, API_KEY, timeout_s=0.2, retry=_RETRY) as client:
        with trio.fail_after(5), pytest.raises(TransportError) as raised:
            await client.get_program("prg_x")
    assert silent.requests == _RETRY.attempts_max
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert "timed out" in raised.value.message
