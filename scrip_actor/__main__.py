"""The ``scrip`` command: ``scrip serve`` runs the HTTP server, ``scrip verify`` checks a store, ``scrip backtest``
replays a program's events with a proposed rule set (docs/backtest.md).

Also runnable as ``python -m scrip_actor ...``. Exit statuses are :class:`scrip_actor.errors.ExitCode` (the table is
in docs/operations.md). A store that cannot be opened as it is (in use, not a directory, a damaged data file, a map
too small, another schema) is one line on stderr and its own status, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from scrip_actor.errors import ExitCode, StoreUnusable

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrip", description="scrip-actor: a self-hosted loyalty and rewards engine")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", help="LMDB data directory (default ./data)")
    serve.add_argument("--config", help="TOML settings file (default: built-in defaults, see config/default.toml)")
    _partitioned_options(serve)
    verify = commands.add_parser(
        "verify",
        help="replay the journal and check sums, balances, lots and the hash chain (safe beside a running server)",
    )
    verify.add_argument("--data-dir", default=None, help="LMDB data directory (default ./data)")
    verify.add_argument("--config", help="TOML settings file")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    _backtest_parser(commands)
    return parser


def _partitioned_options(serve: Any) -> None:
    """``--role engine`` (docs/partitioned.md): apply partitions of a Kafka-protocol events topic (one given, or
    those a consumer group assigns); ``--role front``: accept ``POST /v1/events`` into that topic."""
    roles = ["embedded", "engine", "front"]
    serve.add_argument("--role", choices=roles, default="embedded", help="default: embedded")
    serve.add_argument("--bootstrap", help="--role engine/front: the broker, host:port")
    serve.add_argument("--topic", default="events", help="--role engine/front: the events topic (default events)")
    serve.add_argument("--partitions", type=int, help="--role front: the events topic's partition count")
    serve.add_argument(
        "--delivery-timeout-s", type=float, default=10.0, help="--role front: answer 503 if unstored by then"
    )
    serve.add_argument("--partition", type=int, help="--role engine: the partition to apply (or --group)")
    serve.add_argument("--group", help="--role engine without --partition: the consumer group to be a member of")
    serve.add_argument("--assignment-strategy", help="--role engine --group: default cooperative-sticky")
    serve.add_argument("--session-timeout-ms", type=int, help="--role engine --group: default 6000")
    serve.add_argument("--until-offsets", help="--role engine --group: E0,E1,...: exit once all applied below En")
    serve.add_argument(
        "--partitions-dir", help="--role engine: holds one data directory per partition; --role front: finds readers"
    )
    serve.add_argument("--read-host", help="--role engine: serve each owned partition's GET routes on this host")
    serve.add_argument("--until-offset", type=int, help="--role engine: exit once every record below is applied")
    serve.add_argument(
        "--idempotency-scope",
        choices=["program", "participant"],
        help="--role engine: default program (a 409 across " "partitions for a key reused by another participant)",
    )


def _serve_engine_role(args: argparse.Namespace) -> int:
    """Hand ``scrip serve --role engine`` to the engine role: one given ``--partition``, or a ``--group`` member."""
    if args.bootstrap is None or (args.partition is None and args.group is None) or args.partitions_dir is None:
        print(
            "scrip serve --role engine needs --bootstrap, --partitions-dir and --partition or --group", file=sys.stderr
        )
        return 2
    from scrip_actor.partitioned.__main__ import main as engine_role

    argv = ["engine", "--bootstrap", args.bootstrap, "--topic", args.topic, "--partitions-dir", args.partitions_dir]
    passed = {"--partition": args.partition, "--until-offset": args.until_offset, "--group": args.group}
    passed |= {"--assignment-strategy": args.assignment_strategy, "--session-timeout-ms": args.session_timeout_ms}
    passed |= {"--until-offsets": args.until_offsets, "--config": args.config, "--read-host": args.read_host}
    passed |= {"--idempotency-scope": args.idempotency_scope}
    for option, value in passed.items():
        if value is not None:
            argv += [option, str(value)]
    engine_role(argv)
    return 0


def _serve_front_role(args: argparse.Namespace) -> int:
    """``scrip serve --role front``: the stateless HTTP front of the events topic (docs/partitioned.md)."""
    if args.bootstrap is None or args.partitions is None:
        print("scrip serve --role front needs --bootstrap and --partitions", file=sys.stderr)
        return 2
    from scrip_actor.partitioned._front_main import FrontOptions, run_front

    options = FrontOptions(
        bootstrap=args.bootstrap,
        topic=args.topic,
        partitions=args.partitions,
        delivery_timeout_s=args.delivery_timeout_s,
        partitions_dir=args.partitions_dir,
    )
    return run_front(options, args.host, args.port, args.data_dir, args.config)


def _backtest_parser(commands: Any) -> None:
    backtest = commands.add_parser(
        "backtest",
        help="replay a program's recorded events with a proposed rule set, read-only (safe beside a running server)",
    )
    backtest.add_argument("--data-dir", default=None, help="LMDB data directory (default ./data)")
    backtest.add_argument("--config", help="TOML settings file")
    backtest.add_argument("--program", required=True, help="the program's id")
    backtest.add_argument("--rules", help="JSON file: a list of rule bodies (omitted: the program's current rules)")
    backtest.add_argument("--from", dest="from_", required=True, help="window start, ISO 8601 (inclusive)")
    backtest.add_argument("--to", required=True, help="window end, ISO 8601 (exclusive)")
    backtest.add_argument("--json", action="store_true", help="print the whole report as JSON")


def _verify(args: argparse.Namespace) -> int:
    from scrip_actor.config import load_config
    from scrip_actor.verify import verify

    try:
        config = load_config(args.config)
    except (ValueError, OSError) as error:
        print(f"scrip verify: {error}", file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    data_dir = args.data_dir or config.storage.data_dir
    path = Path(data_dir)
    if not path.exists() or (path.is_dir() and not (path / "ledger.lmdb").exists()):
        print(f"scrip verify: no store at {data_dir}", file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    try:
        report = verify(data_dir, config)
    except StoreUnusable as unusable:
        print(f"scrip verify: {unusable.message}", file=sys.stderr)
        return unusable.exit_code
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
        print(
            f"verify {status}: {report.journal_entries} journal entries, {report.postings} postings, "
            f"{report.participants} participants, {report.lots} lots, {report.events} events "
            f"({report.events_pending} waiting to be processed); as of LMDB transaction {report.snapshot_txn_id}"
        )
    if not report.schema_ok:
        print(f"scrip verify: {report.problems[0]}", file=sys.stderr)
        return ExitCode.SCHEMA_MISMATCH
    return ExitCode.OK if report.ok else ExitCode.VERIFY_FAILED


def _serve(args: argparse.Namespace) -> int:
    from scrip_actor.http.server import run_server

    refused = _refuse_unusable_store(args)
    if refused is not None:
        return refused
    try:
        return run_server(host=args.host, port=args.port, data_dir=args.data_dir, config_path=args.config)
    except BaseException as error:
        # The check above can race a second server starting at the same moment: the engine's own open refuses it.
        unusable = _store_unusable(error)
        if unusable is None:
            raise
        print(f"scrip: {unusable.message}", file=sys.stderr, flush=True)
        return unusable.exit_code


def _refuse_unusable_store(args: argparse.Namespace) -> int | None:
    """Open and close the store once before serving: a refusal then comes before anything (API keys) is written.

    Returns the exit status of a refusal, or None to go on (unusable settings are left to run_server to report).
    """
    from scrip_actor.config import load_config
    from scrip_actor.store import Store

    try:
        config = load_config(args.config)
    except (ValueError, OSError):
        return None
    storage = config.storage
    try:
        Store(
            args.data_dir or storage.data_dir,
            map_size_bytes=storage.lmdb_map_size_bytes,
            sync=storage.sync,
            max_readers=storage.max_readers,
        ).close()
    except StoreUnusable as unusable:
        print(f"scrip: {unusable.message}", file=sys.stderr, flush=True)
        return unusable.exit_code
    return None


def _store_unusable(error: BaseException) -> StoreUnusable | None:
    """The refusal inside ``error`` (trio nurseries wrap it in exception groups), or None."""
    if isinstance(error, StoreUnusable):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _store_unusable(inner)
            if found is not None:
                return found
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scrip`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    if args.command == "backtest":
        from scrip_actor._backtest_cli import run_backtest_command

        return run_backtest_command(args)
    if args.role == "engine":
        return _serve_engine_role(args)
    if args.role == "front":
        return _serve_front_role(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
