"""Idempotency claims across partitions: one owner per (program_id, idempotency_key), so a reuse is a 409.

The payload hash (docs/semantics.md, "Idempotency") covers the participant, and the participant decides the
partition, so a key reused with another participant's payload would reach another partition and never meet the
first. The design (docs/partitioned-shared-state.md §3) routes every keyed request through an admissions topic keyed
by (program_id, idempotency_key); the key's owner partition calls ``claim`` in the txn that also stores its consumed
offset, then forwards the event through the outbox to the participant's partition.

``claim(txn, program_id, key, payload_hash, event_id, claimed_at_ms)`` answers:

* the new ``Claim`` with ``first=True`` — forward the event;
* the stored ``Claim`` with ``first=False`` — same payload: answer with the original ``event_id``, nothing again;
* ``IdempotencyConflict`` (HTTP 409, ``details.event_id`` the original) — another payload under the same key.

``prune(txn, claimed_before_ms)`` forgets claims older than the program's idempotency window, via a time index.
Keys in the ``claims`` named database: ``c:<program>\\0<sha256(key)>`` → claim; ``t:`` + claimed_at_ms (big-endian) +
``<program>\\0<sha256(key)>`` → empty (the digest, as the store's idempotency index, keeps keys under 511 bytes).
"""

from __future__ import annotations

import struct

import lmdb
import msgspec

from scrip_actor import store
from scrip_actor.errors import IdempotencyConflict
from scrip_actor.store import Op

CLAIMS_DB = b"claims"
_TIME = struct.Struct(">Q")


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """Who first used a key: the payload's hash, the event it became, and when."""

    payload_hash: bytes
    event_id: str
    claimed_at_ms: int


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Claim)


class ClaimRequest(msgspec.Struct, frozen=True, kw_only=True, tag="claim"):
    """A participant's partition asks the key's partition for the key (an outbox payload; docs/partitioned.md)."""

    program_id: str
    idempotency_key: str
    payload_hash: str  # the event's canonical hash (engine admission), hex
    event_ref: str  # where the event waits: "<partition>@<offset>", named in a 409 to a later reuse
    reply_partition: int
    parked_offset: int  # the waiting event's offset on reply_partition, echoed in the answer


class ClaimAnswer(msgspec.Struct, frozen=True, kw_only=True, tag="claim_answer"):
    """The key's partition's answer: granted (first use, or the same payload again), or the 409 to give."""

    parked_offset: int
    granted: bool
    conflict_event_ref: str | None = None  # not granted: the first use's event_ref


def claim_op(program_id: str, idempotency_key: str, claim: Claim) -> list[Op]:
    """The writer ops that record ``claim`` (with its time index), for a record of the engine's writer."""
    name = _name(program_id, idempotency_key)
    return [
        (CLAIMS_DB.decode(), b"c:" + name, _ENCODER.encode(claim)),
        (CLAIMS_DB.decode(), b"t:" + _TIME.pack(claim.claimed_at_ms) + name, b""),
    ]


def _name(program_id: str, idempotency_key: str) -> bytes:
    """The store's own key for a program's idempotency key: a digest, so any key fits LMDB's 511-byte limit."""
    assert "\0" not in program_id, program_id
    return store.idempotency_key(program_id, idempotency_key)


class ClaimStore:
    """The claims of the keys this partition owns, in its LMDB environment (room for one more named database)."""

    def __init__(self, env: lmdb.Environment) -> None:
        self._db = env.open_db(CLAIMS_DB)

    def lookup(self, txn: lmdb.Transaction, program_id: str, idempotency_key: str) -> Claim | None:
        """The key's claim, if it has one (committed state)."""
        raw = txn.get(b"c:" + _name(program_id, idempotency_key), db=self._db)
        return None if raw is None else _DECODER.decode(raw)

    def claim(
        self,
        txn: lmdb.Transaction,
        program_id: str,
        idempotency_key: str,
        payload_hash: bytes,
        event_id: str,
        claimed_at_ms: int,
    ) -> tuple[Claim, bool]:
        """The key's claim and whether this call made it; IdempotencyConflict for another payload."""
        name = _name(program_id, idempotency_key)
        raw = txn.get(b"c:" + name, db=self._db)
        if raw is not None:
            existing = _DECODER.decode(raw)
            if existing.payload_hash != payload_hash:
                raise IdempotencyConflict(
                    "the idempotency key was used before with a different payload",
                    {"event_id": existing.event_id, "idempotency_key": idempotency_key},
                )
            return existing, False
        claim = Claim(payload_hash=payload_hash, event_id=event_id, claimed_at_ms=claimed_at_ms)
        txn.put(b"c:" + name, _ENCODER.encode(claim), db=self._db)
        txn.put(b"t:" + _TIME.pack(claimed_at_ms) + name, b"", db=self._db)
        return claim, True

    def prune(self, txn: lmdb.Transaction, claimed_before_ms: int) -> int:
        """Forget the claims made before ``claimed_before_ms`` (outside the idempotency window); their count."""
        expired: list[bytes] = []
        with txn.cursor(db=self._db) as cursor:
            if cursor.set_range(b"t:"):
                for key in cursor.iternext(values=False):
                    if not key.startswith(b"t:") or _TIME.unpack(key[2:10])[0] >= claimed_before_ms:
                        break
                    expired.append(bytes(key))
        for key in expired:
            name = key[10:]
            raw = txn.get(b"c:" + name, db=self._db)
            assert raw is not None, key  # the index and the claims move together
            assert _DECODER.decode(raw).claimed_at_ms < claimed_before_ms, key
            txn.delete(b"c:" + name, db=self._db)
            txn.delete(key, db=self._db)
        return len(expired)
