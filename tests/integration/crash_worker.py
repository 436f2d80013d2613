"""A process that drives the engine until it is killed: used by the SIGKILL test and bench/crash.py.

Usage: ``python -m tests.integration.crash_worker DATA_DIR``. It sets up (or reuses) a program whose one rule
credits 1 point per event, then submits events forever (in small concurrent bursts), printing
``ACK <idempotency_key>`` after each submit returned, i.e. after the event is durable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from scrip_actor import AssetCreate, Config, CreditAction, EventSubmit, ProgramCreate, RuleCreate, open_engine
from scrip_actor.config import StorageSettings


async def main(data_dir: str) -> None:
    config = Config(storage=StorageSettings(data_dir=data_dir, sync=True, lmdb_map_size_bytes=1 << 30))
    ids_file = Path(data_dir).parent / "ids.txt"
    async with open_engine(config=config) as engine:
        if ids_file.exists():
            program_id, start = ids_file.read_text().split()
        else:
            program = await engine.create_program(ProgramCreate(name="crash"))
            asset = await engine.create_asset(
                AssetCreate(
                    program_id=program.id,
                    name="P",
                    symbol="P",
                    inventory_mode="SIMPLE",
                    issuance_policy="UNLIMITED",
                    scale=0,
                )
            )
            await engine.create_rule(
                RuleCreate(
                    program_id=program.id,
                    name="one",
                    condition="true",
                    actions=[CreditAction(asset_id=asset.id, amount="1")],
                )
            )
            program_id, start = program.id, "0"
            ids_file.write_text(f"{program_id} 0")
        print(f"READY {program_id}", flush=True)
        number = int(start)

        async def one(key: str, participant: str) -> None:
            await engine.submit(
                EventSubmit(program_id=program_id, external_id=participant, idempotency_key=key, event_data={"n": 1})
            )
            print(f"ACK {key}", flush=True)

        while True:
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    number += 1
                    nursery.start_soon(one, f"k{number}", f"user{number % 7}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
