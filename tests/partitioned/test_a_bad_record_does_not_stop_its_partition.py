"""A record that is not an event (malformed JSON, a tombstone, invalid UTF-8, a wrong shape) is passed over.

The front validates, so such a record means another producer wrote to the topic. Raising on it would stop the
partition at that offset on every restart; instead it is refused like a 4xx, its offset recorded, and the records
after it are applied. Real broker (Tansu), the engine role in process, real LMDB.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import trio

from scrip_actor import open_engine
from scrip_actor.engine import consumed_offset
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from tests.partitioned.partition_setup import TOPIC, applied_balances, config_for, seed_partitions

BAD_VALUES: list[bytes | None] = [
    b'{"program_id": ',  # malformed JSON
    None,  # a tombstone
    b'{"program_id": "\xff\xfe"}',  # invalid UTF-8
    b'{"program_id": 7, "external_id": []}',  # JSON of the wrong shape
    b"[" * 10_000,  # nested too deeply
]


def _produce_all(bootstrap: str, values: list[bytes | None]) -> int:
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []
    end = 0

    def on_acked(error: str | None, _partition: int, offset: int) -> None:
        nonlocal end
        if error is not None:
            errors.append(error)
        end = max(end, offset + 1)

    for value in values:
        producer.produce(TOPIC, b"user1", value, on_acked)
        assert producer.flush() == 0  # one at a time: the offsets follow the list's order
    assert errors == []
    return end


async def test_records_that_are_not_events_are_refused_and_the_partition_goes_on(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, 1)
    _kafka.create_topic(broker, TOPIC, 1)

    def good(key: str) -> bytes:
        submit = {"program_id": program_id, "external_id": "user1", "idempotency_key": key, "event_data": {}}
        return msgspec.json.encode(submit)

    values = [good("before"), *BAD_VALUES, good("after")]
    end = await trio.to_thread.run_sync(_produce_all, broker, values)
    assert end == len(values)

    data_dir = partition_data_dir(partitions_dir, 0)
    with trio.fail_after(30):
        assert (
            await run_partition(
                config_for(data_dir), broker, TOPIC, 0, until_offset=end, idempotency_scope="participant"
            )
            == end
        )

    applied, events_stored = await applied_balances(partitions_dir, 1, asset_id)
    assert events_stored == 2 and applied == {"user1": 2}  # the good records on both sides of the bad ones
    async with open_engine(config=config_for(data_dir)) as engine:
        assert consumed_offset(engine, f"{TOPIC}/0") == end  # the bad records' offsets are recorded too
