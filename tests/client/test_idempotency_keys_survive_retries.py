"""A keyed write whose answer is lost is sent again with the same idempotency key, and the server answers the
original: the work is done once. The client adds a key to a keyed write that has none, once per call."""

from __future__ import annotations

import msgspec

from scrip_actor.client import AsyncScripClient, ScripClient
from scrip_actor.model import BalanceAdjust, EventSubmit, ParticipantCreate
from tests.client.conftest import API_KEY, FAST_RETRY, FlakyProxy, in_thread, program_with_points


def _key_of(body: bytes) -> str:
    key: str = msgspec.json.decode(body)["idempotency_key"]
    return key


async def test_a_lost_answer_to_an_adjustment_is_retried_with_the_generated_key(
    flaky_proxy: FlakyProxy, client: AsyncScripClient
) -> None:
    program, asset_id = await program_with_points(client)
    participant = await client.upsert_participant(ParticipantCreate(external_id="carol", program_id=program.id))
    adjust = BalanceAdjust(
        program_id=program.id, asset_id=asset_id, type="CREDIT", amount="5.00", description="goodwill"
    )
    flaky_proxy.script = [("lost", 504)]  # the first credit is applied, its answer lost
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
        result = await proxied.adjust_balance(participant.id, adjust)
    assert len(flaky_proxy.seen) == 2
    first, second = (_key_of(seen.body) for seen in flaky_proxy.seen)
    assert first == second
    assert first.startswith("cli_")
    assert flaky_proxy.seen[0].body == flaky_proxy.seen[1].body
    # Credited once: the retry was answered with the original adjustment.
    assert result.balance.available == "5.00"
    (balance,) = (await client.participant_balances(participant.id)).data
    assert balance.available == "5.00"
    assert len((await client.list_journal_entries(participant_id=participant.id)).data) == 1


async def test_each_call_gets_its_own_key(flaky_proxy: FlakyProxy, client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    participant = await client.upsert_participant(ParticipantCreate(external_id="dan", program_id=program.id))
    adjust = BalanceAdjust(program_id=program.id, asset_id=asset_id, type="CREDIT", amount="1.00", description="a")

    def twice() -> None:
        with ScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
            proxied.adjust_balance(participant.id, adjust)
            proxied.adjust_balance(participant.id, adjust)

    await in_thread(twice)
    keys = [_key_of(seen.body) for seen in flaky_proxy.seen]
    assert len(set(keys)) == 2  # two logical calls: two credits
    (balance,) = (await client.participant_balances(participant.id)).data
    assert balance.available == "2.00"


async def test_a_key_the_caller_gives_is_sent_as_given(flaky_proxy: FlakyProxy, client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    participant = await client.upsert_participant(ParticipantCreate(external_id="erin", program_id=program.id))
    adjust = BalanceAdjust(
        program_id=program.id,
        asset_id=asset_id,
        type="CREDIT",
        amount="3.00",
        description="mine",
        idempotency_key="ticket-42",
    )
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
        first = await proxied.adjust_balance(participant.id, adjust)
        again = await proxied.adjust_balance(participant.id, adjust)
    assert [_key_of(seen.body) for seen in flaky_proxy.seen] == ["ticket-42", "ticket-42"]
    assert first.journal_entry_id == again.journal_entry_id


async def test_a_lost_answer_to_an_event_is_answered_with_the_original_event(
    flaky_proxy: FlakyProxy, client: AsyncScripClient
) -> None:
    program, _asset_id = await program_with_points(client)
    event = EventSubmit(program_id=program.id, idempotency_key="order-7", external_id="fay", event_data={"n": 1})
    flaky_proxy.script = [("lost", 502)]

    def submit() -> str:
        with ScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as proxied:
            return proxied.submit_event(event).id

    event_id = await in_thread(submit)
    assert len(flaky_proxy.seen) == 2
    assert [e.id for e in (await client.list_events(program_id=program.id)).data] == [event_id]
