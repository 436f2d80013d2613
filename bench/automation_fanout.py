"""Benchmark: client latency while an automation fans out to many participants, and the fan-out's own pace.

``python -m bench.automation_fanout --participants 100000`` (``--json`` for machines). What it does:

1. Opens an engine on a temporary directory, fsync on (``--no-sync`` for an A/B run), one program with a rule
   ``event.type == 'promo' -> CREDIT 1`` and ``--participants`` members, made by ``join`` events in batches.
2. Baseline: ``--clients`` tasks each submit one event at a time (awaiting durability) for ``--baseline-s``;
   the latency of each submit → processed is recorded (``Engine.on_event_processed``).
3. Starts an immediate participants-scope automation and keeps the same client load running until the
   fan-out completes; reports the client p50/p99 during it, the fan-out's participants/s, the peak number of
   events in flight, and the peak RSS of the process.

Memory is bounded by design, not by the participant count: one batch of participant keys
(``automations.fanout_batch_size``), at most ``automations.fanout_inflight_max`` events in flight, and the
participant cache's own bound; the run record holds a cursor, not a list.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import trio

from bench._common import bench_config, peak_rss_mb, percentile_ms
from scrip_actor import AssetCreate, CreditAction, EventSubmit, ProgramCreate, RuleCreate, open_engine
from scrip_actor.automations import AutomationCreate, Trigger
from scrip_actor.config import AutomationSettings
from scrip_actor.model import Event

__all__ = ["main"]


async def _client(engine: Any, program_id: str, name: str, stop: trio.Event, started: dict[str, float]) -> None:
    """One client: submit an event, await its durability, again, until ``stop``."""
    n = 0
    while not stop.is_set():
        n += 1
        key = f"{name}-{n}"
        started[key] = time.perf_counter()
        await engine.submit(
            EventSubmit(
                program_id=program_id, external_id=f"client-{name}", idempotency_key=key, event_data={"type": "visit"}
            )
        )


async def _measure(engine: Any, program_id: str, clients: int, until: Any, tag: str) -> list[float]:
    """Client latencies (s) from submit to processed while ``until()`` runs."""
    started: dict[str, float] = {}
    samples: list[float] = []

    def processed(event: Event) -> None:
        begun = started.pop(event.idempotency_key, None)
        if begun is not None:
            samples.append(time.perf_counter() - begun)

    engine.on_event_processed = processed
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            nursery.start_soon(_client, engine, program_id, f"{tag}{index}", stop, started)
        await until()
        stop.set()
    engine.on_event_processed = None
    return samples


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        config = bench_config(Path(directory), sync=not args.no_sync)
        config = msgspec.structs.replace(config, automations=AutomationSettings(fanout_batch_size=args.batch))
        async with open_engine(config=config) as engine:
            program = await engine.create_program(ProgramCreate(name="fan-out"))
            asset = await engine.create_asset(
                AssetCreate(
                    program_id=program.id,
                    name="Points",
                    symbol="PTS",
                    inventory_mode="SIMPLE",
                    issuance_policy="UNLIMITED",
                    scale=0,
                )  # type: ignore[arg-type]
            )
            await engine.create_rule(
                RuleCreate(
                    program_id=program.id,
                    name="promo",
                    condition="event.type == 'promo'",
                    actions=[CreditAction(asset_id=asset.id, amount="1")],
                )
            )
            setup_s = time.perf_counter()
            for start in range(0, args.participants, 1000):
                batch = [
                    EventSubmit(
                        program_id=program.id,
                        external_id=f"m{n:07}",
                        idempotency_key=f"join-{n}",
                        event_data={"type": "join"},
                    )
                    for n in range(start, min(args.participants, start + 1000))
                ]
                await engine.submit_batch(batch)
                await engine.wait_idle()
            setup_s = time.perf_counter() - setup_s

            async def for_a_while() -> None:
                await trio.sleep(args.baseline_s)

            baseline = await _measure(engine, program.id, args.clients, for_a_while, "b")
            automation = await engine.automations.create(
                program.id,
                AutomationCreate(
                    name="promo", trigger=Trigger(type="immediate"), scope="participants", event_name="promo"
                ),
            )
            inflight_peak = 0
            fan_out_s = time.perf_counter()

            async def until_done() -> None:
                nonlocal inflight_peak
                while engine.automations.get(program.id, automation.id).execution_status != "completed":
                    inflight_peak = max(inflight_peak, engine.statistics().events_inflight)
                    await trio.sleep(0.01)

            during = await _measure(engine, program.id, args.clients, until_done, "d")
            fan_out_s = time.perf_counter() - fan_out_s
            await engine.wait_idle()
            done = engine.automations.get(program.id, automation.id)
    return {
        "participants": args.participants,
        "setup_s": round(setup_s, 1),
        "fan_out_s": round(fan_out_s, 2),
        "fan_out_participants_per_s": round(args.participants / fan_out_s),
        "events_created": done.events_created,
        "inflight_peak": inflight_peak,
        "client_baseline_p50_ms": percentile_ms(baseline, 0.5),
        "client_baseline_p99_ms": percentile_ms(baseline, 0.99),
        "client_during_p50_ms": percentile_ms(during, 0.5),
        "client_during_p99_ms": percentile_ms(during, 0.99),
        "client_events_during": len(during),
        "peak_rss_mb": round(peak_rss_mb()),
        "sync": not args.no_sync,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-s", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-sync", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = trio.run(run, args)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()), file=sys.stdout)
    return result


if __name__ == "__main__":
    main()
