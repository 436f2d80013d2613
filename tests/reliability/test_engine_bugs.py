"""Engine bugs found by the issue-6 hostile-input work. Open ones are ``xfail(strict=True)``: when the engine is
fixed the test passes, strict xfail turns that into a failure, and whoever fixed it removes the marker. Fixed ones
stay as plain regression tests:

* a CREDIT past AMOUNT_MINOR_MAX crashed the engine and poisoned every restart (fixed in 8bb9543);
* funding past the bound answered 500 (fixed in 8bb9543);
* an event_timestamp at the calendar's edge with an offset overflowed to a 500 (fixed in 8bb9543).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from scrip_actor import CreditAction, EventSubmit, ParticipantCreate, ScripError, open_engine
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule
from tests.reliability.conftest import Live

AMOUNT_MAX_WHOLE_AT_SCALE_18 = "999999999999999999"  # (10^36 - 1) minor units, whole part


async def test_a_credit_past_the_amount_bound_fails_the_event_not_the_engine(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, asset = await program_with_asset(engine, scale=18)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount=AMOUNT_MAX_WHOLE_AT_SCALE_18)])
        events = [
            await engine.submit(
                EventSubmit(program_id=program.id, external_id="rich", idempotency_key=f"k{n}", event_data={})
            )
            for n in range(2)
        ]
        with trio.fail_after(10):
            await engine.wait_idle()
        statuses = [(await engine.get_event(event.id)).status for event in events]
        assert statuses == ["COMPLETED", "FAILED"]


async def test_a_255_character_multibyte_idempotency_key_is_stored_or_refused(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        program, _ = await program_with_asset(engine)
        key = "\U0001d518" * 255
        try:
            event = await engine.submit(
                EventSubmit(program_id=program.id, external_id="u", idempotency_key=key, event_data={})
            )
        except ScripError:
            return  # refusing it cleanly is fine too
        assert event.idempotency_key == key


async def test_a_255_character_multibyte_external_id_is_stored_or_refused(tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        external_id = "\U0001d518" * 255
        try:
            participant, _ = await engine.create_participant(ParticipantCreate(external_id=external_id))
        except ScripError:
            return
        assert participant.external_id == external_id


def test_funding_past_the_amount_bound_is_a_4xx(live: Live) -> None:
    program = live.client.post("/v1/programs", json={"name": "bound"}).json()
    asset = live.client.post("/v1/assets", json={
        "program_id": program["id"], "name": "Bound", "symbol": "BOUND", "inventory_mode": "SIMPLE",
        "issuance_policy": "PREFUNDED", "scale": 18}).json()  # fmt: skip
    path = f"/v1/programs/{program['id']}/assets/{asset['id']}/fund"
    full = live.client.post(path, json={"amount": f"{AMOUNT_MAX_WHOLE_AT_SCALE_18}.999999999999999999"})
    assert full.status_code == 200, full.text  # the largest amount fits exactly
    response = live.client.post(path, json={"amount": "0.000000000000000001"})
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_timestamp_that_overflows_utc_is_a_400(live: Live, timestamp: str) -> None:
    response = live.client.post("/v1/events", json=live.event(f"edge{timestamp}", event_timestamp=timestamp))
    live.error(response, 400)


def test_an_empty_participant_id_is_a_400(live: Live) -> None:
    response = live.client.post(
        "/v1/events",
        json={
            "program_id": live.program_id,
            "participant_id": "",
            "idempotency_key": "empty-participant",
            "event_data": {},
        },
    )
    live.error(response, 400)
