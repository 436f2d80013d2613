"""A catalog reward's ``max_total`` across partitions: every unit reserved at the reward's owner partition first.

One process counts a reward's ``redeemed_count`` in the redemption's step, and ``max_total`` holds exactly because
steps never interleave (engine/_rewards.py). With N partitions each counting its own redemptions, a reward could
sell its last unit once on every partition. So the stock has one **owner partition**, :func:`stock_owner` (the
routing rule over ``stock NUL reward_id``), which keeps the **book**: the units reserved so far, over every
partition (its own redemptions, and every grant not given back).

* **On the owner** a catalog redemption of the reward is checked against the book in its step, and its units join
  the book in the redemption's own LMDB record; a reversal takes them out of it the same way.
* **On another partition** the redemption's record is parked (:mod:`._parking`: its participant's later records
  wait behind it) with a :class:`StockAsk` for its units in the outbox, in the record that stores its offset. The
  owner grants the units if the book has room (adding them to the book) or denies the ask, and answers through its
  own outbox (:class:`StockAnswer`). When the answer is on the asker's log, the parked redemption runs: a denial is
  the embedded 409 ``max_total_reached``; a grant lets it run, and if it is refused after all (the balance, the
  participant's own limit, its key), a :class:`StockReturn` gives the units back in the refusal's record. A
  reversal that gives units back sends a :class:`StockReturn` in the reversal's record.

Each partition still counts its own ``redeemed_count`` (what it sold, less what it took back), so the front's merged
read adds them up. The book is that sum plus the grants in flight: never less, so the reward never sells more than
its ``max_total`` (a redemption in flight may make another one wait for nothing: a denial it would not have had).

Why not leases of a share, as wallets and rule budgets have (:mod:`._budget_leases`): catalog redemptions are people
pressing a button, not a stream of events; one round trip each (two relay hops, the budget's figure: ~300–450 ms
on Tansu here) is cheap at that rate, and with nothing leased out nothing can be stranded, so there is no endgame.

The book lives in the ``leases`` side database (``stock NUL reward_id`` → be64 units), beside the wallets' and
budgets' books. Every message is applied once (the outbox's applied markers); each outcome follows from the log
alone, so a replay from offset 0 decides the same.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from scrip_actor.engine import Engine
from scrip_actor.errors import Conflict, ValidationFailed
from scrip_actor.http.errors import NotRouted
from scrip_actor.model import ItemRedemptionCreate, Reward
from scrip_actor.partitioned._routing import partition_for
from scrip_actor.store import Op, be64, unbe64

__all__ = ["STOCK_ASK_ORDINAL", "SharedStock", "StockAnswer", "StockAsk", "StockReturn", "stock_owner"]

_LEASES_DB = "leases"  # shared with the wallets' and budgets' books; a stock book's key has its own prefix
# The ordinal of a parked redemption's ask: apart from its key's claim request (_claiming.CLAIM_ORDINAL) and from
# the return its refusal may send later from the same offset (ordinal 0), which the owner would otherwise drop.
STOCK_ASK_ORDINAL = 0xFFFF_FFFE


class StockAsk(msgspec.Struct, frozen=True, kw_only=True, tag="stock_ask"):
    """A partition asks the reward's owner for ``units`` (> 0) for the redemption parked at ``parked_offset``."""

    reward_id: str
    units: int
    reply_partition: int
    parked_offset: int


class StockAnswer(msgspec.Struct, frozen=True, kw_only=True, tag="stock_answer"):
    """The owner's answer: the units are reserved for the asker (``granted``), or not; ``left``: what the book had
    left (before this grant), for the denial's message."""

    reward_id: str
    parked_offset: int
    units: int  # the ask's
    granted: bool
    left: int


class StockReturn(msgspec.Struct, frozen=True, kw_only=True, tag="stock_return"):
    """A partition gives ``units`` (> 0) back: a granted redemption refused, or units reversed."""

    reward_id: str
    units: int


StockMessage = StockAsk | StockAnswer | StockReturn
Sends = list[tuple[int, msgspec.Struct]]
SendOps = Callable[[int, Sends, int], list[Op]]


