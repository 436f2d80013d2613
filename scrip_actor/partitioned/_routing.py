"""Which partition a participant lives in: :func:`partition_for`, the one rule the front's writes and reads share.

The hash is Kafka's own default partitioner for keyed records (murmur2 of the key bytes, sign bit cleared,
modulo the partition count: Java's ``DefaultPartitioner`` / ``BuiltInPartitioner.partitionForKey`` and
librdkafka's ``murmur2_random``). Choosing it, rather than any stable hash, means another producer writing
to the events topic with a stock Kafka client and the participant's ``external_id`` as key lands on the same
partition as the front does. It is pure (no broker, no randomness): the same key and count give the same
partition in every process, forever. Changing the partition count moves participants: a topic is never grown
in place (docs/partitioned.md).
"""

from __future__ import annotations

__all__ = ["KIND_EFFECT", "KIND_FUND", "KIND_OPERATION", "KIND_TRANSFER", "murmur2", "partition_for"]

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK_32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of ``data``, as an unsigned int (Kafka's Java returns the same bits signed)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK_32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK_32
        k ^= k >> 24
        k = (k * _M) & _MASK_32
        h = ((h * _M) & _MASK_32) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK_32
    h ^= h >> 13
    h = (h * _M) & _MASK_32
    h ^= h >> 15
    return h


def partition_for(routing_key: str, partitions: int) -> int:
    """The partition (0..partitions-1) of the participant whose routing key (``external_id``) is ``routing_key``."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return (murmur2(routing_key.encode()) & 0x7FFFFFFF) % partitions


# A record's ``scrip-kind`` header (``_kafka.KIND_HEADER``): none for an event (what a stock producer writes), these
# for the other commands of the events topic (scrip_actor/partitioned/_apply.py decodes each).
KIND_TRANSFER = "transfer"  # a TransferCreate, at its source's partition (the front's POST /v1/transfers)
KIND_EFFECT = "effect"  # an OutboxRecord from another partition's relay
KIND_FUND = "fund"  # a WalletFund, at its wallet's owner partition (the front's POST .../assets/{asset_id}/fund)
KIND_OPERATION = "operation"  # a ParticipantOperation, at its participant's partition (POST …/balances/{operation})
