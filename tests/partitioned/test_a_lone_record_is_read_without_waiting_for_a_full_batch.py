"""A reader asked for a batch returns the records already there at once, instead of waiting to fill the batch.

The engine role asks for up to 500 records with a 0.2 s timeout. librdkafka's ``consume(n, timeout)`` waits until
it has ``n`` messages or the timeout passed, so a partition getting fewer than 500 records per 0.2 s had every
record held back by up to 0.2 s (bench.partitioned's front-and-engines run found it: ~0.25 s from a 202 to its
event applied, at ~300 events/s). Here the timeout is 5 s, so a reader that waits for a full batch is plain to see.
Real broker (Tansu), both readers of ``_kafka``.
"""

from __future__ import annotations

import time

from scrip_actor.partitioned import _kafka

_TOPIC = "lone"
_TIMEOUT_S = 5.0
_PROMPT_S = 2.0  # a read that returns well before the timeout did not wait for a full batch


def _produce_one(bootstrap: str, value: bytes) -> None:
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str | None] = []
    producer.produce(_TOPIC, b"user1", value, lambda error, _partition, _offset: errors.append(error))
    assert producer.flush() == 0
    assert errors == [None]


def test_partition_reader_returns_a_lone_record_without_waiting_for_a_full_batch(broker: str) -> None:
    _kafka.create_topic(broker, _TOPIC, 1)
    _produce_one(broker, b"first")
    reader = _kafka.PartitionReader(broker, _TOPIC, 0, 0)
    try:
        started = time.monotonic()
        batch = reader.read(500, _TIMEOUT_S)
        assert time.monotonic() - started < _PROMPT_S
        assert [(offset, value) for offset, _key, value, _kind in batch] == [(0, b"first")]
        started = time.monotonic()
        assert reader.read(500, 0.3) == []  # nothing more: an empty read waits for its timeout, no longer
        assert time.monotonic() - started < _PROMPT_S
    finally:
        reader.close()


def test_group_reader_returns_a_lone_record_without_waiting_for_a_full_batch(broker: str) -> None:
    _kafka.create_topic(broker, _TOPIC, 1)
    _produce_one(broker, b"first")
    reader = _kafka.GroupReader(
        broker, _TOPIC, "lone-readers", lambda partitions: dict.fromkeys(partitions, 0), lambda _partitions: None
    )
    try:
        deadline = time.monotonic() + 20.0
        batch: list[_kafka.GroupRecord] = []
        while not batch and time.monotonic() < deadline:  # joining the group takes a few seconds on Tansu
            batch = reader.read(500, 1.0)
        assert [value for _partition, _offset, _key, value, _kind in batch] == [b"first"]
        _produce_one(broker, b"second")  # now a member: the next read must not wait to fill its batch
        started = time.monotonic()
        batch = reader.read(500, _TIMEOUT_S)
        assert time.monotonic() - started < _PROMPT_S
        assert [(offset, value) for _partition, offset, _key, value, _kind in batch] == [(1, b"second")]
    finally:
        reader.close()
