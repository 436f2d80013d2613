"""A participant's tags, attributes and counters written through the front: produced to the partition its id names,
applied there by the embedded edit in turn with its events, answered as the embedded state routes answer (their
status and body: 201 for a new tag, 204 for a delete, a refusal's own status), the log offset in the edit's own
record, so a replay from offset 0 ends with the same state.

Real Tansu, the real front (Hypercorn on loopback), engine roles with their readers, real LMDB; `scrip verify` on
every store afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from scrip_actor import partitioned
from scrip_actor.engine import STATE_WRITE_NAMES, open_engine
from scrip_actor.partitioned import _kafka
from scrip_actor.partitioned._operation_records import UPSERT, ParticipantOperation, StateWriteName
from scrip_actor.partitioned._partition_ids import partition_of
from scrip_actor.verify import verify
from tests.partitioned.front_setup import Running, front_with_readers
from tests.partitioned.partition_setup import TOPIC, config_for, log_end, seed_partitions, start_engine
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, KEY, PARTITIONS
from tests.partitioned.test_front_runs_a_balance_operation_at_its_participants_partition import (
    _on,
    _participant_with_points,
)


@asynccontextmanager
async def _running(broker: str, tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    """The front with its readers over 3 partitions seeded with a program, its asset and a "status" tier."""
    partitions_dir, program_id, _ = await seed_partitions(tmp_path, PARTITIONS, tier=True)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    async with front_with_readers(broker, partitions_dir, PARTITIONS, KEY) as running:
        yield running, program_id


def test_the_records_state_writes_are_the_engines() -> None:
    assert set(StateWriteName.__args__) == STATE_WRITE_NAMES  # type: ignore[attr-defined]


async def test_state_writes_run_at_the_participants_partition(broker: str, tmp_path: Path) -> None:
    carol = ""
    async with _running(broker, tmp_path) as (running, program_id):
        alice_external = _on(0, "alice")
        alice = await _participant_with_points(running, program_id, alice_external, 1)
        assert partition_of(alice) == 0
        state = f"/v1/participants/{alice}/state"
        front = running.front

        added = await front.put(f"{state}/tags/VIP", headers=AUTH)
        assert (added.status_code, added.json()) == (201, {"tag": "vip"}), added.text
        again = await front.put(f"{state}/tags/vip", headers=AUTH)
        assert (again.status_code, again.json()) == (200, {"tag": "vip"}), again.text
        replaced = await front.put(f"{state}/tags", json={"tags": ["gold", "Early"]}, headers=AUTH)
        assert replaced.status_code == 200 and sorted(replaced.json()["tags"]) == ["early", "gold"], replaced.text
        removed = await front.delete(f"{state}/tags/gold", headers=AUTH)
        assert (removed.status_code, removed.text) == (204, ""), removed.text

        merged = await front.patch(f"{state}/attributes", json={"attributes": {"city": "Oslo"}}, headers=AUTH)
        assert (merged.status_code, merged.json()) == (200, {"attributes": {"city": "Oslo"}}), merged.text
        one = await front.put(f"{state}/attributes/lang", json={"value": "nb"}, headers=AUTH)
        assert (one.status_code, one.json()) == (200, {"key": "lang", "value": "nb"}), one.text
        dropped = await front.delete(f"{state}/attributes/city", headers=AUTH)
        assert dropped.status_code == 204, dropped.text

        counter = await front.put(f"{state}/counters/visits", json={"value": "7.5"}, headers=AUTH)
        assert counter.status_code == 200, counter.text
        assert counter.json()["key"] == "visits" and counter.json()["value"] == "7.5", counter.text
        windowed = await front.put(f"{state}/counters/weekly", json={"value": "2", "reset_after": "168h"}, headers=AUTH)
        assert windowed.status_code == 200 and windowed.json()["reset_after"] == "168h", windowed.text
        gone = await front.delete(f"{state}/counters/weekly", headers=AUTH)
        assert gone.status_code == 204, gone.text

        # A tier set by hand, in the program the query names: set, removed (twice: the second removes nothing), set.
        tier = f"{state}/tiers/status"
        gold = await front.put(tier, params={"program_id": program_id}, json={"level": "gold"}, headers=AUTH)
        assert gold.status_code == 200 and (gold.json()["level"], gold.json()["rank"]) == ("gold", 2), gold.text
        for _ in range(2):
            cleared = await front.delete(tier, params={"program_id": program_id}, headers=AUTH)
            assert cleared.status_code == 204, cleared.text
        unknown_level = await front.put(tier, params={"program_id": program_id}, json={"level": "x"}, headers=AUTH)
        assert unknown_level.status_code == 400, unknown_level.text
        no_program = await front.put(tier, json={"level": "gold"}, headers=AUTH)
        assert no_program.status_code == 400, no_program.text
        silver = await front.put(tier, params={"program_id": program_id}, json={"level": "silver"}, headers=AUTH)
        assert silver.status_code == 200, silver.text
        held = await front.get(tier, params={"program_id": program_id}, headers=AUTH)
        assert (held.status_code, held.json()["level"]) == (200, "silver"), held.text

        # The participant itself: its profile and its status, answered with the whole participant.
        profile = await front.patch(
            f"/v1/participants/{alice}", json={"display_name": "Alice", "external_id": alice_external}, headers=AUTH
        )
        assert profile.status_code == 200, profile.text
        assert (profile.json()["id"], profile.json()["display_name"]) == (alice, "Alice")
        renamed = await front.patch(f"/v1/participants/{alice}", json={"external_id": "someone-else"}, headers=AUTH)
        assert renamed.status_code == 400 and renamed.json()["details"]["fields"][0]["reason"] == "immutable"
        suspended = await front.patch(f"/v1/participants/{alice}/status", json={"status": "SUSPENDED"}, headers=AUTH)
        assert (suspended.status_code, suspended.json()["status"]) == (200, "SUSPENDED"), suspended.text
        inactive = await front.put(tier, params={"program_id": program_id}, json={"level": "gold"}, headers=AUTH)
        assert inactive.status_code == 409 and inactive.json()["code"] == "participant_inactive", inactive.text
        bad_status = await front.patch(f"/v1/participants/{alice}/status", json={"status": "ASLEEP"}, headers=AUTH)
        assert bad_status.status_code == 400, bad_status.text

        # Read back through the front's reads (routed to the same partition): what the writes answered.
        participant = (await front.get(f"/v1/participants/{alice}", headers=AUTH)).json()
        assert sorted(participant["tags"]) == ["early"]
        assert participant["attributes"] == {"lang": "nb"}
        assert (participant["status"], participant["display_name"]) == ("SUSPENDED", "Alice")
        counters = (await front.get(f"{state}/counters", headers=AUTH)).json()["data"]
        assert [(item["key"], item["value"]) for item in counters] == [("visits", "7.5")]
        history = await front.get(f"/v1/participants/{alice}/activity/state-history", headers=AUTH)
        assert history.status_code == 200, history.text
        assert {item["source"] for item in history.json()["data"]} >= {"api"}

        # Refusals: judged at the front (the embedded body types) or kept by the partition with their status.
        malformed = await front.put(f"{state}/counters/visits", json={"value": "lots"}, headers=AUTH)
        assert malformed.status_code == 400, malformed.text
        too_long = await front.put(f"{state}/tags/{'t' * 300}", headers=AUTH)
        assert too_long.status_code == 400 and too_long.json()["code"] == "bad_request", too_long.text
        assert too_long.json()["request_id"]
        nowhere = await front.put("/v1/participants/ffffffff-0000-8000-8000-000000000001/state/tags/x", headers=AUTH)
        assert nowhere.status_code == 404, nowhere.text
        unknown = await front.delete("/v1/participants/00000001-0000-8000-8000-000000000001/state/tags/x", headers=AUTH)
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found", unknown.text
        assert (await front.put(f"{state}/tags/x")).status_code == 401
        assert sorted((await front.get(f"/v1/participants/{alice}", headers=AUTH)).json()["tags"]) == ["early"]

        # The upsert: at the partition the external id routes to, with an id of that partition; then her events
        # find her there.
        carol_external = _on(0, "carol")
        new = {"external_id": carol_external, "program_id": program_id, "display_name": "Carol"}
        created = await front.post("/v1/participants", json=new, headers=AUTH)
        assert created.status_code == 201, created.text
        carol = created.json()["id"]
        assert partition_of(carol) == 0 and created.json()["display_name"] == "Carol"
        updated = await front.post("/v1/participants", json={**new, "display_name": "C"}, headers=AUTH)
        assert (updated.status_code, updated.json()["id"], updated.json()["display_name"]) == (200, carol, "C")
        assert await _participant_with_points(running, program_id, carol_external, 1) == carol
        missing = await front.post("/v1/participants", json={"program_id": program_id}, headers=AUTH)
        assert missing.status_code == 400, missing.text

    for partition in range(PARTITIONS):
        report = verify(str(partitioned.partition_data_dir(running.partitions_dir, partition)))
        assert report.ok, report.problems
    # Alice's partition replayed from offset 0 (Carol's too) into a fresh copy of the template: the same state, each write once.
    replayed = partitioned.partition_data_dir(tmp_path / "replay", 0)
    shutil.copytree(tmp_path / "template", replayed)
    end = await trio.to_thread.run_sync(log_end, broker, TOPIC, 0)
    process = start_engine(broker, tmp_path / "replay", 0, end, extra=["--read-host", "127.0.0.1"], scope="program")
    await trio.to_thread.run_sync(process.communicate, None, 60)
    assert process.returncode == 0
    assert verify(str(replayed)).ok
    live = await _state(partitioned.partition_data_dir(running.partitions_dir, 0), alice)
    expected = (["early"], {"lang": "nb"}, {"visits": "7.5"}, ("SUSPENDED", "Alice", ["silver"]))
    assert await _state(replayed, alice) == live == expected
    carol_state = await _state(partitioned.partition_data_dir(running.partitions_dir, 0), carol)
    assert await _state(replayed, carol) == carol_state
    assert carol_state[3] == ("ACTIVE", "C", [])


async def _state(data_dir: Path, participant_id: str) -> tuple[list[str], dict[str, str], dict[str, Any], Any]:
    async with open_engine(config=config_for(data_dir)) as engine:
        found = await engine.get_participant(participant_id)
        levels = [held.level for program_id in found.program_ids for held in engine.tiers.states(found.id, program_id)]
        profile = (found.status, found.display_name, levels)
        return sorted(found.tags), dict(found.attributes), dict(found.counters), profile


def test_a_record_missing_its_writes_arguments_is_refused_on_decoding() -> None:
    """A record from another producer that lacks what its write needs is a decode error (a kept refusal at the
    partition), never a TypeError inside the engine; each write's complete record decodes."""
    decoder = msgspec.json.Decoder(ParticipantOperation)
    for write in (*StateWriteName.__args__, UPSERT):  # type: ignore[attr-defined]
        bare = {"operation": write, "participant_id": "00000000-0000-8000-8000-000000000001", "state": {}}
        with pytest.raises(msgspec.ValidationError, match="state carries"):
            decoder.decode(msgspec.json.encode(bare))
    whole = {"operation": "COUNTER_SET", "participant_id": "p", "state": {"key": "visits", "value": "2"}}
    assert decoder.decode(msgspec.json.encode(whole)).state.value == "2"  # type: ignore[union-attr]
