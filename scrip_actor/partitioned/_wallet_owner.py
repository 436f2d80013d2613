"""Shared PREFUNDED wallets, the owner's side: funding, grants, and the endgame recall (protocol: _wallet_messages).

The owner partition's own wallet account is the wallet's **remainder**: what is not leased out. Its own events draw
on it directly; the front's funding lands in it. Each :class:`~._wallet_messages.LeaseAsk` is answered in the
owner's log order, after every earlier record is processed (``wait_quiet``), so what it grants depends on the log:

* remainder >= need: a **grant** of ``max(need, remainder // (2 * partitions))`` (capped at the remainder): a share
  while the wallet is well funded, so most credits never ask; exactly the need near the end. (The owner's own ask
  is answered with 0: its lease is the remainder itself.)
* remainder < need, and leases were granted since the last recall: the **endgame**. A
  :class:`~._wallet_messages.LeaseRecall` round goes to every other partition; the ask (and every ask arriving
  meanwhile) is queued until every partition's :class:`~._wallet_messages.LeaseReturn` is in, then the queue is
  served in order from the pooled remainder, and what it still cannot cover is denied. An ask waits for at most one
  round, so the endgame always ends; a partition that is down delays it (never overspends).
* otherwise (nothing is leased out: every unit is in the remainder) the ask is **denied** at once.

The book of each wallet (open round, partitions still to return, queued asks) is stored in the ``leases`` side
database of the owner's store, in the record of the message that changed it, so a restart resumes the round.
"""

from __future__ import annotations

import msgspec

from scrip_actor import balance_ops
from scrip_actor.amounts import parse_decimal, to_minor
from scrip_actor.engine import Engine, transit_account
from scrip_actor.errors import ValidationFailed
from scrip_actor.ledger import LedgerTx, account_key
from scrip_actor.partitioned._wallet_leases import SendOps, WalletLeases, lease_entry, publish_lease, wait_quiet
from scrip_actor.partitioned._wallet_messages import (
    LeaseAnswer,
    LeaseAsk,
    LeaseRecall,
    LeaseReturn,
    WalletFund,
    wallet_owner,
)
from scrip_actor.store import Op

__all__ = ["LEASES_DB", "OwnerBook", "WalletOwner"]

LEASES_DB = "leases"
_SHARE_DIVISOR = 2  # a grant while well funded: remainder / (partitions x this)


class QueuedAsk(msgspec.Struct, frozen=True, array_like=True):
    partition: int
    ask: LeaseAsk


class OwnerBook(msgspec.Struct, kw_only=True):
    """One wallet's lease book on its owner: the recall round, who has not answered it, what waits for it."""

    round: int = 0
    waiting: list[int] = []  # partitions yet to return for the open round (empty: no round open)
    queued: list[QueuedAsk] = []
    leased_since_round: bool = False  # a grant since the last round closed: value may sit in other leases


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(OwnerBook)


def _book_key(program_id: str, asset_id: str) -> bytes:
    return f"{program_id}\0{asset_id}".encode()


