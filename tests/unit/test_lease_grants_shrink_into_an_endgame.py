"""The owner's grants shrink with the remainder, stop at the endgame threshold, and answer a redelivery the same."""

from __future__ import annotations

from pathlib import Path

import lmdb

from scrip_actor.partitioned._leases import (
    Debited,
    EndgameDebit,
    Insufficient,
    LeaseDenied,
    LeaseGrant,
    LeaseOwner,
    LeasePolicy,
    LeaseRequest,
    LeaseReturn,
    PartitionLeases,
)

POLICY = LeasePolicy(partitions_count=4, min_lease_minor=10, share_divisor=2)


def _owner(tmp_path: Path, funded_minor: int) -> tuple[lmdb.Environment, LeaseOwner]:
    env = lmdb.open(str(tmp_path / "owner"), max_dbs=2, map_size=1 << 22, sync=False)
    owner = LeaseOwner(env, POLICY)
    with env.begin(write=True) as txn:
        owner.fund(txn, "w", funded_minor)
    return env, owner


def _request(partition: int, request_id: str, want_minor: int = 1_000) -> LeaseRequest:
    return LeaseRequest(partition=partition, wallet_id="w", want_minor=want_minor, request_id=request_id)


def test_grants_shrink_as_the_remainder_shrinks_then_stop_in_the_endgame(tmp_path: Path) -> None:
    env, owner = _owner(tmp_path, 1_000)
    granted: list[int] = []
    with env.begin(write=True) as txn:
        for index in range(100):
            reply = owner.handle(txn, _request(index % 4, f"r{index}"), now_ms=0)
            if isinstance(reply, LeaseDenied):
                assert reply.reason == "endgame"
                break
            assert isinstance(reply, LeaseGrant)
            granted.append(reply.granted_minor)
        books = owner.books(txn, "w")
    assert granted[0] == 1_000 // 8  # a share of the remainder, not the whole of what was wanted
    assert granted == sorted(granted, reverse=True)
    assert books is not None and books.remainder_minor < POLICY.partitions_count * POLICY.min_lease_minor


def test_a_redelivered_request_gets_the_same_grant_never_a_second(tmp_path: Path) -> None:
    env, owner = _owner(tmp_path, 1_000)
    with env.begin(write=True) as txn:
        first = owner.handle(txn, _request(1, "r1"), now_ms=0)
        again = owner.handle(txn, _request(1, "r1"), now_ms=5)
        books = owner.books(txn, "w")
    assert first == again
    assert isinstance(first, LeaseGrant)
    assert books is not None and books.outstanding_minor == first.granted_minor


def test_a_return_twice_closes_the_lease_once(tmp_path: Path) -> None:
    env, owner = _owner(tmp_path, 1_000)
    with env.begin(write=True) as txn:
        grant = owner.handle(txn, _request(1, "r1"), now_ms=0)
        assert isinstance(grant, LeaseGrant)
        returned = LeaseReturn(
            partition=1, wallet_id="w", lease_id=grant.lease_id, unused_minor=grant.granted_minor - 7
        )
        owner.handle(txn, returned, now_ms=1)
        owner.handle(txn, returned, now_ms=2)
        books = owner.books(txn, "w")
    assert books is not None
    assert (books.outstanding_minor, books.spent_minor, books.remainder_minor) == (0, 7, 993)


def test_endgame_debits_take_the_last_units_and_refuse_beyond_them(tmp_path: Path) -> None:
    env, owner = _owner(tmp_path, 25)
    with env.begin(write=True) as txn:
        denied = owner.handle(txn, _request(1, "r1"), now_ms=0)
        taken = owner.handle(
            txn, EndgameDebit(partition=1, wallet_id="w", amount_minor=20, origin_partition=1, origin_offset=9), 0
        )
        refused = owner.handle(
            txn, EndgameDebit(partition=2, wallet_id="w", amount_minor=6, origin_partition=2, origin_offset=3), 0
        )
    assert isinstance(denied, LeaseDenied)
    assert isinstance(taken, Debited)
    assert isinstance(refused, Insufficient) and refused.remainder_minor == 5


