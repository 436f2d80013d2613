"""The idempotency claim store on real LMDB: same payload replays, another participant's payload is a 409."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from scrip_actor.errors import IdempotencyConflict
from scrip_actor.partitioned._claims import ClaimStore


def _store(tmp_path: Path) -> tuple[lmdb.Environment, ClaimStore]:
    env = lmdb.open(str(tmp_path / "claims"), max_dbs=2, map_size=1 << 22, sync=False)
    return env, ClaimStore(env)


def test_a_key_reused_with_another_payload_is_a_409_naming_the_first_event(tmp_path: Path) -> None:
    env, store = _store(tmp_path)
    with env.begin(write=True) as txn:
        first, made = store.claim(txn, "prog", "k1", b"hash-alice", "evt-1", claimed_at_ms=10)
        assert made
        again, made_again = store.claim(txn, "prog", "k1", b"hash-alice", "evt-2", claimed_at_ms=20)
        assert (again, made_again) == (first, False)
        with pytest.raises(IdempotencyConflict) as raised:
            store.claim(txn, "prog", "k1", b"hash-bob", "evt-3", claimed_at_ms=30)
        assert raised.value.to_dict()["code"] == "idempotency_conflict"
        assert raised.value.details["event_id"] == "evt-1"
        _, other_program = store.claim(txn, "other", "k1", b"hash-bob", "evt-4", claimed_at_ms=30)
        assert other_program  # the same key in another program is a new event


def test_a_claim_rolled_back_with_its_txn_was_never_made(tmp_path: Path) -> None:
    env, store = _store(tmp_path)

    def claim_then_crash() -> None:
        with env.begin(write=True) as txn:
            store.claim(txn, "prog", "k1", b"h", "evt-1", claimed_at_ms=10)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        claim_then_crash()
    with env.begin(write=True) as txn:
        assert store.claim(txn, "prog", "k1", b"other", "evt-2", claimed_at_ms=11)[1]


def test_pruning_forgets_only_claims_outside_the_window(tmp_path: Path) -> None:
    env, store = _store(tmp_path)
    with env.begin(write=True) as txn:
        for index in range(10):
            store.claim(txn, "prog", f"k{index}", b"h", f"evt-{index}", claimed_at_ms=index * 1_000)
        assert store.prune(txn, claimed_before_ms=5_000) == 5
        assert store.prune(txn, claimed_before_ms=5_000) == 0
        assert store.claim(txn, "prog", "k0", b"new", "evt-new", claimed_at_ms=20_000)[1]  # forgotten: new again
        with pytest.raises(IdempotencyConflict):
            store.claim(txn, "prog", "k5", b"new", "evt-new", claimed_at_ms=20_000)  # kept


def test_the_longest_key_allowed_fits_in_a_claim_and_is_pruned(tmp_path: Path) -> None:
    """255 four-byte characters (1,020 bytes: twice LMDB's key limit) are claimed by their digest."""
    env, store = _store(tmp_path)
    longest = "\U0001f600" * 255  # limits.idempotency_key_length_max characters
    with env.begin(write=True) as txn:
        _, made = store.claim(txn, "prog", longest, b"h", "evt-1", claimed_at_ms=10)
        assert made
        with pytest.raises(IdempotencyConflict):
            store.claim(txn, "prog", longest, b"other", "evt-2", claimed_at_ms=11)
        assert store.prune(txn, claimed_before_ms=11) == 1
        _, made_after_prune = store.claim(txn, "prog", longest, b"other", "evt-3", claimed_at_ms=12)
        assert made_after_prune
