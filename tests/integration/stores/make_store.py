"""Write a small store with the version checked out, and what its API says about it, for migration tests.

Run with the OLD version's code (a git worktree of the commit before a schema change), e.g.::

    git worktree add /tmp/v4 28db917
    PYTHONPATH=/tmp/v4 .venv/bin/python tests/integration/stores/make_store.py /tmp/out

It writes ``/tmp/out/data`` (the store) and ``/tmp/out/expected.json`` (events, participants, lots, journal and
wallet as that version's API returned them). ``tar czf store_v4.tar.gz -C /tmp/out .`` makes the fixture that
``tests/integration/test_store_migrations.py`` opens with today's code: the migrated store must verify and its API
must return exactly the same records.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import trio

from scrip_actor import (
    AssetCreate,
    Config,
    CounterAction,
    CreditAction,
    DebitAction,
    EventSubmit,
    ProgramCreate,
    RuleCreate,
    TagAction,
    open_engine,
)
from scrip_actor.config import EngineSettings, StorageSettings


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


async def _write(out: Path) -> None:
    config = Config(
        storage=StorageSettings(data_dir=str(out / "data"), sync=False, lmdb_map_size_bytes=64 << 20),
        engine=EngineSettings(sweep_interval_s=0.05),
    )
    clock = _Clock()
    async with open_engine(config=config, clock=clock) as engine:
        program = await engine.create_program(ProgramCreate(name="Migration"))
        pts = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name="Points",
                symbol="PTS",
                inventory_mode="SIMPLE",
                issuance_policy="UNLIMITED",
                scale=2,
            )
        )
        cash = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name="Cash",
                symbol="CSH",
                inventory_mode="LOT",
                issuance_policy="PREFUNDED",
                scale=2,
            )
        )
        await engine.fund(program.id, cash.id, "25.00")
        rules: list[tuple[str, str, list[Any], dict[str, Any]]] = [
            ("points", "event.type == 'purchase'", [CreditAction(asset_id=pts.id, amount="event.amount")], {}),
            ("visits", "true", [CounterAction(key="visits", value="1")], {}),
            ("error", "event.missing > 1.0", [TagAction(tag="never")], {}),
            ("later", "true", [TagAction(tag="later")], {"active_from": datetime(2030, 1, 1, tzinfo=UTC)}),
            ("big", "event.amount > 100.0", [TagAction(tag="big")], {"stop_after_match": True}),
            (
                "cash",
                "event.type == 'purchase'",
                [CreditAction(asset_id=cash.id, amount="5", expires_at="720h", matures_at="1h")],
                {},
            ),
            ("refund", "event.type == 'refund'", [DebitAction(asset_id=pts.id, amount="event.amount")], {}),
        ]
        for name, condition, actions, fields in rules:
            await engine.create_rule(
                RuleCreate(program_id=program.id, name=name, condition=condition, actions=actions, **fields)
            )
        sends = [
            ("ann", {"type": "purchase", "amount": 12.5}),
            ("bob", {"type": "purchase", "amount": 150.0}),
            ("ann", {"type": "refund", "amount": 2.0}),
            ("cid", {"type": "refund", "amount": 9.0}),  # FAILED: nothing to refund from
            ("dee", {"type": "visit"}),
            ("ann", {"type": "purchase", "amount": 1.0}),
            ("eve", {"type": "purchase", "amount": 3.0}),
            ("fay", {"type": "purchase", "amount": 4.0}),
            ("gus", {"type": "purchase", "amount": 5.0}),
            ("hal", {"type": "purchase", "amount": 6.0}),  # FAILED: the cash wallet is empty by now
        ]
        for number, (external_id, data) in enumerate(sends):
            await engine.submit(
                EventSubmit(
                    program_id=program.id, external_id=external_id, idempotency_key=f"k{number}", event_data=data
                )
            )
        await engine.wait_idle()
        failed = (await engine.list_events(status="FAILED")).data
        await engine.fund(program.id, cash.id, "10.00")
        hal = next(event for event in failed if event.external_id == "hal")
        await engine.retry_event(hal.id)
        await engine.wait_idle()
        clock.now += timedelta(hours=2)  # the cash lots mature
        engine.sweep_due()
        await engine.wait_idle()
        expected = await _dump(engine, program.id, cash.id)
        assert (await engine.verify()).ok
    (out / "expected.json").write_bytes(msgspec.json.format(msgspec.json.encode(expected)))


async def _dump(engine: Any, program_id: str, cash_id: str) -> dict[str, Any]:
    events = (await engine.list_events(limit=100)).data
    participants = (await engine.list_participants(limit=100)).data
    return {
        "events": [msgspec.to_builtins(await engine.get_event(event.id)) for event in events],
        "participants": [msgspec.to_builtins(participant) for participant in participants],
        "lots": {
            participant.id: msgspec.to_builtins(await engine.lots(participant.id, cash_id))
            for participant in participants
        },
        "journal": msgspec.to_builtins((await engine.list_journal_entries(limit=100)).data),
        "wallet": msgspec.to_builtins(await engine.wallet_balances(program_id)),
    }


if __name__ == "__main__":
    trio.run(_write, Path(sys.argv[1]))
