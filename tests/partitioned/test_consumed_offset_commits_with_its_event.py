"""The stored log offset moves with the records it covers: with a new event's record, or alone for a record that
admits nothing new (a replay of its idempotency key, or refused input), and survives a restart. No broker: this
is the engine half of the engine role (scrip_actor/engine/_consumed.py), on a real LMDB store."""

from __future__ import annotations

from pathlib import Path

from scrip_actor import EventSubmit, open_engine
from scrip_actor.engine import admit_consumed, consumed_offset
from scrip_actor.errors import ValidationFailed
from scrip_actor.model import Event
from tests.partitioned.partition_setup import config_for, seed_partitions

LOG = "events/0"


def _event(program_id: str, key: str, who: str = "alice") -> EventSubmit:
    return EventSubmit(program_id=program_id, external_id=who, idempotency_key=key, event_data={})


async def test_the_offset_covers_new_replayed_and_refused_records_and_survives_a_restart(tmp_path: Path) -> None:
    partitions_dir, program_id, _asset_id = await seed_partitions(tmp_path, 1)
    data_dir = partitions_dir / "partition-0"
    async with open_engine(config=config_for(data_dir)) as engine:
        assert consumed_offset(engine, LOG) == 0
        results = await admit_consumed(engine, LOG, [(0, _event(program_id, "a")), (1, _event(program_id, "b"))])
        assert [isinstance(result, Event) for result in results] == [True, True]
        assert consumed_offset(engine, LOG) == 2
        replay = await admit_consumed(engine, LOG, [(2, _event(program_id, "a"))])
        assert isinstance(replay[0], Event) and replay[0].id == results[0].id  # the original, not a new event
        assert consumed_offset(engine, LOG) == 3
        refused = await admit_consumed(engine, LOG, [(3, _event("no-such-program", "c"))])
        assert not isinstance(refused[0], Event)
        bad = ValidationFailed("record at offset 4 is not an event")
        assert await admit_consumed(engine, LOG, [(4, bad)]) == [bad]
        assert consumed_offset(engine, LOG) == 5
        assert consumed_offset(engine, "events/1") == 0  # each log's offset is its own
        await engine.wait_idle()
    async with open_engine(config=config_for(data_dir)) as engine:
        assert consumed_offset(engine, LOG) == 5
        events = await engine.list_events(limit=10)
        assert sorted(event.idempotency_key for event in events.data) == ["a", "b"]
