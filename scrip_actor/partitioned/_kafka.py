"""The one module that speaks to the broker (confluent-kafka): everything else sees plain tuples and bytes.

Kept this small on purpose: the broker client is a C library with its own threads and callbacks, and issue 16
asks that swapping it, or faking nothing, touch one file. Calls here block (they are run with
``trio.to_thread.run_sync`` by callers on the trio thread).

Settings that matter for correctness, whatever the broker (Tansu in tests, Apache Kafka or Redpanda in
production, docs/partitioned.md):

* the producer is idempotent with ``acks=all``: a record acknowledged is on every in-sync replica, and a retry
  inside the client never writes it twice;
* consumers never commit offsets to the broker (``enable.auto.commit`` off): the partition's LMDB store holds the
  offset, in the transaction of the record's effects (scrip_actor/engine/_consumed.py). The broker's group
  offsets would be a second, racing truth.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = [
    "KIND_HEADER",
    "GroupReader",
    "GroupRecord",
    "LogRecord",
    "PartitionReader",
    "RecordProducer",
    "create_topic",
]

# (offset, key, value — None for a tombstone —, kind: the record's ``scrip-kind`` header, None when it has none)
LogRecord = tuple[int, bytes | None, bytes | None, str | None]
GroupRecord = tuple[int, int, bytes | None, bytes | None, str | None]  # (partition, offset, key, value, kind)

# What a record is, named in a header so that a stock Kafka producer's plain records (no header) stay events, and a
# value is never sniffed: ``transfer`` and ``effect`` records (scrip_actor/partitioned/_cross.py) carry the kind.
KIND_HEADER = "scrip-kind"
# Consume errors the client recovers from by itself (a broker restarting, a leader moving): reading goes on. Any
# other error stops the partition — above all ``_AUTO_OFFSET_RESET``, an offset the log no longer holds.
_TRANSIENT_CONSUME_ERRORS = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)


def create_topic(bootstrap: str, topic: str, partitions: int, *, timeout_s: float = 10.0) -> None:
    """Create ``topic`` with ``partitions`` partitions (replication factor 1: tests; production creates its own)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class RecordProducer:
    """An idempotent, acks=all producer; :meth:`produce` calls ``on_acked(error, partition, offset)`` once the broker
    answered (``error`` None: the record is stored at that partition and offset).

    ``on_acked`` runs inside :meth:`poll`, :meth:`flush` or :meth:`produce`, on whichever thread calls them.
    ``delivery_timeout_s`` bounds how long the client retries a record (``message.timeout.ms``) before it reports
    an error instead: with the broker down, an answer comes within that time rather than librdkafka's 300 s.
    """

    def __init__(self, bootstrap: str, *, delivery_timeout_s: float = 300.0) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
            }
        )

    def produce(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        on_acked: Callable[[str | None, int, int], None],
        *,
        partition: int | None = None,
        kind: str | None = None,
    ) -> None:
        """Queue one record keyed by ``key`` (the participant's routing key: one partition per participant).

        ``partition`` None leaves the choice to the client's partitioner; the front names it
        (scrip_actor/partitioned/_routing.py), so the rule is ours, not a client setting. ``kind`` (None: an event)
        goes in the ``scrip-kind`` header.
        """

        def delivered(error: KafkaError | None, message: Message) -> None:
            on_acked(None if error is None else str(error), message.partition(), message.offset())

        chosen: dict[str, object] = {} if partition is None else {"partition": partition}
        if kind is not None:
            chosen["headers"] = [(KIND_HEADER, kind.encode())]
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=delivered, **chosen)
                break
            except KafkaException as error:  # refused before queueing (e.g. an unknown partition): same answer path
                on_acked(str(error), -1, -1)
                return
            except BufferError:  # the client's queue is full: let it deliver some first
                self._producer.poll(0.05)
        self._producer.poll(0)

    def partition_count(self, topic: str, timeout_s: float) -> int | None:
        """How many partitions ``topic`` has (None: no such topic). Raises ConnectionError if the broker does not
        answer within ``timeout_s``."""
        try:
            metadata = self._producer.list_topics(timeout=timeout_s)  # all topics: naming one may create it
        except KafkaException as error:
            raise ConnectionError(f"the broker did not answer: {error}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return None
        return len(found.partitions)

    def poll(self, timeout_s: float) -> int:
        """Serve delivery reports (their ``on_acked`` calls) for up to ``timeout_s``; returns how many ran."""
        return self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for every queued record's answer; returns how many are still unanswered."""
        return self._producer.flush(timeout_s)


def _consume(consumer: Consumer, records_max: int, timeout_s: float) -> list[Message]:
    """Up to ``records_max`` messages, waiting at most ``timeout_s`` for the first, none for the rest.

    ``Consumer.consume(n, timeout)`` alone waits until it has ``n`` messages or the timeout passed: a partition
    receiving fewer than ``n`` records per timeout would hold every record back by up to the whole timeout
    (bench.partitioned's front-and-engines run measured ~0.25 s from 202 to applied at ~300 events/s). So: wait
    for one, then take whatever the client has already fetched."""
    messages = consumer.consume(1, timeout_s)
    if messages and records_max > 1:
        messages.extend(consumer.consume(records_max - 1, 0))
    return messages


class PartitionReader:
    """Reads one partition from ``start_offset`` on, in offset order, without any group membership or commits."""

    def __init__(self, bootstrap: str, topic: str, partition: int, start_offset: int) -> None:
        self._topic, self._partition = topic, partition
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"scrip-engine-{topic}-{partition}",  # required by the client; never committed to
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # A stored offset the log no longer holds (retention deleted records not yet applied, or the
                # topic was recreated) is an error to stop on, not a silent jump to either end.
                "auto.offset.reset": "error",
            }
        )
        self._consumer.assign([TopicPartition(topic, partition, start_offset)])

    def read(self, records_max: int, timeout_s: float) -> list[LogRecord]:
        """Up to ``records_max`` records, waiting at most ``timeout_s`` for the first. Raises on a broker error."""
        return [record[1:] for record in _records(_consume(self._consumer, records_max, timeout_s))]

    def seek(self, offset: int) -> None:
        """Read from ``offset`` next (after a record refused for overload, to read it again)."""
        self._consumer.seek(TopicPartition(self._topic, self._partition, offset))

    def close(self) -> None:
        self._consumer.close()


