"""Running the HTTP server: :func:`run_server` for ``scrip serve``, :func:`serve` for tests and embedding.

One task tree, outermost first::

    trio.run(_main)
      open_engine(config)            # the engine's nursery: writer, actors, sweeper
        serve(engine, config, ...)   # hypercorn.trio.serve inside the engine's lifetime
          connections ...

Shutdown (Ctrl-C or SIGTERM): the signal sets the shutdown trigger; Hypercorn stops accepting, gives in-flight
requests up to ``server.shutdown_grace_s`` to finish, and returns; then ``open_engine`` exits, committing
everything appended and closing LMDB. A second signal while shutting down is ignored: the grace period bounds
the wait.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import msgspec
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from scrip_actor._gc import tune_for_long_lived_heap
from scrip_actor.config import Config, load_config
from scrip_actor.engine import Engine, open_engine
from scrip_actor.http import protocol_errors
from scrip_actor.http.app import HttpLimits, create_app
from scrip_actor.http.auth import KEYS_FILE_NAME, ApiKeys
from scrip_actor.store import WriterFailed
from scrip_actor.webhooks._secrets import SecretBox

__all__ = ["run_server", "serve"]

log = logging.getLogger("scrip_actor.http.server")


def _hypercorn_config(config: Config) -> HypercornConfig:
    hyper = HypercornConfig()
    host = config.server.host
    hyper.bind = [f"[{host}]:{config.server.port}" if ":" in host else f"{host}:{config.server.port}"]
    hyper.graceful_timeout = config.server.shutdown_grace_s
    hyper.accesslog = None
    hyper.errorlog = logging.getLogger("scrip_actor.http.hypercorn")
    return hyper


async def serve(
    engine: Engine,
    config: Config,
    keys: ApiKeys,
    *,
    limits: HttpLimits | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API for an open ``engine`` until ``shutdown_trigger`` returns (or the task is cancelled).

    Binds ``config.server.host:port`` (port 0 picks a free one) and reports the bound port through
    ``task_status.started(port)``, so a test can write ``port = await nursery.start(serve, engine, config, keys)``.
    """
    await serve_app(
        create_app(engine, keys, limits), config, shutdown_trigger=shutdown_trigger, task_status=task_status
    )


async def serve_app(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a Quart-Trio ``app`` on ``config.server.host:port`` with Hypercorn; reports the bound port.

    Shared by the embedded server and the partitioned front role, so both answer Hypercorn's own errors in the
    API's shape and bind, log and drain the same way.
    """
    protocol_errors.install()  # Hypercorn's own 400/431/501 answers in the API's error shape (docs/http.md)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn_serve, app, _hypercorn_config(config), shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]
        )
        port = int(binds[0].rsplit(":", 1)[1])
        task_status.started(port)


def announce_new_key(config: Config, new_key: str | None) -> None:
    """Print an API key created on first start, once: only its hash is stored."""
    if new_key is not None:
        print(
            f"scrip: created an API key (shown once; only its hash is kept in "
            f"{config.storage.data_dir}/{KEYS_FILE_NAME}):\n    {new_key}",
            file=sys.stderr,
            flush=True,
        )


async def _signalled(done: trio.Event, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            print(f"scrip: {signal.Signals(signum).name} received, shutting down", file=sys.stderr, flush=True)
            done.set()
            return


async def _main(config: Config, keys: ApiKeys) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as signals:
        await signals.start(_signalled, stop)
        async with open_engine(config=config) as engine, trio.open_nursery() as nursery:
            if config.server.gc_tuned:  # the recovered heap lives as long as the process: out of the GC's scans
                tune_for_long_lived_heap()
            port = await nursery.start(partial(serve, engine, config, keys, shutdown_trigger=stop.wait))
            host = config.server.host
            print(f"scrip: listening on http://{f'[{host}]' if ':' in host else host}:{port}", flush=True)
        signals.cancel_scope.cancel()


def _with_overrides(config: Config, host: str | None, port: int | None, data_dir: str | None) -> Config:
    server = msgspec.structs.replace(
        config.server,
        host=host if host is not None else config.server.host,
        port=port if port is not None else config.server.port,
    )
    storage = msgspec.structs.replace(
        config.storage, data_dir=data_dir if data_dir is not None else config.storage.data_dir
    )
    return msgspec.structs.replace(config, server=server, storage=storage)


def run_server(host: str | None, port: int | None, data_dir: str | None, config_path: str | None) -> int:
    """``scrip serve``: load settings, apply the command line's overrides, serve until Ctrl-C or SIGTERM.

    Returns:
        The process exit status: 0 after a clean shutdown, 2 for unusable settings, 3 when a commit failed (the
        engine is fail-stop: a full map or disk stops the server with a one-line reason, after the traceback).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _with_overrides(load_config(config_path), host, port, data_dir)
        keys, new_key = ApiKeys.load(config.storage.data_dir)
        webhooks = config.webhooks  # a bad webhook key is a settings error (exit 2), like the others
        SecretBox(webhooks.secret_key, webhooks.secret_key_file, config.storage.data_dir).check()
    except (ValueError, OSError) as error:
        print(f"scrip serve: {error}", file=sys.stderr)
        return 2
    announce_new_key(config, new_key)
    try:
        trio.run(_main, config, keys)
    except BaseException as error:
        failure = _commit_failure(error)
        if failure is None:
            raise
        log.error("the store failed to commit; stopping", exc_info=error)
        print(
            f"scrip: stopped: the store could not commit ({failure}). Fail-stop: every request answered with a "
            f"success is on disk, nothing after the failure was acknowledged. Fix the cause (a full store: raise "
            f"storage.lmdb_map_size_bytes or free disk space) and start again.",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_COMMIT_FAILED
    print("scrip: stopped", file=sys.stderr, flush=True)
    return 0


EXIT_COMMIT_FAILED = 3


def _commit_failure(error: BaseException) -> WriterFailed | None:
    """The writer's failure inside ``error`` (possibly nested in exception groups), or None."""
    if isinstance(error, WriterFailed):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _commit_failure(inner)
            if found is not None:
                return found
    return None