def stock_owner(reward_id: str, partitions: int) -> int:
    """The partition that keeps a reward's book of units."""
    return partition_for(f"stock\0{reward_id}", partitions)


def _book_key(reward_id: str) -> bytes:
    return f"stock\0{reward_id}".encode()


class SharedStock:
    """The reward stocks' side of one partition: the owner's book, and the grant a parked redemption runs with.

    Installed as the engine's ``Rewards.shared_stock``, whose ``check`` and ``count`` call :meth:`check` and
    :meth:`moved` for a reward with a ``max_total``. The applier names the record being written (:meth:`writing`)
    so that what a write sends is keyed by that record's offset.

    Args:
        engine: the partition's engine; its catalog rewards (the same on every partition) get this as their
            ``shared_stock``, and its store's ``leases`` side database holds the books.
        partition, partitions: this partition, and the topic's count (the owners' routing rule).
        send_ops: the applier's outbox ops for effects caused at an origin offset.
    """

    def __init__(self, engine: Engine, partition: int, partitions: int, send_ops: SendOps) -> None:
        engine._store.open_side_database(_LEASES_DB)
        self._rewards, self._store = engine.rewards, engine._store
        self._partition, self._partitions, self._send_ops = partition, partitions, send_ops
        self._books: dict[str, int] = {}  # reward id -> units reserved, for the rewards this partition owns
        self._offset: int | None = None  # the record being written
        self._grant: StockAnswer | None = None  # the owner's answer that record runs with
        engine.rewards.shared_stock = self

    def owns(self, reward_id: str) -> bool:
        return stock_owner(reward_id, self._partitions) == self._partition

    # --- which redemptions must ask ---------------------------------------------------------------------------

    def ask_for(self, offset: int, item: ItemRedemptionCreate) -> tuple[int, StockAsk] | None:
        """The ask a catalog redemption parked at ``offset`` sends (with the owner it goes to), or None when it
        needs none: no limited reward by that id in that program (the redemption refuses it, or counts nothing
        shared), or a reward this partition owns. Its units are counted as ``create_item`` counts them."""
        reward = self._rewards.rewards.get(item.reward_id)
        if reward is None or reward.program_id != item.program_id or reward.max_total is None:
            return None
        if self.owns(reward.id):
            return None
        units = (item.quantity or 1) if reward.redemption_type == "UNIT_BASED" else 1
        if units <= 0:
            return None  # refused by the redemption's own validation
        ask = StockAsk(reward_id=reward.id, units=units, reply_partition=self._partition, parked_offset=offset)
        return stock_owner(reward.id, self._partitions), ask

    def writing(self, offset: int, grant: StockAnswer | None) -> None:
        """The applier is about to write the record at ``offset``, with the owner's ``grant`` if it was parked for
        one; :meth:`written` ends it."""
        assert self._offset is None, self._offset
        self._offset, self._grant = offset, grant

    def written(self) -> None:
        self._offset = self._grant = None

    def refund_ops(self, offset: int, answer: StockAnswer | None) -> list[Op]:
        """The return a refused record sends for the units it was granted (none without a grant)."""
        if answer is None or not answer.granted:
            return []
        back = StockReturn(reward_id=answer.reward_id, units=answer.units)
        return self._send_ops(offset, [(stock_owner(answer.reward_id, self._partitions), back)], 0)

    # --- Rewards' hooks, in a redemption's or reversal's step ------------------------------------------------

    def check(self, reward: Reward, units: int) -> None:
        """Refuse (409 ``max_total_reached``) ``units`` of ``reward`` the stock cannot give: on the owner, the book
        has no room; elsewhere, the owner denied them. Without an answer (a record not parked for one: the partition
        claims no keys) the redemption is not routed (501 ``stock_not_shared``)."""
        assert reward.max_total is not None, reward
        if self.owns(reward.id):
            left = reward.max_total - self._book(reward)
            if units > left:
                raise _sold_out(reward, left)
            return
        grant = self._grant
        if grant is None or grant.reward_id != reward.id:
            raise NotRouted(
                f"reward {reward.id} has a max_total: its units are reserved at partition "
                f"{stock_owner(reward.id, self._partitions)}, which a partition without idempotency claims cannot ask",
                {"reward_id": reward.id, "reason": "stock_not_shared"},
            )
        if not grant.granted:
            raise _sold_out(reward, grant.left)
        if grant.units != units:  # the ask counted other units than the step: never sell what was not reserved
            raise ValidationFailed(
                f"reward {reward.id}: {grant.units} units were reserved for a redemption of {units}",
                {"reward_id": reward.id},
            )

    def moved(self, reward: Reward, units: int) -> list[Op]:
        """``units`` of ``reward`` sold (> 0) or given back (< 0) in the step being written: the owner's book moves
        in the same record; elsewhere a sale spends its grant and a give-back returns the units to the owner."""
        assert reward.max_total is not None, reward
        assert units != 0
        if self.owns(reward.id):
            reserved = self._book(reward) + units
            assert 0 <= reserved <= reward.max_total or units < 0, (reward.id, reserved)
            if reserved < 0:  # more given back than the book holds: a store that lost its book
                raise ValidationFailed(f"reward {reward.id}'s book would fall below 0", {"reward_id": reward.id})
            self._books[reward.id] = reserved
            return [(_LEASES_DB, _book_key(reward.id), be64(reserved))]
        if units > 0:
            assert self._grant is not None, reward.id
            assert self._grant.granted, (reward.id, self._grant)
            assert self._grant.units == units, (self._grant, units)  # counted alike at the ask and in the step
            return []  # reserved at the owner when it granted them
        assert self._offset is not None, reward.id
        back = StockReturn(reward_id=reward.id, units=-units)
        return self._send_ops(self._offset, [(stock_owner(reward.id, self._partitions), back)], 0)

    # --- the owner's side of the messages ----------------------------------------------------------------------

    def on_ask(self, offset: int, ask: StockAsk) -> list[Op]:
        """Grant (the book takes the units) or deny; the ops of the ask's record, the answer's send included."""
        reward = self._rewards.rewards.get(ask.reward_id)
        ops: list[Op] = []
        if reward is None or reward.max_total is None:  # the catalog changed under it: nothing to reserve from
            granted, left = False, 0
        else:
            left = reward.max_total - self._book(reward)
            granted = ask.units <= left
            if granted:
                self._books[reward.id] = self._book(reward) + ask.units
                ops.append((_LEASES_DB, _book_key(reward.id), be64(self._books[reward.id])))
        answer = StockAnswer(
            reward_id=ask.reward_id, parked_offset=ask.parked_offset, units=ask.units, granted=granted, left=left
        )
        return ops + self._send_ops(offset, [(ask.reply_partition, answer)], 0)

    def on_return(self, back: StockReturn) -> list[Op]:
        """Units given back by another partition leave the book."""
        reward = self._rewards.rewards.get(back.reward_id)
        if reward is None or reward.max_total is None:
            return []
        reserved = self._book(reward) - back.units
        if reserved < 0:  # never granted: a store that lost its book, or a forgery
            raise ValidationFailed(
                f"a partition returns {back.units} units of reward {reward.id}, "
                f"whose book holds {reserved + back.units}",
                {"reward_id": reward.id},
            )
        self._books[reward.id] = reserved
        return [(_LEASES_DB, _book_key(reward.id), be64(reserved))]

    def _book(self, reward: Reward) -> int:
        """The units reserved of a reward this partition owns. A book never written starts at the reward's own
        count here (the template's, before partitioned mode counted anything)."""
        reserved = self._books.get(reward.id)
        if reserved is None:
            with self._store.env.begin() as txn:  # a side database: not in the store's cached read snapshot
                raw = txn.get(_book_key(reward.id), db=self._store.dbs[_LEASES_DB])
            reserved = reward.redeemed_count if raw is None else unbe64(raw)
            self._books[reward.id] = reserved
        assert reserved >= 0, (reward.id, reserved)
        return reserved


def _sold_out(reward: Reward, left: int) -> Conflict:
    return Conflict(f"reward {reward.name!r} has {max(0, left)} left", {"reason": "max_total_reached"})
