"""``python -m scrip_actor.partitioned engine ...``: run the engine role for one partition (until killed).

Prints ``READY <offset> <unix time>`` once the store is open and reading resumes at ``offset``, and
``DONE <offset> <unix time>`` when ``--until-offset`` is reached and every event is processed (the times let
bench.partitioned measure the applying alone, without the process's start-up). ``scrip serve --role engine``
will wrap this with group membership; for now a partition is given explicitly.
"""

from __future__ import annotations

import argparse
import functools
import time

import trio

from scrip_actor.config import Config, StorageSettings
from scrip_actor.partitioned._engine_role import partition_data_dir, run_partition


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scrip_actor.partitioned")
    roles = parser.add_subparsers(dest="role", required=True)
    engine = roles.add_parser("engine", help="apply one partition of the events topic to its own store")
    engine.add_argument("--bootstrap", required=True, help="broker address, host:port")
    engine.add_argument("--topic", required=True)
    engine.add_argument("--partition", type=int, required=True)
    engine.add_argument("--partitions-dir", required=True, help="holds one data directory per partition")
    engine.add_argument("--until-offset", type=int, default=None, help="exit once every record below is applied")
    engine.add_argument("--lmdb-map-size-bytes", type=int, default=1 << 30)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    data_dir = partition_data_dir(args.partitions_dir, args.partition)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(
        storage=StorageSettings(data_dir=str(data_dir), sync=True, lmdb_map_size_bytes=args.lmdb_map_size_bytes)
    )
    run = functools.partial(
        run_partition,
        config,
        args.bootstrap,
        args.topic,
        args.partition,
        until_offset=args.until_offset,
        on_ready=lambda offset: print(f"READY {offset} {time.time():.6f}", flush=True),
    )
    done = trio.run(run)
    print(f"DONE {done} {time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
