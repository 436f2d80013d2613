"""Small builders shared by the engine tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scrip_actor import Asset, AssetCreate, Engine, Event, EventSubmit, Program, ProgramCreate, RuleCreate


async def program_with_asset(
    engine: Engine,
    *,
    mode: str = "SIMPLE",
    policy: str = "UNLIMITED",
    scale: int = 2,
    symbol: str = "PTS",
    unknown: str = "CREATE",
    max_transaction_amount: str | None = None,
) -> tuple[Program, Asset]:
    program = await engine.create_program(ProgramCreate(name="Rewards", on_unknown_participant=unknown))  # type: ignore[arg-type]
    asset = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol=symbol,
            inventory_mode=mode,  # type: ignore[arg-type]
            issuance_policy=policy,
            scale=scale,
            max_transaction_amount=max_transaction_amount,
        )  # type: ignore[arg-type]
    )
    return program, asset


async def rule(engine: Engine, program: Program, condition: str, actions: list[Any], **fields: Any) -> Any:
    return await engine.create_rule(
        RuleCreate(
            program_id=program.id,
            name=fields.pop("name", condition[:60]),
            condition=condition,
            actions=actions,
            **fields,
        )
    )


_keys = iter(range(1, 10**9))


async def send(
    engine: Engine,
    program: Program,
    external_id: str,
    data: dict[str, Any],
    *,
    key: str | None = None,
    at: datetime | None = None,
) -> Event:
    """Submit one event and wait until it (and everything before it) is processed; return its outcome."""
    submitted = await engine.submit(
        EventSubmit(
            program_id=program.id,
            external_id=external_id,
            idempotency_key=key or f"key-{next(_keys)}",
            event_data=data,
            event_timestamp=at,
        )
    )
    await engine.wait_idle()
    return await engine.get_event(submitted.id)


async def available(engine: Engine, external_id: str, asset: Asset) -> str:
    participant = await engine.get_participant_by_external_id(external_id)
    for balance in participant.balances:
        if balance.asset_id == asset.id:
            return balance.available
    return "0." + "0" * asset.scale if asset.scale else "0"
