"""``scrip serve --role front``: settings and API keys as the embedded server loads them, then the front until a signal.

API keys come from ``SCRIP_API_KEY``/``SCRIP_API_KEYS`` or ``<data_dir>/api_keys.json``, exactly as for the
embedded server (scrip_actor/http/auth.py): give every front the same variable, or the same keys file. The data
directory holds nothing else for the front; it is stateless. With ``partitions_dir`` it routes GETs to the
partitions' readers advertised there (_front_reads.py).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import msgspec
import trio

from scrip_actor.config import Config, load_config
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.server import _with_overrides, announce_new_key
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._front_reads import PartitionReaders, open_readers

__all__ = ["FrontOptions", "run_front"]


class FrontOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What ``scrip serve --role front`` was given: the broker, the topic and its partition count."""

    bootstrap: str
    topic: str
    partitions: int
    delivery_timeout_s: float
    partitions_dir: str | None = None  # where the engines advertise their readers; None: reads answer 501


async def _until_signalled(stop: trio.Event, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            stop.set()
            return


@asynccontextmanager
async def _readers(options: FrontOptions) -> AsyncIterator[PartitionReaders | None]:
    if options.partitions_dir is None:
        yield None
        return
    async with open_readers(options.partitions_dir, options.topic, options.partitions) as readers:
        yield readers


async def _main(options: FrontOptions, config: Config, keys: ApiKeys) -> None:
    stop = trio.Event()
    # The log is opened (the topic checked) outside every nursery, so a refusal is a plain ValueError, not a group.
    log_opened = open_event_log(
        options.bootstrap, options.topic, options.partitions, delivery_timeout_s=options.delivery_timeout_s
    )
    async with log_opened as log, _readers(options) as readers, trio.open_nursery() as signals:
        await signals.start(_until_signalled, stop)
        async with trio.open_nursery() as nursery:
            serving = partial(serve_front, log, config, keys, readers=readers, shutdown_trigger=stop.wait)
            port = await nursery.start(serving)
            host = config.server.host
            print(f"scrip: front listening on http://{f'[{host}]' if ':' in host else host}:{port}", flush=True)
        signals.cancel_scope.cancel()


def run_front(
    options: FrontOptions, host: str | None, port: int | None, data_dir: str | None, config_path: str | None
) -> int:
    """Serve the front until SIGINT/SIGTERM; 0 after a clean stop, 2 for unusable settings."""
    if options.partitions < 1:
        print("scrip serve --role front: --partitions must be at least 1", file=sys.stderr)
        return 2
    try:
        config = _with_overrides(load_config(config_path), host, port, data_dir)
        keys, new_key = ApiKeys.load(config.storage.data_dir)
    except (ValueError, OSError) as error:
        print(f"scrip serve: {error}", file=sys.stderr)
        return 2
    announce_new_key(config, new_key)
    try:
        trio.run(_main, options, config, keys)
    except (ValueError, ConnectionError) as error:  # the topic or the broker, checked before serving
        print(f"scrip serve --role front: {error}", file=sys.stderr)
        return 2
    print("scrip: front stopped", file=sys.stderr, flush=True)
    return 0
