"""The framework's ceiling for ``bench.http``: a bare Quart-Trio app that only decodes the event JSON.

``python -m bench.http_bare --port 0`` serves ``POST /v1/events`` and ``POST /v1/events/batch`` with Hypercorn's
trio worker and the very Hypercorn settings ``scrip serve`` uses. Each request's body is decoded with msgspec into
the same :class:`~scrip_actor.model.EventSubmit` type the real server decodes into, and a small JSON answer is sent
back with status 202. No auth, no engine, no metrics: whatever the real server does beyond this is its own cost.
It prints ``bare: listening on http://HOST:PORT`` once bound.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial

import msgspec
import trio
from hypercorn.trio import serve as hypercorn_serve
from quart import Response, request
from quart_trio import QuartTrio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.server import _hypercorn_config
from scrip_actor.model import EventSubmit

__all__ = ["create_bare_app", "main"]

_single = msgspec.json.Decoder(EventSubmit)


class _Batch(msgspec.Struct):
    events: list[EventSubmit]


_batch = msgspec.json.Decoder(_Batch)
_encoder = msgspec.json.Encoder()


def create_bare_app() -> QuartTrio:
    """The decode-only app."""
    app = QuartTrio("bench.http_bare")

    @app.post("/v1/events")
    async def submit() -> Response:
        event = _single.decode(await request.get_data(as_text=False))
        body = _encoder.encode({"idempotency_key": event.idempotency_key, "status": "PENDING"})
        return Response(body, status=202, content_type="application/json")

    @app.post("/v1/events/batch")
    async def submit_batch() -> Response:
        batch = _batch.decode(await request.get_data(as_text=False))
        body = _encoder.encode({"total": len(batch.events), "success_count": len(batch.events)})
        return Response(body, status=202, content_type="application/json")

    return app


async def _serve(host: str, port: int) -> None:
    config = Config(server=ServerSettings(host=host, port=port))
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(hypercorn_serve, create_bare_app(), _hypercorn_config(config)))  # type: ignore[arg-type]
        print(f"bare: listening on {binds[0]}", flush=True)


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(_serve, args.host, args.port)


if __name__ == "__main__":
    main()
