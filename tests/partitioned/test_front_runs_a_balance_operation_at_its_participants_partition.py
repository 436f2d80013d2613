"""A participant's balance operations through the front: produced to the partition its id names, applied there in
turn with its events, answered as the embedded route answers (200 with the result, or the refusal's own status),
each applied once, the log offset in the operation's own record.

Real Tansu, the real front (Hypercorn on loopback), engine roles with their readers and idempotency claims on,
real LMDB; `scrip verify` on every store afterwards.
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor.engine import open_engine
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._partition_ids import partition_of
from scrip_actor.partitioned._routing import partition_for
from scrip_actor.verify import verify
from tests.partitioned.front_setup import LOOPBACK
from tests.partitioned.partition_setup import TOPIC, config_for, log_end, start_engine
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, PARTITIONS, Running, _running


def _on(partition: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(1000) if partition_for(f"{prefix}{n}", PARTITIONS) == partition)


async def _participant_with_points(running: Running, program_id: str, external_id: str, events: int) -> str:
    """The id of ``external_id`` once ``events`` events (one point each) are COMPLETED for it."""
    for number in range(events):
        body = {"program_id": program_id, "external_id": external_id, "idempotency_key": f"{external_id}-{number}"}
        answer = await running.front.post("/v1/events", json={**body, "event_data": {}}, headers=AUTH)
        assert answer.status_code == 202, answer.text
    with trio.fail_after(20):
        while True:
            listed = await running.front.get("/v1/events", params={"external_id": external_id}, headers=AUTH)
            events_seen = listed.json()["data"]
            if len(events_seen) == events and all(event["status"] == "COMPLETED" for event in events_seen):
                return str(events_seen[0]["participant_id"])
            await trio.sleep(0.05)


async def _balance(running: Running, participant_id: str, asset_id: str) -> dict[str, Any]:
    answer = await running.front.get(f"/v1/participants/{participant_id}/balances", headers=AUTH)
    assert answer.status_code == 200, answer.text
    (balance,) = [item for item in answer.json()["data"] if item["asset_id"] == asset_id]
    return balance  # type: ignore[no-any-return]


async def test_balance_operations_run_at_the_participants_partition_once(broker: str, tmp_path: Path) -> None:
    bob = ""
    async with _running(broker, tmp_path) as (running, program_id):
        asset_id = (await running.front.get(f"/v1/programs/{program_id}/assets", headers=AUTH)).json()["data"][0]["id"]
        alice = await _participant_with_points(running, program_id, _on(0, "alice"), 3)
        bob = await _participant_with_points(running, program_id, _on(1, "bob"), 2)
        assert (partition_of(alice), partition_of(bob)) == (0, 1)
        base = {"program_id": program_id, "asset_id": asset_id, "description": "through the front"}

        credited = await running.front.post(
            f"/v1/participants/{alice}/balances/adjust", json={**base, "type": "CREDIT", "amount": "10"}, headers=AUTH
        )
        assert credited.status_code == 200, credited.text
        assert credited.json()["balance"]["available"] == "13" and credited.json()["type"] == "CREDIT"
        held = await running.front.post(
            f"/v1/participants/{alice}/balances/hold", json={**base, "amount": "5"}, headers=AUTH
        )
        assert held.status_code == 200, held.text
        released = await running.front.post(
            f"/v1/participants/{alice}/balances/release", json={**base, "amount": "2"}, headers=AUTH
        )
        assert released.status_code == 200 and released.json()["operation"] == "RELEASE", released.text
        balance = await _balance(running, alice, asset_id)
        assert (balance["available"], balance["held"]) == ("10", "3")
        entry = await running.front.get(f"/v1/journal-entries/{credited.json()['journal_entry_id']}", headers=AUTH)
        assert entry.status_code == 200 and entry.json()["action_type"] == "ADJUST", entry.text

        # Refusals come back with the embedded route's status and code, and move nothing.
        overdraft = await running.front.post(
            f"/v1/participants/{alice}/balances/adjust", json={**base, "type": "DEBIT", "amount": "11"}, headers=AUTH
        )
        assert overdraft.status_code == 422 and overdraft.json()["code"] == "insufficient_balance", overdraft.text
        assert overdraft.json()["request_id"]
        malformed = await running.front.post(
            f"/v1/participants/{alice}/balances/adjust", json={**base, "type": "CREDIT"}, headers=AUTH
        )
        assert malformed.status_code == 400, malformed.text  # judged by the embedded view: nothing produced
        nowhere = await running.front.post(
            "/v1/participants/ffffffff-0000-8000-8000-000000000001/balances/hold", json=base, headers=AUTH
        )
        assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found", nowhere.text
        unknown_here = await running.front.post(
            "/v1/participants/00000002-0000-8000-8000-000000000001/balances/hold", json=base, headers=AUTH
        )
        assert unknown_here.status_code == 404 and unknown_here.json()["code"] == "not_found", unknown_here.text
        assert (await running.front.post(f"/v1/participants/{alice}/balances/hold", json=base)).status_code == 401
        assert (await _balance(running, alice, asset_id))["available"] == "10"

        # The same key and body again: the first answer, applied once. Another body with it: the 409.
        claim_program = "operations:" + program_id
        key = next(f"k{n}" for n in range(1000) if claim_partition_for(claim_program, f"k{n}", PARTITIONS) == 2)
        keyed = {**base, "type": "CREDIT", "amount": "4", "idempotency_key": key}  # its claim lives on partition 2
        first = await running.front.post(f"/v1/participants/{bob}/balances/adjust", json=keyed, headers=AUTH)
        again = await running.front.post(f"/v1/participants/{bob}/balances/adjust", json=keyed, headers=AUTH)
        assert first.status_code == 200 == again.status_code, (first.text, again.text)
        assert first.json()["journal_entry_id"] == again.json()["journal_entry_id"]
        assert (await _balance(running, bob, asset_id))["available"] == "6"
        changed = await running.front.post(
            f"/v1/participants/{bob}/balances/adjust", json={**keyed, "amount": "5"}, headers=AUTH
        )
        assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict", changed.text
        elsewhere = await running.front.post(f"/v1/participants/{alice}/balances/adjust", json=keyed, headers=AUTH)
        assert elsewhere.status_code == 409, elsewhere.text  # another participant, another partition, the same key
        assert (await _balance(running, bob, asset_id))["available"] == "6"
        assert (await _balance(running, alice, asset_id))["available"] == "10"

    for partition in range(PARTITIONS):
        report = verify(str(partition_data_dir(running.partitions_dir, partition)))
        assert report.ok, report.problems
    # Bob's partition replayed from offset 0 into a fresh copy of the template: the same balances, the operations
    # applied once each (the same key's answer came from the log the first time too).
    replayed = partition_data_dir(tmp_path / "replay", 1)
    shutil.copytree(tmp_path / "template", replayed)
    end = await trio.to_thread.run_sync(log_end, broker, TOPIC, 1)
    process = start_engine(broker, tmp_path / "replay", 1, end, extra=["--read-host", "127.0.0.1"], scope="program")
    await trio.to_thread.run_sync(process.communicate, None, 60)
    assert process.returncode == 0
    report = verify(str(replayed))
    assert report.ok, report.problems
    assert await _balances(replayed) == await _balances(partition_data_dir(running.partitions_dir, 1)) == {bob: 6}


async def _balances(data_dir: Path) -> dict[str, int]:
    async with open_engine(config=config_for(data_dir)) as engine:
        page = await engine.list_participants(limit=100)
        return {item.id: sum(int(b.available) for b in item.balances) for item in page.data}


async def test_without_the_readers_the_front_answers_with_the_receipt(broker: str, tmp_path: Path) -> None:
    """No readers to wait on (no --partitions-dir): 202 with where the record is, at the partition the id names."""
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    participant_id = "00000002-0000-8000-8000-000000000009"
    body = {"program_id": "p", "asset_id": "a", "description": "d", "amount": "1", "idempotency_key": "r1"}
    async with open_event_log(broker, TOPIC, PARTITIONS) as log, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_front, log, LOOPBACK, ApiKeys.of("k")))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as front:
            accepted = await front.post(
                f"/v1/participants/{participant_id}/balances/hold", json=body, headers={"Authorization": "Bearer k"}
            )
            tagged = await front.put(
                f"/v1/participants/{participant_id}/state/tags/vip", headers={"Authorization": "Bearer k"}
            )
        nursery.cancel_scope.cancel()
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert (answer["status"], answer["operation"], answer["idempotency_key"]) == ("ACCEPTED", "HOLD", "r1")
    assert (answer["log"]["partition"], answer["log"]["offset"]) == (2, 0)
    assert tagged.status_code == 202, tagged.text  # a state write likewise (_state_writes.py)
    assert (tagged.json()["operation"], tagged.json()["log"]["offset"]) == ("TAG_ADD", 1)
