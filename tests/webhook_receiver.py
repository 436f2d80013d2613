"""A webhook receiver for tests: a tiny h11 server on loopback that verifies every delivery's Standard Webhooks
signature with ``standardwebhooks.Webhook.verify``, records what it got, and answers 2xx, 500 or nothing (stall)
on command."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import h11
import trio
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    """One request the receiver got: its headers, its decoded body, and the secrets its signature verified with."""

    headers: dict[str, str]
    body: dict[str, Any]
    verified_with: list[str]


@dataclass
class Receiver:
    """Set ``secrets`` to the endpoint's secrets; ``mode`` says how to answer the next requests."""

    url: str = ""
    secrets: list[str] = field(default_factory=list)
    mode: Literal["ok", "fail", "stall", "flaky"] = "ok"  # flaky: every third request fails
    requests: list[Delivery] = field(default_factory=list)
    unverified: int = 0
    _arrived: trio.Event = field(default_factory=trio.Event)

    @property
    def delivered(self) -> list[Delivery]:
        """The requests answered 2xx."""
        return [delivery for delivery in self.requests if delivery.headers.get("x-answered") == "ok"]

    async def wait_for(self, count: int) -> list[Delivery]:
        """Wait (10 s at most) until ``count`` requests were answered 2xx."""
        with trio.fail_after(10):
            while len(self.delivered) < count:
                self._arrived = trio.Event()
                await self._arrived.wait()
        return self.delivered

    async def wait_until(self, done: Callable[[Receiver], bool]) -> None:
        """Wait (60 s at most) until ``done(self)`` holds, looking again after every request."""
        with trio.fail_after(60):
            while not done(self):
                self._arrived = trio.Event()
                await self._arrived.wait()

    def _verify(self, raw: bytes, headers: dict[str, str]) -> list[str]:
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(raw, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        return verified

    async def _serve(self, stream: trio.SocketStream) -> None:
        connection = h11.Connection(h11.SERVER)
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                connection.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                headers = {name.decode().lower(): value.decode() for name, value in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        raw = b"".join(chunks)
        mode = self.mode
        if mode == "flaky":
            mode = "fail" if len(self.requests) % 3 == 0 else "ok"
        verified = self._verify(raw, headers)
        if not verified:
            self.unverified += 1
        headers["x-answered"] = mode
        self.requests.append(Delivery(headers, json.loads(raw), verified))
        self._arrived.set()
        if mode == "stall":
            await trio.sleep_forever()
        status, body = (200, b"thanks") if mode == "ok" else (500, b"receiver is broken")
        reply = h11.Response(status_code=status, headers=[("content-length", str(len(body))), ("connection", "close")])
        await stream.send_all(
            connection.send(reply) + connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage())
        )
        await stream.aclose()


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A running receiver on a free loopback port."""
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, receiver._serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        receiver.url = f"http://127.0.0.1:{port}/hooks"
        yield receiver
        nursery.cancel_scope.cancel()
