"""Retries: 429 and gateway errors are retried with backoff, ``Retry-After`` is waited for, attempts and total time
are bounded, and a write that may have reached the server without an idempotency key is never sent twice.

The misbehaving peer is a real loopback HTTP server (``FlakyProxy``) in front of the real scrip server.
"""

from __future__ import annotations

import logging
import time

import pytest
import trio

from scrip_actor.client import (
    AsyncScripClient,
    RateLimitedError,
    RetryPolicy,
    ScripClient,
    ServerError,
    TransportError,
)
from scrip_actor.model import ProgramCreate
from tests.client.conftest import API_KEY, FAST_RETRY, FlakyProxy, in_thread


async def test_a_429_is_retried_after_the_servers_retry_after(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(429, {"Retry-After": "1"})]
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
        started = time.monotonic()
        program = await client.create_program(ProgramCreate(name="After a wait"))  # 429: nothing was done, so any route
        elapsed_s = time.monotonic() - started
    assert program.name == "After a wait"
    assert elapsed_s >= 1.0  # the backoff alone would have waited at most 0.01 s
    assert [seen.path for seen in flaky_proxy.seen] == ["/v1/programs", "/v1/programs"]


async def test_the_sync_client_waits_for_retry_after_too(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(429, {"Retry-After": "1"}), (503, {})]

    def call() -> tuple[str, float]:
        with ScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
            started = time.monotonic()
            status = client.health().status
            return status, time.monotonic() - started

    status, elapsed_s = await in_thread(call)
    assert status == "ok"
    assert elapsed_s >= 1.0
    assert len(flaky_proxy.seen) == 3


async def test_gateway_errors_on_a_read_are_retried_with_backoff(
    flaky_proxy: FlakyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    flaky_proxy.script = [(502, {}), (503, {}), (504, {})]
    with caplog.at_level(logging.INFO, logger="scrip_actor.client"):
        async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
            page = await client.list_programs()
    assert page.data == []
    assert len(flaky_proxy.seen) == 4
    retries = [record.getMessage() for record in caplog.records if record.name == "scrip_actor.client"]
    assert len(retries) == 3
    assert retries[0].startswith("retrying GET /v1/programs in ")
    assert retries[0].endswith("after 502 (attempt 1 of 4)")


async def test_attempts_are_bounded_and_the_last_error_is_raised(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(503, {})] * 10
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
        with pytest.raises(ServerError) as raised:
            await client.list_programs()
    assert raised.value.status == 503
    assert len(flaky_proxy.seen) == FAST_RETRY.attempts_max


async def test_a_retry_after_beyond_the_total_time_is_not_waited_for(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(429, {"Retry-After": "5"})]
    retry = RetryPolicy(attempts_max=4, total_s=2.0, backoff_initial_s=0.01)
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=retry) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as raised:
            await client.list_programs()
    assert time.monotonic() - started < 1.0
    assert raised.value.retry_after_s == 5.0
    assert raised.value.status == 429
    assert len(flaky_proxy.seen) == 1


async def test_retry_after_as_an_http_date_is_understood(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})]  # in the past: retry at once
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
        assert (await client.list_programs()).data == []
    assert len(flaky_proxy.seen) == 2


async def test_a_write_without_a_key_is_not_repeated_once_it_may_have_arrived(
    flaky_proxy: FlakyProxy, client: AsyncScripClient
) -> None:
    flaky_proxy.script = [("lost", 504)]
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
        with pytest.raises(ServerError) as raised:
            await proxied.create_program(ProgramCreate(name="Once"))
    assert raised.value.status == 504
    assert raised.value.code == "http_504"  # the gateway's page is not the API's error shape
    assert len(flaky_proxy.seen) == 1
    # The server did create it, once: the caller must look before trying again.
    assert [program.name for program in (await client.list_programs()).data] == ["Once"]


async def test_a_refused_connection_is_retried_then_raised_as_a_transport_error() -> None:
    with trio.socket.socket() as probe:  # a port nobody listens on
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncScripClient(f"http://127.0.0.1:{port}", API_KEY, retry=FAST_RETRY) as client:
        with pytest.raises(TransportError) as raised:
            await client.create_program(ProgramCreate(name="Nowhere"))  # never sent: safe to retry even so
    assert raised.value.status is None
    assert f"after {FAST_RETRY.attempts_max} attempt(s)" in raised.value.message
    assert raised.value.__cause__ is not None


def test_a_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts_max"):
        RetryPolicy(attempts_max=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(total_s=-1)
