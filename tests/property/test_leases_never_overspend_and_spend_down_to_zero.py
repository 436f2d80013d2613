"""Shared funding spent from many partitions: never one unit overspent, and nothing stranded once all is returned.

A hypothesis state machine drives one owner and several partitions, each with its own real LMDB environment, through
random credits, deliveries in any order, redeliveries (a message delivered and kept in flight), expiries and crashes.
A crash drops the partition's in-memory object and every message it had committed but not yet produced, and every
reply on its way to it; on restart it produces ``pending()`` again. ``spent_minor`` below is the ground truth: what
the partitions' credits really took (local draws plus endgame debits they were told succeeded).
"""

from __future__ import annotations

import shutil
import tempfile

import lmdb
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from scrip_actor.partitioned._leases import (
    Debited,
    LeaseMessage,
    LeaseOwner,
    LeasePolicy,
    LeaseReply,
    PartitionLeases,
)

PARTITIONS_COUNT = 6
WALLET = "wallet-1"
# sync=False: the crashes here lose uncommitted txns and unproduced messages, not the disk, so fsync only costs time.
POLICY = LeasePolicy(partitions_count=PARTITIONS_COUNT, min_lease_minor=5, lease_ttl_ms=1_000, denied_retry_ms=200)


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="leases-")
        self.owner_env = lmdb.open(f"{self.directory}/owner", max_dbs=4, map_size=1 << 24, sync=False)
        self.owner = LeaseOwner(self.owner_env, POLICY)
        self.envs = [
            lmdb.open(f"{self.directory}/p{p}", max_dbs=4, map_size=1 << 24, sync=False)
            for p in range(PARTITIONS_COUNT)
        ]
        self.partitions = [PartitionLeases(env, p, POLICY) for p, env in enumerate(self.envs)]
        self.to_owner: list[LeaseMessage] = []
        self.to_partition: list[LeaseReply] = []
        self.offsets = [0] * PARTITIONS_COUNT
        self.now_ms = 0
        self.funded_minor = 0
        self.spent_minor = 0

    @initialize(amount_minor=st.integers(1, 400))
    def fund(self, amount_minor: int) -> None:
        with self.owner_env.begin(write=True) as txn:
            self.owner.fund(txn, WALLET, amount_minor)
        self.funded_minor = amount_minor

    @rule(partition=st.integers(0, PARTITIONS_COUNT - 1), amount_minor=st.integers(1, 30))
    def credit(self, partition: int, amount_minor: int) -> None:
        self.offsets[partition] += 1
        with self.envs[partition].begin(write=True) as txn:
            side = self.partitions[partition]
            if side.draw(txn, WALLET, amount_minor, self.now_ms):
                self.spent_minor += amount_minor
            else:
                self.to_owner.extend(side.short(txn, WALLET, amount_minor, self.offsets[partition], self.now_ms))

    def _deliver_to_owner(self, message: LeaseMessage) -> None:
        with self.owner_env.begin(write=True) as txn:
            self.to_partition.append(self.owner.handle(txn, message, self.now_ms))

    def _deliver_to_partition(self, reply: LeaseReply) -> None:
        with self.envs[reply.partition].begin(write=True) as txn:
            if self.partitions[reply.partition].on_reply(txn, reply, self.now_ms) and isinstance(reply, Debited):
                self.spent_minor += reply.amount_minor

    @precondition(lambda self: self.to_owner)
    @rule(data=st.data(), keep=st.booleans())
    def deliver_to_owner(self, data: st.DataObject, keep: bool) -> None:
        index = data.draw(st.integers(0, len(self.to_owner) - 1))
        message = self.to_owner[index] if keep else self.to_owner.pop(index)
        self._deliver_to_owner(message)

    @precondition(lambda self: self.to_partition)
    @rule(data=st.data(), keep=st.booleans())
    def deliver_to_partition(self, data: st.DataObject, keep: bool) -> None:
        index = data.draw(st.integers(0, len(self.to_partition) - 1))
        reply = self.to_partition[index] if keep else self.to_partition.pop(index)
        event(type(reply).__name__)
        self._deliver_to_partition(reply)

    @rule(elapsed_ms=st.integers(1, 600))
    def advance(self, elapsed_ms: int) -> None:
        self.now_ms += elapsed_ms

    @rule(partition=st.integers(0, PARTITIONS_COUNT - 1))
    def expire(self, partition: int) -> None:
        with self.envs[partition].begin(write=True) as txn:
            self.to_owner.extend(self.partitions[partition].expire(txn, self.now_ms))

    @rule(partition=st.integers(0, PARTITIONS_COUNT - 1))
    def crash_and_restart(self, partition: int) -> None:
        self.to_owner = [m for m in self.to_owner if m.partition != partition]
        self.to_partition = [r for r in self.to_partition if r.partition != partition]
        self.partitions[partition] = side = PartitionLeases(self.envs[partition], partition, POLICY)
        with self.envs[partition].begin() as txn:
            self.to_owner.extend(side.pending(txn))

    @invariant()
    def never_overspent(self) -> None:
        with self.owner_env.begin() as txn:
            books = self.owner.books(txn, WALLET)
            leases = self.owner.open_leases(txn)
        if books is None:
            return
        assert books.outstanding_minor == sum(lease.granted_minor for lease in leases.values())
        assert self.spent_minor <= books.spent_minor + books.outstanding_minor
        assert self.spent_minor <= self.funded_minor

    def _drain(self) -> None:
        while self.to_owner or self.to_partition:
            if self.to_owner:
                self._deliver_to_owner(self.to_owner.pop(0))
            if self.to_partition:
                self._deliver_to_partition(self.to_partition.pop(0))

    def teardown(self) -> None:
        try:
            if self.funded_minor:
                self._settle_and_spend_down()
        finally:
            for env in (self.owner_env, *self.envs):
                env.close()
            shutil.rmtree(self.directory)

    def _settle_and_spend_down(self) -> None:
        self._drain()
        for partition, env in enumerate(self.envs):
            with env.begin(write=True) as txn:
                self.to_owner.extend(self.partitions[partition].release_all(txn))
        self._drain()
        with self.owner_env.begin() as txn:
            books = self.owner.books(txn, WALLET)
        assert books is not None
        assert books.outstanding_minor == 0  # every lease came back
        assert books.spent_minor == self.spent_minor  # the owner's books agree with what was really spent
        assert books.remainder_minor == self.funded_minor - self.spent_minor  # nothing stranded
        if books.remainder_minor:
            self.now_ms += POLICY.denied_retry_ms
            self.credit(0, books.remainder_minor)
            self._drain()
        assert self.spent_minor == self.funded_minor  # demand beyond the funding spends it down to exactly 0


TestLeases = LeaseMachine.TestCase
TestLeases.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
