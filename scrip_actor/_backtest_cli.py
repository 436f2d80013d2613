"""``scrip backtest``: a backtest of a data directory from the command line, with a progress line on stderr.

The store is opened read-only (engine/_backtest_offline.py), so the command runs beside a ``scrip serve`` on the
same directory. The report goes to stdout: a short table, or with ``--json`` the job exactly as
``GET /v1/programs/{id}/backtests/{backtest_id}`` answers it. Exit status 0 for a COMPLETED run, 1 for a FAILED or
CANCELLED one, and the usual statuses (docs/operations.md) for settings and stores that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import trio

from scrip_actor.backtest_model import Backtest, BacktestCreate, ProposedRule
from scrip_actor.errors import ExitCode, ScripError, StoreUnusable

__all__ = ["run_backtest_command"]

_BAR_WIDTH = 30


def run_backtest_command(args: argparse.Namespace) -> int:
    """Run ``scrip backtest`` with parsed ``args``; the exit status."""
    from scrip_actor.config import load_config
    from scrip_actor.engine import backtest_data_dir

    try:
        config = load_config(args.config)
    except (ValueError, OSError) as error:
        print(f"scrip backtest: {error}", file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    data_dir = args.data_dir or config.storage.data_dir
    if not (Path(data_dir) / "ledger.lmdb").exists():
        print(f"scrip backtest: no store at {data_dir}", file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    try:
        request = _request(args)
        job = trio.run(backtest_data_dir, data_dir, config, args.program, request, _progress)
    except StoreUnusable as unusable:
        print(f"scrip backtest: {unusable.message}", file=sys.stderr)
        return unusable.exit_code
    except ScripError as error:
        print(f"scrip backtest: {error.code}: {error.message} {error.details or ''}".rstrip(), file=sys.stderr)
        return ExitCode.BAD_SETTINGS
    print(file=sys.stderr)  # end the progress line
    print(msgspec.json.encode(job).decode() if args.json else _table(job))
    return 0 if job.status == "COMPLETED" else 1


def _request(args: argparse.Namespace) -> BacktestCreate:
    """The request from the arguments: ``--rules`` a JSON list of rule bodies (as ``POST .../backtests`` takes)."""
    from scrip_actor.errors import ValidationFailed

    rules = None
    if args.rules:
        try:
            rules = msgspec.json.decode(Path(args.rules).read_bytes(), type=list[ProposedRule])
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
            raise ValidationFailed.field("rules", "invalid", f"{args.rules}: {error}") from None
    body = {"rules": None, "from": args.from_, "to": args.to}
    try:
        request = msgspec.convert(body, BacktestCreate, strict=False)
    except msgspec.ValidationError as error:
        raise ValidationFailed(str(error)) from None
    return msgspec.structs.replace(request, rules=rules)


def _progress(job: Backtest) -> None:
    """A progress line on stderr: a bar that fills as the window's receipt times are passed, and the counts."""
    share = 0.0
    if job.status != "RUNNING":
        share = 1.0
    elif job.replayed_to is not None and job.replayed_to > job.from_:
        share = min(1.0, (job.replayed_to - job.from_) / (job.to - job.from_))
    filled = int(share * _BAR_WIDTH)
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    print(
        f"\r[{bar}] {job.status} warm-up {job.events_warmup} events, window {job.events_replayed} replayed",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _table(job: Backtest) -> str:
    lines = [
        f"backtest {job.id} {job.status}" + (f": {job.failure_reason}" if job.failure_reason else ""),
        f"window [{job.from_.isoformat()}, {job.to.isoformat()}): {job.events_replayed} events replayed, "
        f"{job.events_warmup} before it, {job.events_skipped} skipped, {job.participants_affected} participants",
        "asset                                 credited       actual   difference  wallet draw  wallet failures",
    ]
    lines.extend(
        f"{asset.asset_id:36}  {asset.credited:>10} {asset.actual_credited:>12} {asset.difference_credited:>12}"
        f" {asset.wallet_draw:>12} {asset.wallet_failures:>16}"
        for asset in job.assets
    )
    lines.append("rule                            change     asset     matches (actual)   credited (actual)")
    for rule in job.rules:
        asset = (rule.asset_id or "-")[:8]
        lines.append(
            f"{rule.name[:30]:30}  {rule.change:9} {asset:8} {rule.matches:>8} ({rule.actual_matches})"
            f" {rule.credited:>10} ({rule.actual_credited})"
        )
    lines.extend(f"warning: {warning}" for warning in job.warnings)
    return "\n".join(lines)
