"""Events parked on their participant's partition until their idempotency key's partition answers.

An event whose key belongs to another partition (``claim_partition_for``) must not be admitted before that partition
has claimed the key for it: another participant's event with the same key may live elsewhere, and only the key's
partition sees both. So the event is **parked** — stored here, in the LMDB record that also holds its log offset
and the outbox's :class:`~scrip_actor.partitioned._claims.ClaimRequest` — and admitted (or refused with the 409)
when the :class:`~scrip_actor.partitioned._claims.ClaimAnswer` arrives on this partition's log.

A catalog redemption of a reward whose stock another partition keeps also waits here for that partition's answer
(``stock_from``, :mod:`._reward_stock`); it is judged once both answers it needs are in.

Order per participant is kept: while a participant has a parked event, its later events (and the transfers it
sends) are parked behind it, in offset order, even those whose key this partition owns, and each participant's
queue is released from the head only. Other participants are not held up.

Keys in the ``parked`` side database: ``be64(offset)`` → :class:`Parked`. The in-memory queues are rebuilt from it
when the partition is opened, so a restart resumes exactly where the records say.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import lmdb
import msgspec

from scrip_actor.store import Op, be64

__all__ = ["PARKED_DB", "Parked", "ParkedEvents", "parked_db"]

PARKED_DB = "parked"


def parked_db(env: lmdb.Environment) -> object | None:
    """The store's ``parked`` database, or None if it never parked anything (it is not created here: a reader or
    a partition with claims off must not add a side database)."""
    try:
        return env.open_db(PARKED_DB.encode(), create=False)
    except lmdb.NotFoundError:
        return None


class Parked(msgspec.Struct, frozen=True, kw_only=True):
    """One waiting record: its offset, its participant, its request (JSON), and its key's answer so far.

    A ``transfer`` (its source has an event waiting) or a ``credit`` from another partition (its recipient has one:
    that event may create the recipient) is parked only to keep order, and applied when it reaches the head."""

    offset: int
    external_id: str
    event: bytes  # the EventSubmit (a transfer's TransferCreate, a credit's TransitCredit) as JSON
    claim_partition: int  # == this partition: parked only to keep order; judged here when it reaches the head
    kind: str = "event"  # or "transfer", "operation" (a balance operation), "credit"
    waits_for: list[str] = []  # a transfer: local recipients whose earlier parked records must go first
    granted: bool | None = None  # None: no answer yet
    conflict_event_ref: str | None = None
    stock_from: int | None = None  # a catalog redemption: the partition asked for its units (None: it asks none)
    stock: bytes | None = None  # that partition's StockAnswer (JSON), once it is in


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Parked)


class ParkedEvents:
    """The parked events of one partition: durable in LMDB, queued per participant in memory."""

    def __init__(self, env: lmdb.Environment, partition: int) -> None:
        self._db = env.open_db(PARKED_DB.encode())
        self.partition = partition
        self._queues: dict[str, deque[Parked]] = {}
        with env.begin() as txn, txn.cursor(db=self._db) as cursor:
            for key, value in cursor:
                parked = _decoder.decode(value)
                assert key == be64(parked.offset), (key, parked)
                self._queues.setdefault(parked.external_id, deque()).append(parked)

    def blocked(self, external_id: str) -> bool:
        """Whether this participant has an event waiting (its later events must wait behind it)."""
        return external_id in self._queues

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def park(self, parked: Parked) -> Op:
        """Queue ``parked`` behind the participant's others; the op that stores it (in its record's own txn)."""
        queue = self._queues.setdefault(parked.external_id, deque())
        assert not queue or queue[-1].offset < parked.offset, (queue[-1], parked)
        queue.append(parked)
        return (PARKED_DB, be64(parked.offset), _encoder.encode(parked))

    def answer(self, offset: int, granted: bool, conflict_event_ref: str | None) -> tuple[Parked, Op] | None:
        """Record the key's answer for the event parked at ``offset``; None if it is not parked (a copy of an answer
        already applied, or one for an event already released)."""
        found = self._find(offset)
        if found is None or found[0][found[1]].granted is not None:
            return None
        queue, index = found
        answered = queue[index] = msgspec.structs.replace(
            queue[index], granted=granted, conflict_event_ref=conflict_event_ref
        )
        return answered, (PARKED_DB, be64(offset), _encoder.encode(answered))

    def answer_stock(self, offset: int, answer: bytes) -> Op | None:
        """Record the stock's answer (a StockAnswer as JSON) on the redemption parked at ``offset``; None if it is not
        parked there or already has one (a copy)."""
        found = self._find(offset)
        if found is None or found[0][found[1]].stock_from is None or found[0][found[1]].stock is not None:
            return None
        queue, index = found
        answered = queue[index] = msgspec.structs.replace(queue[index], stock=answer)
        return (PARKED_DB, be64(offset), _encoder.encode(answered))

    def _find(self, offset: int) -> tuple[deque[Parked], int] | None:
        """The queue and place of the record parked at ``offset``."""
        for queue in self._queues.values():
            for index, parked in enumerate(queue):
                if parked.offset == offset:
                    return queue, index
        return None

    def ready(self, held: Callable[[str], bool] = lambda _external_id: False) -> list[Parked]:
        """Each participant's head event, if it can be judged now (answered, or its key is this partition's; and its
        stock's answer in, if it asked for one).

        ``held``: whether a participant has an event held for a shared wallet; a transfer or credit touching it
        waits (a parked event may go on: it only joins the mailbox behind the held one)."""
        heads = (queue[0] for queue in self._queues.values())
        return [
            head
            for head in heads
            if (head.granted is not None or head.claim_partition == self.partition)
            and (head.stock_from is None or head.stock is not None)
            and not self._waiting(head)
            and (head.kind == "event" or not (held(head.external_id) or any(map(held, head.waits_for))))
        ]

    def _waiting(self, head: Parked) -> bool:
        """Whether a participant ``head`` waits for still has a parked record from before it."""
        queues = self._queues
        return any(name in queues and queues[name][0].offset < head.offset for name in head.waits_for)

    def release_op(self, parked: Parked) -> Op:
        """The op that deletes the head event ``parked`` (written in its admission's, or refusal's, record)."""
        assert self._queues[parked.external_id][0].offset == parked.offset, parked
        return (PARKED_DB, be64(parked.offset), None)

    def pop(self, parked: Parked) -> None:
        """Take the head event off its participant's queue, once its release op is appended."""
        queue = self._queues[parked.external_id]
        assert queue[0].offset == parked.offset, (queue[0], parked)
        queue.popleft()
        if not queue:
            del self._queues[parked.external_id]
