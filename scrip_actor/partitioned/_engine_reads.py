"""A partition's reader: the embedded API's GET routes on that partition's open engine, for the front to route to.

While an engine-role process owns partition ``n`` (``--read-host`` given), it serves the embedded app
(:func:`scrip_actor.http.app.create_app` with ``read_only=True``: every GET route, nothing that writes, no
console) on its own ephemeral port, bound to ``--read-host`` (loopback unless the fronts are on other machines),
and advertises it in ``<partition's data dir>/reader.json`` (:class:`ReaderAdvert`). So a front that knows the
partitions directory finds every partition's reader with one file read, and sees an ownership change the moment
the file changes.

Lifetime, which is what makes the advertisement trustworthy: the reader starts once the partition's store is
open and is advertised only once it listens; on revocation (or exit) the advertisement is withdrawn first, then
the server drains and stops, and only then is the store closed and its lock released. A next owner takes the
store only after that, so it can only overwrite a withdrawn (or, after a SIGKILL, stale) advertisement; a stale
one points at a closed port (the front answers 503) or at a server that refuses its token (also 503).

Authentication: each reader has a fresh random token (its only API key), written in ``reader.json`` (mode 0600);
the front authenticates its client with the client-facing keys and presents the token to the reader. The
engine process needs no API keys of its own.

Production equivalent: fronts on other machines cannot read a file in the engine's data directory. Each engine
publishes the same record to a compacted ``readers`` topic, keyed by partition (a tombstone on revocation),
carrying the group generation so a late record of an old owner is ignored; fronts consume it into memory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import msgspec
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.engine import Engine
from scrip_actor.http.app import HttpLimits, _view, create_app
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import serve_app
from scrip_actor.partitioned._log_records import log_record_endpoint

__all__ = ["READER_FILE", "ReaderAdvert", "read_advert", "serving_reads"]

READER_FILE = "reader.json"
# A revoked partition's reads get this long to finish: the next owner waits for the store behind them.
_SHUTDOWN_GRACE_S = 1.0


class ReaderAdvert(msgspec.Struct, frozen=True, kw_only=True):
    """``reader.json``: where partition ``partition`` of ``topic`` is read, and the token the reader accepts."""

    topic: str
    partition: int
    url: str
    token: str
    pid: int


def read_advert(data_dir: str | os.PathLike[str]) -> ReaderAdvert | None:
    """The advertisement in a partition's data directory, or None if there is none (or it is unreadable)."""
    try:
        raw = (Path(data_dir) / READER_FILE).read_bytes()
        return msgspec.json.decode(raw, type=ReaderAdvert)
    except (OSError, msgspec.DecodeError):
        return None


def _advertise(data_dir: Path, advert: ReaderAdvert) -> None:
    """Write ``reader.json`` whole or not at all (a temporary file renamed over it), readable by its owner only."""
    temporary = data_dir / f".{READER_FILE}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(msgspec.json.encode(advert))
    os.replace(temporary, data_dir / READER_FILE)


def _withdraw(data_dir: Path, token: str) -> None:
    """Remove ``reader.json`` if it is still ours (it always is: the next owner writes only after our close)."""
    advert = read_advert(data_dir)
    if advert is not None and advert.token == token:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / READER_FILE).unlink()


def serving_reads(
    body: Callable[[Engine], Awaitable[int]], config: Config, topic: str, partition: int, host: str | None
) -> Callable[[Engine], Awaitable[int]]:
    """``body`` with partition ``partition``'s reader around it (or ``body`` itself when ``host`` is None).

    The reader serves while ``body`` runs and is withdrawn and stopped before it returns, so it never outlives
    the engine it reads.
    """
    if host is None:
        return body
    data_dir = Path(config.storage.data_dir)

    async def with_reader(engine: Engine) -> int:
        token = secrets.token_urlsafe(24)
        keys = ApiKeys.of(token)
        app = create_app(engine, keys, read_only=True)
        endpoint = log_record_endpoint(topic, partition)  # what became of a 202'd record, from this store
        view = _view(endpoint, engine, keys, HttpLimits())
        app.add_url_rule(endpoint.quart_rule, endpoint=endpoint.name, view_func=view, methods=["GET"])
        settings = Config(server=ServerSettings(host=host, port=0, shutdown_grace_s=_SHUTDOWN_GRACE_S))
        stop = trio.Event()
        failure: Exception | None = None
        result = 0
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve_app, app, settings, shutdown_trigger=stop.wait))
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
            _advertise(data_dir, ReaderAdvert(topic=topic, partition=partition, url=url, token=token, pid=os.getpid()))
            try:
                result = await body(engine)
            except Exception as error:  # re-raised below, outside the nursery: callers see it, not a group of it
                failure = error
            finally:
                _withdraw(data_dir, token)
                stop.set()
        if failure is not None:
            raise failure
        return result

    return with_reader
