"""The ``scrip`` command: ``scrip serve`` runs the HTTP server, ``scrip verify`` checks a store.

Also runnable as ``python -m scrip_actor ...``.
"""

from __future__ import annotations

import argparse
import sys

import msgspec

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrip", description="scrip-actor: a self-hosted loyalty and rewards engine")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", help="LMDB data directory (default ./data)")
    serve.add_argument("--config", help="TOML settings file (default: built-in defaults, see config/default.toml)")
    verify = commands.add_parser("verify", help="replay the journal and check sums, balances, lots and the hash chain")
    verify.add_argument("--data-dir", default=None, help="LMDB data directory (default ./data)")
    verify.add_argument("--config", help="TOML settings file")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    return parser


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scrip_actor.config import load_config
    from scrip_actor.verify import verify

    config = load_config(args.config)
    data_dir = args.data_dir or config.storage.data_dir
    if not (Path(data_dir) / "ledger.lmdb").exists():
        print(f"scrip verify: no store at {data_dir}", file=sys.stderr)
        return 2
    report = verify(data_dir, config)
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        status = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
        print(
            f"verify {status}: {report.journal_entries} journal entries, {report.postings} postings, "
            f"{report.participants} participants, {report.lots} lots, {report.events} events "
            f"({report.events_pending} waiting to be processed)"
        )
    return 0 if report.ok else 1


def _serve(args: argparse.Namespace) -> int:
    from scrip_actor.http.server import run_server

    return run_server(host=args.host, port=args.port, data_dir=args.data_dir, config_path=args.config)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scrip`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "verify":
        return _verify(args)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