def _kind(message: Message) -> str | None:
    headers = message.headers()
    if not headers:
        return None
    for name, value in headers:
        if name == KIND_HEADER:
            return None if value is None else value.decode("utf-8", "replace")
    return None


def _records(messages: list[Message]) -> list[GroupRecord]:
    """The records among ``messages``; a transient error is passed over (the client retries), any other raises."""
    batch: list[GroupRecord] = []
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                continue
            if error.code() in _TRANSIENT_CONSUME_ERRORS and not error.fatal():
                print(f"scrip: broker: {error.str()} (transient, the client retries)", file=sys.stderr, flush=True)
                continue
            raise KafkaException(error)
        batch.append((message.partition(), message.offset(), message.key(), message.value(), _kind(message)))
    return batch


class GroupReader:
    """A consumer-group member of ``topic`` (classic protocol): the broker decides which partitions it reads.

    ``on_assign(partitions)`` returns where to start reading each newly assigned partition (the offset stored in
    its LMDB store: broker-committed offsets are never read nor written); ``on_revoke(partitions)`` must have
    stopped using them when it returns, because the new owner may start reading as soon as it does. Both are
    called *inside* :meth:`read` and :meth:`close`, on the calling thread (librdkafka's rebalance callbacks run in
    ``consume``/``close``), so a batch is never being applied while partitions move. A partition lost without a
    clean revocation (session timed out) is handed to ``on_revoke`` too.

    ``strategy``: ``cooperative-sticky`` (incremental: only moving partitions are revoked) or an eager one
    (``range``, ``roundrobin``: everything is revoked, then reassigned).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        on_assign: Callable[[list[int]], dict[int, int]],
        on_revoke: Callable[[list[int]], None],
        *,
        strategy: str = "cooperative-sticky",
        session_timeout_ms: int = 6000,
    ) -> None:
        self._topic = topic
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._cooperative = strategy == "cooperative-sticky"  # incremental (un)assign; eager ones replace it all
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "partition.assignment.strategy": strategy,
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": max(100, session_timeout_ms // 6),
                "enable.auto.commit": False,  # the offset lives in LMDB, with the record's effects
                "enable.auto.offset.store": False,
                # As PartitionReader: a stored offset the log no longer holds is an error, not a silent jump.
                "auto.offset.reset": "error",
            }
        )
        self._consumer.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        starts = self._on_assign([tp.partition for tp in partitions])
        chosen = [TopicPartition(self._topic, n, offset) for n, offset in starts.items()]
        if self._cooperative:
            consumer.incremental_assign(chosen)
        else:
            consumer.assign(chosen)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._on_revoke([tp.partition for tp in partitions])  # before unassigning: stop, then let go
        if self._cooperative:
            consumer.incremental_unassign(partitions)
        else:
            consumer.unassign()

    def read(self, records_max: int, timeout_s: float) -> list[GroupRecord]:
        """Up to ``records_max`` records of the assigned partitions, waiting at most ``timeout_s`` for the first;
        rebalance callbacks may run in here."""
        return _records(_consume(self._consumer, records_max, timeout_s))

    def seek(self, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` next (after a record refused for overload, to read it again)."""
        self._consumer.seek(TopicPartition(self._topic, partition, offset))

    def close(self) -> None:
        """Leave the group (its partitions are revoked through ``on_revoke`` first)."""
        self._consumer.close()
