"""partition_for is Kafka's default keyed partitioner (murmur2, sign bit cleared, mod N), so a stock Kafka
producer keyed by external_id lands where the front does; and it is a pure function of key and count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor.partitioned._routing import murmur2, partition_for

# Kafka's own test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java), signed 32-bit.
KAFKA_VECTORS = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("key", "signed"), KAFKA_VECTORS.items())
def test_murmur2_is_kafkas(key: str, signed: int) -> None:
    assert murmur2(key.encode()) == signed & 0xFFFFFFFF


def test_partition_is_the_positive_hash_mod_the_count() -> None:
    assert partition_for("foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
    with pytest.raises(ValueError):
        partition_for("foobar", 0)


@given(st.text(max_size=80), st.integers(min_value=1, max_value=1024))
def test_every_key_has_one_partition_in_range(key: str, partitions: int) -> None:
    partition = partition_for(key, partitions)
    assert 0 <= partition < partitions
    assert partition_for(key, partitions) == partition
