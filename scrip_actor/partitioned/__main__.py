"""``python -m scrip_actor.partitioned engine ...``: run the engine role for one partition (until killed).

Prints ``READY <offset> <unix time>`` once the store is open and reading resumes at ``offset``, and
``DONE <offset> <unix time>`` when ``--until-offset`` is reached and every event is processed (the times let
bench.partitioned measure the applying alone, without the process's start-up).

Without ``--partition`` it is a consumer-group member (``--group``, :mod:`._engine_group`): the broker assigns
the partitions, and it prints ``ASSIGNED <n> <offset> <unix time>`` when it opens partition ``n`` (resuming at
``offset``) and ``REVOKED <n> <offset> <unix time>`` once it has closed it; ``--until-offsets E0,E1,...`` makes it
exit (``DONE``) once it owns every partition ``n`` and has applied every record below ``En``.

``--read-host H`` serves each owned partition's GET routes on ``H`` (an ephemeral port each), advertised in
``<partition's data dir>/reader.json`` for the front (:mod:`._engine_reads`). A partition store holding ids
of another partition is refused (exit status 2, :class:`._partition_ids.ForeignIdPrefix`).
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
import trio

from scrip_actor.config import Config, load_config
from scrip_actor.partitioned._engine_group import GroupSettings, run_group
from scrip_actor.partitioned._engine_role import partition_data_dir, run_partition
from scrip_actor.partitioned._partition_ids import ForeignIdPrefix


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scrip_actor.partitioned")
    roles = parser.add_subparsers(dest="role", required=True)
    engine = roles.add_parser("engine", help="apply one partition of the events topic to its own store")
    engine.add_argument("--bootstrap", required=True, help="broker address, host:port")
    engine.add_argument("--topic", required=True)
    engine.add_argument("--partition", type=int, help="apply this partition (default: be a --group member)")
    engine.add_argument("--group", help="without --partition: the consumer group whose member this is")
    engine.add_argument("--assignment-strategy", default="cooperative-sticky", help="default cooperative-sticky")
    engine.add_argument("--session-timeout-ms", type=int, default=6000, help="default 6000")
    engine.add_argument("--until-offsets", help="--group: E0,E1,...: exit once owning all and each applied below En")
    engine.add_argument("--partitions-dir", required=True, help="holds one data directory per partition")
    engine.add_argument("--until-offset", type=int, default=None, help="exit once every record below is applied")
    engine.add_argument("--lmdb-map-size-bytes", type=int, help="default: the config's storage.lmdb_map_size_bytes")
    engine.add_argument(
        "--idempotency-scope",
        choices=["program", "participant"],
        default="program",
        help="program (default): a key reused by another participant is a 409, at a round trip per event; "
        "participant: checked on the participant's partition only. Every engine of a topic must use the same.",
    )
    engine.add_argument("--config", help="TOML settings file, as for the embedded server (storage.data_dir unused)")
    engine.add_argument("--read-host", help="serve each owned partition's GET routes on this host (reader.json)")
    return parser.parse_args(argv)


def _config_for(settings: Config, args: argparse.Namespace, partition: int) -> Config:
    """Partition ``partition``'s settings: the loaded ones (the same limits as every front and engine should
    have), with the partition's own data directory."""
    data_dir = partition_data_dir(args.partitions_dir, partition)
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = msgspec.structs.replace(settings.storage, data_dir=str(data_dir))
    if args.lmdb_map_size_bytes is not None:
        storage = msgspec.structs.replace(storage, lmdb_map_size_bytes=args.lmdb_map_size_bytes)
    return msgspec.structs.replace(settings, storage=storage)


def _settings(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config)  # defaults, the file, then SCRIP_<SECTION>_<KEY> variables
    except (OSError, ValueError) as error:
        raise SystemExit(f"scrip: {error}") from None


def _main_group(args: argparse.Namespace) -> None:
    settings = GroupSettings(
        args.group,
        args.assignment_strategy,
        args.session_timeout_ms,
        idempotency_scope=args.idempotency_scope,
        read_host=args.read_host,
    )
    until = None if args.until_offsets is None else [int(end) for end in args.until_offsets.split(",")]
    run = functools.partial(
        run_group,
        functools.partial(_config_for, _settings(args), args),
        args.bootstrap,
        args.topic,
        settings,
        until_offsets=until,
        on_change=lambda what, partition, offset: print(f"{what} {partition} {offset} {time.time():.6f}", flush=True),
    )
    trio.run(_until_signalled, run)
    print(f"DONE {time.time():.6f}", flush=True)


async def _until_signalled(run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run``; SIGTERM or SIGINT cancels it, which leaves the group cleanly (every partition revoked first)."""
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        await run()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    try:
        _main(_parse(argv))
    except* ForeignIdPrefix as refused:  # a group from a --group member's nursery, or the bare error
        print(f"engine: {refused.exceptions[0]}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _main(args: argparse.Namespace) -> None:
    if args.partition is None:
        if args.group is None:
            raise SystemExit("engine: give --partition N, or --group G to be a consumer-group member")
        _main_group(args)
        return
    config = _config_for(_settings(args), args, args.partition)
    run = functools.partial(
        run_partition,
        config,
        args.bootstrap,
        args.topic,
        args.partition,
        until_offset=args.until_offset,
        idempotency_scope=args.idempotency_scope,
        on_ready=lambda offset: print(f"READY {offset} {time.time():.6f}", flush=True),
        read_host=args.read_host,
    )
    done = trio.run(run)
    print(f"DONE {done} {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