def test_a_partition_draws_synchronously_only_within_its_unexpired_lease(tmp_path: Path) -> None:
    env_owner, owner = _owner(tmp_path, 1_000)
    env = lmdb.open(str(tmp_path / "p1"), max_dbs=2, map_size=1 << 22, sync=False)
    side = PartitionLeases(env, 1, POLICY)
    with env.begin(write=True) as txn:
        assert not side.draw(txn, "w", 5, now_ms=0)
        messages = side.short(txn, "w", 5, origin_offset=1, now_ms=0)
    assert [type(message) for message in messages] == [EndgameDebit, LeaseRequest]
    with env_owner.begin(write=True) as txn:
        replies = [owner.handle(txn, message, now_ms=0) for message in messages]
    with env.begin(write=True) as txn:
        assert all(side.on_reply(txn, reply, now_ms=0) for reply in replies)
        assert side.draw(txn, "w", 100, now_ms=1)
        assert not side.draw(txn, "w", 100, now_ms=1)  # the lease is 125: only 25 are left
        assert not side.draw(txn, "w", 1, now_ms=POLICY.lease_ttl_ms)  # expired
        assert [type(message) for message in side.expire(txn, now_ms=POLICY.lease_ttl_ms)] == [LeaseReturn]


def test_endgame_replies_are_pruned_below_what_the_partition_has_applied(tmp_path: Path) -> None:
    env_owner, owner = _owner(tmp_path, 25)
    env = lmdb.open(str(tmp_path / "p1"), max_dbs=2, map_size=1 << 22, sync=False)
    side = PartitionLeases(env, 1, POLICY)
    with env.begin(write=True) as txn:
        debits = [side.short(txn, "w", 1, origin_offset=offset, now_ms=0)[0] for offset in (3, 4, 5)]
        assert side.answered_below(txn, consumed_offset=5) == 3
    with env_owner.begin(write=True) as txn:
        replies = [owner.handle(txn, debit, now_ms=0) for debit in debits]
    with env.begin(write=True) as txn:
        assert side.on_reply(txn, replies[0], now_ms=0)
        assert side.on_reply(txn, replies[1], now_ms=0)
        watermark = side.answered_below(txn, consumed_offset=5)
    assert watermark == 5
    with env_owner.begin(write=True) as txn:
        assert owner.prune_debit_replies(txn, origin_partition=1, below_offset=watermark) == 2
        assert owner.prune_debit_replies(txn, origin_partition=2, below_offset=99) == 0
        assert owner.handle(txn, debits[2], now_ms=1) == replies[2]  # the unanswered one still gets its first answer
        books = owner.books(txn, "w")
    assert books is not None and books.spent_minor == 3


def test_two_endgame_debits_of_one_record_are_each_debited_once(tmp_path: Path) -> None:
    """One record's two debits (two actions on one wallet) are two debits, each deduplicated by its ordinal."""
    env_owner, owner = _owner(tmp_path, 25)
    env = lmdb.open(str(tmp_path / "p1"), max_dbs=2, map_size=1 << 22, sync=False)
    side = PartitionLeases(env, 1, POLICY)
    with env.begin(write=True) as txn:
        first = side.short(txn, "w", 7, origin_offset=4, now_ms=0, ordinal=0)[0]
        second = side.short(txn, "w", 8, origin_offset=4, now_ms=0, ordinal=1)[0]
        assert {message.ordinal for message in side.pending(txn) if isinstance(message, EndgameDebit)} == {0, 1}
    with env_owner.begin(write=True) as txn:
        replies = [owner.handle(txn, debit, now_ms=0) for debit in (first, second, second, first)]
        books = owner.books(txn, "w")
    assert all(isinstance(reply, Debited) for reply in replies)
    assert replies[2] == replies[1] and replies[3] == replies[0]  # redeliveries get their own first answers
    assert books is not None and (books.spent_minor, books.remainder_minor) == (15, 10)
    with env.begin(write=True) as txn:
        assert side.on_reply(txn, replies[0], now_ms=0) and side.on_reply(txn, replies[1], now_ms=0)
        assert not side.on_reply(txn, replies[1], now_ms=0)  # a duplicate reply is ignored
        assert not [message for message in side.pending(txn) if isinstance(message, EndgameDebit)]