class WalletOwner:
    """The wallets this partition owns (see the module docstring)."""

    def __init__(self, engine: Engine, partition: int, partitions: int, send_ops: SendOps, leases: WalletLeases):
        store = engine._store
        store.open_side_database(LEASES_DB)
        self._engine, self._partition, self._partitions = engine, partition, partitions
        self._send_ops, self._leases = send_ops, leases
        self._db = store.dbs[LEASES_DB]

    def _book(self, program_id: str, asset_id: str) -> OwnerBook:
        with self._engine._store.env.begin() as txn:
            raw = txn.get(_book_key(program_id, asset_id), db=self._db)
        book = OwnerBook() if raw is None else _decoder.decode(raw)
        assert all(p != self._partition for p in book.waiting), book  # the owner never recalls itself
        return book

    def _book_op(self, program_id: str, asset_id: str, book: OwnerBook) -> Op:
        assert bool(book.waiting) or not book.queued, book  # asks queue only while a round is open
        return (LEASES_DB, _book_key(program_id, asset_id), _encoder.encode(book))

    def _grant(
        self, tx: LedgerTx, book: OwnerBook, queued: QueuedAsk, ids: tuple[str, str], *, share: bool, reserved: int = 0
    ) -> tuple[int, LeaseAnswer]:
        """Answer ``ask`` from the remainder in ``tx`` (less ``reserved``: what the owner's own asks served before
        it in the same round will draw): a grant (0 to the owner itself, whose lease is the remainder), or a
        denial. ``share``: grant a share of the remainder if it is more than the need. False in the endgame: then
        exactly the credit's whole amount, since the recall emptied the asker's lease, so the queue's later asks
        are denied only when the pooled remainder really cannot cover them."""
        program_id, asset_id = ids
        asked = queued.ask
        need_minor = asked.need_minor if share or queued.partition == self._partition else asked.full_need_minor
        remainder = tx.account_balance(account_key("PROGRAM", program_id, asset_id)) - reserved
        answer = LeaseAnswer(
            program_id=program_id, asset_id=asset_id, ask_id=asked.ask_id, actor=asked.actor, event_id=asked.event_id,
            amount_minor=0, denied=remainder < need_minor,
        )  # fmt: skip
        if answer.denied or queued.partition == self._partition:
            return queued.partition, answer
        granted = need_minor
        if share:
            granted = min(remainder, max(need_minor, remainder // (self._partitions * _SHARE_DIVISOR)))
        legs = [
            ("PROGRAM", program_id, asset_id, "AVAILABLE", -granted),
            ("SYSTEM", transit_account(queued.partition), asset_id, "AVAILABLE", granted),
        ]
        tx.post("WALLET_LEASE", legs, rule_id=None, description=f"lease to partition {queued.partition}")
        book.leased_since_round = True
        return queued.partition, msgspec.structs.replace(answer, amount_minor=granted)

    async def on_ask(self, offset: int, origin: int, ask: LeaseAsk, first_ops: list[Op]) -> None:
        """Grant, queue behind an open round, open the endgame round, or deny (module docstring)."""
        engine, ids = self._engine, (ask.program_id, ask.asset_id)
        await wait_quiet(engine)
        book = self._book(*ids)
        tx = lease_entry(engine, ids, 0, origin, f"lease/{self._partition}/{offset}", "")
        queued = QueuedAsk(origin, ask)
        sends: list[tuple[int, msgspec.Struct]] = []
        remainder = tx.account_balance(account_key("PROGRAM", *ids))
        if book.waiting:
            book.queued.append(queued)
        elif remainder >= ask.need_minor or not book.leased_since_round or self._partitions == 1:
            sends.append(self._grant(tx, book, queued, ids, share=True))
        else:
            book.round += 1
            book.waiting = [p for p in range(self._partitions) if p != self._partition]
            book.queued = [queued]
            recall = LeaseRecall(program_id=ask.program_id, asset_id=ask.asset_id, round=book.round)
            sends += [(p, recall) for p in book.waiting]
        ops = [*first_ops, self._book_op(*ids, book), *self._send_ops(offset, sends, 0)]
        await publish_lease(engine, tx, ops)

    async def on_return(self, offset: int, origin: int, back: LeaseReturn, first_ops: list[Op]) -> None:
        """A lease comes back; the last answer of a round closes it and serves the queue."""
        engine, ids = self._engine, (back.program_id, back.asset_id)
        await wait_quiet(engine)
        book = self._book(*ids)
        seed = f"lease/{self._partition}/{offset}"
        tx = lease_entry(engine, ids, back.amount_minor, origin, seed, f"lease returned by partition {origin}")
        sends: list[tuple[int, msgspec.Struct]] = []
        if back.round == book.round and origin in book.waiting:
            book.waiting.remove(origin)
            if not book.waiting:  # every lease is back: serve the queue from the pooled remainder, in order
                book.leased_since_round = False
                reserved = 0
                for queued in book.queued:
                    sends.append(self._grant(tx, book, queued, ids, share=False, reserved=reserved))
                    if queued.partition == self._partition and not sends[-1][1].denied:
                        reserved += queued.ask.need_minor  # the owner's own step draws it when it runs again
                book.queued = []
        ops = [*first_ops, self._book_op(*ids, book), *self._send_ops(offset, sends, 0)]
        await publish_lease(engine, tx, ops)  # the owner's own held credits are answered through their own asks

    async def on_fund(self, offset: int, fund: WalletFund, first_ops: list[Op]) -> None:
        """Fund a wallet this partition owns (the front's POST .../fund): into the remainder."""
        engine = self._engine
        if wallet_owner(fund.program_id, fund.asset_id, self._partitions) != self._partition:
            raise ValidationFailed(
                f"partition {self._partition} does not own this wallet: fund it through the front", {"offset": offset}
            )
        _, asset = engine._wallets._wallet_asset(fund.program_id, fund.asset_id)
        amount = parse_decimal(fund.amount, "amount")  # the front checked it is positive; a record is checked again
        if amount <= 0:
            raise ValidationFailed.field("amount", "invalid", "amount must be positive")
        amount_minor = to_minor(amount, asset.scale, "amount")
        await wait_quiet(engine)
        ids = (fund.program_id, fund.asset_id)
        tx = lease_entry(engine, ids, 0, self._partition, f"fund/{self._partition}/{offset}", "")
        balance_ops.fund(tx, asset, fund.program_id, amount_minor, fund.description)
        await publish_lease(engine, tx, first_ops)
        self._leases.resume(ids)
