"""The client drives the whole earn path against a real server: program, asset, rule, event, balances, journal.

Answers arrive as the server's own Structs, amounts as decimal strings; the sync client gives the same answers.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from scrip_actor.client import AsyncScripClient, ScripClient
from scrip_actor.http.hosted import EventRecord
from scrip_actor.http.schemas import EventAccepted
from scrip_actor.model import (
    Balance,
    CreditAction,
    EventSubmit,
    ParticipantCreate,
    Program,
    Rule,
    RuleCreate,
)
from tests.client.conftest import API_KEY, Server, in_thread, program_with_points


async def test_an_event_earns_points_seen_in_balances_and_journal(client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    assert isinstance(program, Program)
    rule = await client.create_rule(
        RuleCreate(
            program_id=program.id,
            name="1 point per euro",
            condition="event.type == 'purchase'",
            actions=[CreditAction(asset_id=asset_id, amount="event.amount")],
        )
    )
    assert isinstance(rule, Rule)
    accepted = await client.submit_event(
        EventSubmit(
            program_id=program.id,
            idempotency_key="order-1",
            external_id="alice",
            event_data={"type": "purchase", "amount": "12.50"},
        )
    )
    assert isinstance(accepted, EventAccepted)
    event = await client.wait_for_event(accepted.id)
    assert isinstance(event, EventRecord)
    assert event.status == "COMPLETED", event.error_message
    assert event.participant_id is not None

    balances = await client.participant_balances(event.participant_id)
    assert [(b.asset_id, b.available) for b in balances.data] == [(asset_id, "12.50")]
    assert all(isinstance(b, Balance) for b in balances.data)
    entries = await client.list_journal_entries(event_id=event.id)
    assert len(entries.data) == 1
    (entry,) = entries.data
    assert {posting.amount for posting in entry.postings} == {"12.50", "-12.50"}
    assert (await client.get_journal_entry(entry.id)).id == entry.id
    history = await client.activity_history(event.participant_id)
    assert [item.amount for item in history.data] == ["12.50"]


async def test_amounts_go_out_as_decimal_strings_and_floats_are_refused(client: AsyncScripClient) -> None:
    program, _asset_id = await program_with_points(client)
    participant = await client.upsert_participant(ParticipantCreate(external_id="bob", program_id=program.id))
    counter = await client.set_counter(participant.id, "visits", Decimal("2.50"))
    assert counter.value == "2.50"
    assert (await client.set_counter(participant.id, "visits", 7)).value == "7"
    with pytest.raises(TypeError, match="not float"):
        await client.set_counter(participant.id, "visits", 2.5)  # type: ignore[arg-type]


async def test_the_sync_client_answers_the_same_structs(server: Server, client: AsyncScripClient) -> None:
    program, _asset_id = await program_with_points(client)

    def read() -> tuple[Program, list[str]]:
        with ScripClient(server.base_url, API_KEY) as sync:
            assert sync.health().status == "ok"
            return sync.get_program(program.id), [asset.symbol for asset in sync.iter_program_assets(program.id)]

    got, symbols = await in_thread(read)
    assert got == program
    assert symbols == ["PTS"]
