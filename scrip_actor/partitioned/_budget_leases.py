"""Shared rule budgets across partitions: the owner's grants and endgame, and each partition's lease.

The protocol is in :mod:`._budget_messages`; it is the shared wallets' (:mod:`._wallet_owner`,
:mod:`._wallet_leases`) with a budget's state in place of a wallet account. Holding a step and resuming its asker are
the wallet keeper's (:class:`~._wallet_leases.WalletLeases`, which sends the :class:`~._budget_messages.BudgetAsk`);
this module applies the four messages:

* on the **owner**, an ask is answered in its log order, after every earlier record is processed: a grant of
  ``max(need, remainder // (2 × partitions))`` while the remainder (limit − leased out − consumed here) covers the
  need; an endgame round (a recall to every other partition, the ask queued) when it does not and leases were
  granted since the last round; a denial otherwise. The last return of a round serves the queue exactly, in order.
* on **every partition**, a grant raises its lease of the period it names (none if that period is over here), and
  a recall gives back what the lease has not consumed (the lease shrinks to what it consumed).

What changes lands in one record with the message's position and applied marker: the budget's state (as a step
writes it, so ``scrip verify`` checks it alike) and, on the owner, the round's book in the ``leases`` side database.
So a restart resumes a round where it was. (A replay from offset 0 decides alike for a lifetime budget; a periodic
one's resets follow each partition's wall clock, so a replay may place them elsewhere: each period's sum still holds.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from scrip_actor.budgets import Budget, BudgetState
from scrip_actor.engine import Engine, budget_ops
from scrip_actor.errors import ValidationFailed
from scrip_actor.partitioned._budget_messages import BudgetAnswer, BudgetAsk, BudgetRecall, BudgetReturn, budget_owner
from scrip_actor.partitioned._wallet_leases import SendOps, WalletLeases, wait_quiet
from scrip_actor.store import Op

__all__ = ["SharedBudgets"]

_LEASES_DB = "leases"  # shared with the wallets' books (_wallet_owner.LEASES_DB); budget books have their own prefix
_SHARE_DIVISOR = 2  # a grant while plenty is left: remainder / (partitions x this)

Sends = list[tuple[int, msgspec.Struct]]


class QueuedBudgetAsk(msgspec.Struct, frozen=True, array_like=True):
    partition: int
    ask: BudgetAsk


class BudgetBook(msgspec.Struct, kw_only=True):
    """One budget's lease book on its owner, for one period: the recall round, who has not returned, what waits."""

    period_end: datetime | None = None
    round: int = 0
    waiting: list[int] = []  # partitions yet to return for the open round (empty: no round open)
    queued: list[QueuedBudgetAsk] = []
    leased_since_round: bool = False  # a grant since the last round closed: some of the limit may sit in leases


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BudgetBook)


def _book_key(rule_id: str, asset_id: str) -> bytes:
    return f"budget\0{rule_id}\0{asset_id}".encode()


class SharedBudgets:
    """The rule budgets' messages on this partition, as owner and as leaseholder (see the module docstring).

    Args:
        engine: the partition's engine; its budgets' allowance is a lease from here on (``Budgets.leaseholder``).
        partition, partitions: this partition, and the topic's count (the owners' routing rule).
        send_ops: the applier's outbox ops for effects caused at an origin offset.
        leases: the keeper that holds short steps and resumes an answer's asker.
    """

    def __init__(self, engine: Engine, partition: int, partitions: int, send_ops: SendOps, leases: WalletLeases):
        store = engine._store
        store.open_side_database(_LEASES_DB)
        self._engine, self._partition, self._partitions = engine, partition, partitions
        self._send_ops, self._leases, self._db = send_ops, leases, store.dbs[_LEASES_DB]
        engine._budgets.leaseholder = lambda rule_id, asset_id: budget_owner(rule_id, asset_id, partitions) != partition

    # --- the owner's side ------------------------------------------------------------------------------------

    async def on_ask(self, offset: int, origin: int, ask: BudgetAsk, first_ops: list[Op]) -> None:
        """Grant, queue behind an open round, open the endgame round, or deny (module docstring)."""
        await wait_quiet(self._engine)
        budget = self._engine._budgets.find(ask.rule_id, ask.asset_id)
        queued = QueuedBudgetAsk(origin, ask)
        if budget is None:  # the rule has no such budget (any more): nothing to grant from
            await self._publish([*first_ops, *self._send_ops(offset, [_answer(queued, 0, denied=True)], 0)])
            return
        state = self._current(budget, ask.period_end)
        book, sends = self._book(ask.rule_id, ask.asset_id, state.next_reset_at)
        if ask.period_end != state.next_reset_at:
            sends.append(_answer(queued, 0, denied=False))  # a period over here: it runs again, and asks anew
        elif book.waiting:
            book.queued.append(queued)
        elif _remainder(budget, state) >= ask.need_minor or not book.leased_since_round or self._partitions == 1:
            state, answer = self._grant(budget, state, book, queued, share=True)
            sends.append(answer)
        else:
            book.round += 1
            book.waiting = [p for p in range(self._partitions) if p != self._partition]
            book.queued = [queued]
            recall = BudgetRecall(
                rule_id=ask.rule_id, asset_id=ask.asset_id, period_end=state.next_reset_at, round=book.round
            )
            sends += [(p, recall) for p in book.waiting]
        ops = [*first_ops, *self._state_ops(budget, state), self._book_op(ask.rule_id, ask.asset_id, book)]
        await self._publish([*ops, *self._send_ops(offset, sends, 0)])

    async def on_return(self, offset: int, origin: int, back: BudgetReturn, first_ops: list[Op]) -> None:
        """A lease comes back (its unconsumed part); the last return of a round closes it and serves the queue."""
        await wait_quiet(self._engine)
        budget = self._engine._budgets.find(back.rule_id, back.asset_id)
        if budget is None:
            await self._publish(first_ops)
            return
        state = self._current(budget, back.period_end)
        book, sends = self._book(back.rule_id, back.asset_id, state.next_reset_at)
        if back.period_end == state.next_reset_at and back.amount_minor:
            if back.amount_minor > state.leased_minor:  # never granted: a store that lost its books, or a forgery
                raise ValidationFailed(
                    f"partition {origin} returns {back.amount_minor} of a budget with {state.leased_minor} leased out",
                    {"rule_id": back.rule_id, "asset_id": back.asset_id},
                )
            state = msgspec.structs.replace(state, leased_minor=state.leased_minor - back.amount_minor)
        if back.period_end == book.period_end and back.round == book.round and origin in book.waiting:
            book.waiting.remove(origin)
            if not book.waiting:  # every lease is back: serve the queue from the pooled remainder, in order
                book.leased_since_round = False
                reserved = 0
                for queued in book.queued:
                    state, answer = self._grant(budget, state, book, queued, share=False, reserved=reserved)
                    sends.append(answer)
                    if queued.partition == self._partition and not answer[1].denied:
                        reserved += queued.ask.full_need_minor  # the owner's own step consumes it when it runs again
                book.queued = []
        ops = [*first_ops, *self._state_ops(budget, state), self._book_op(back.rule_id, back.asset_id, book)]
        await self._publish([*ops, *self._send_ops(offset, sends, 0)])

    def _grant(
        self, budget: Budget, state: BudgetState, book: BudgetBook, queued: QueuedBudgetAsk, *, share: bool,
        reserved: int = 0,
    ) -> tuple[BudgetState, tuple[int, BudgetAnswer]]:  # fmt: skip
        """Answer one ask from the remainder (less ``reserved``): a grant (0 to the owner itself, whose allowance is
        the remainder), or a denial. ``share`` False (the endgame): exactly the match's whole amount, since the
        recall emptied the asker's lease."""
        asked = queued.ask
        need_minor = asked.need_minor if share or queued.partition == self._partition else asked.full_need_minor
        remainder = _remainder(budget, state) - reserved
        if remainder < need_minor:
            return state, _answer(queued, 0, denied=True)
        if queued.partition == self._partition:
            return state, _answer(queued, 0, denied=False)
        granted = need_minor
        if share:
            granted = min(remainder, max(need_minor, remainder // (self._partitions * _SHARE_DIVISOR)))
        book.leased_since_round = True
        state = msgspec.structs.replace(state, leased_minor=state.leased_minor + granted)
        return state, _answer(queued, granted, denied=False)

    def _current(self, budget: Budget, period_end: datetime | None) -> BudgetState:
        """The budget's state now, on the owner; moved on to ``period_end`` if that is the period right after the
        owner's own (its clock a little behind the asker's), so that an ask at a period's start is not refused."""
        next_sequence = self._engine._world.journal_sequence + 1
        state = budget.effective(self._engine._clock(), next_sequence)
        boundary = state.next_reset_at
        if period_end is not None and boundary is not None and period_end > boundary:
            ahead = budget.effective(boundary, next_sequence)
            if ahead.next_reset_at == period_end:
                return ahead
        return state

    def _book(self, rule_id: str, asset_id: str, period_end: datetime | None) -> tuple[BudgetBook, Sends]:
        """The budget's book of ``period_end``. A book of an earlier period is closed: its queued asks are answered
        with nothing, so their steps run again in the period they are in now."""
        with self._engine._store.env.begin() as txn:
            raw = txn.get(_book_key(rule_id, asset_id), db=self._db)
        book = BudgetBook(period_end=period_end) if raw is None else _decoder.decode(raw)
        assert all(p != self._partition for p in book.waiting), book  # the owner never recalls itself
        if book.period_end == period_end:
            return book, []
        stale = [_answer(queued, 0, denied=False) for queued in book.queued]
        return BudgetBook(period_end=period_end, round=book.round), stale

    def _book_op(self, rule_id: str, asset_id: str, book: BudgetBook) -> Op:
        assert bool(book.waiting) or not book.queued, book  # asks queue only while a round is open
        return (_LEASES_DB, _book_key(rule_id, asset_id), _encoder.encode(book))

    # --- every partition's side --------------------------------------------------------------------------------

    async def on_answer(self, offset: int, origin: int, answer: BudgetAnswer, first_ops: list[Op]) -> None:
        """The owner's answer: the grant joins this period's lease; the asker's held step runs again, first."""
        await wait_quiet(self._engine)
        ops = list(first_ops)
        budget = self._engine._budgets.find(answer.rule_id, answer.asset_id)
        if budget is not None and answer.amount_minor:
            state = budget.effective(self._engine._clock(), self._engine._world.journal_sequence + 1)
            if state.next_reset_at == answer.period_end:  # else the period is over here: the grant lapses with it
                ops += self._state_ops(
                    budget, msgspec.structs.replace(state, leased_minor=state.leased_minor + answer.amount_minor)
                )
        held_for = ("budget", answer.rule_id, answer.asset_id)
        await self._publish(ops, lambda: self._leases.resume_asker(answer, held_for))

    async def on_recall(self, offset: int, origin: int, recall: BudgetRecall, first_ops: list[Op]) -> None:
        """The owner's endgame: give back what this period's lease has not consumed (0 too: the owner counts)."""
        await wait_quiet(self._engine)
        ops = list(first_ops)
        back_minor = 0
        budget = self._engine._budgets.find(recall.rule_id, recall.asset_id)
        if budget is not None:
            state = budget.effective(self._engine._clock(), self._engine._world.journal_sequence + 1)
            if state.next_reset_at == recall.period_end:
                back_minor = max(0, state.leased_minor - state.consumed_minor)
                if back_minor:
                    ops += self._state_ops(
                        budget, msgspec.structs.replace(state, leased_minor=state.leased_minor - back_minor)
                    )
        back = BudgetReturn(
            rule_id=recall.rule_id, asset_id=recall.asset_id, period_end=recall.period_end, round=recall.round,
            amount_minor=back_minor,
        )  # fmt: skip
        await self._publish([*ops, *self._send_ops(offset, [(origin, back)], 0)])

    # --- shared ---------------------------------------------------------------------------------------------

    def _state_ops(self, budget: Budget, state: BudgetState) -> list[Op]:
        """Make ``state`` the budget's (between steps: no step can interleave) and the record that stores it."""
        if state is budget.state:
            return []
        assert state.leased_minor >= 0, state
        assert state.consumed_minor >= 0, state
        budget.state = state
        return budget_ops([state])

    async def _publish(self, ops: list[Op], then: Callable[[], None] | None = None) -> None:
        """Append ``ops`` as one record and wait until it is durable; ``then`` runs right after the append (a
        resumed step must be the first to see its grant: see ``_wallet_leases.publish_lease``)."""
        self._engine._writer.append(ops)
        if then is not None:
            then()
        await self._engine._caught_up()


def _remainder(budget: Budget, state: BudgetState) -> int:
    """What the owner may still grant or consume this period (never below 0: a limit lowered below the use)."""
    return max(0, budget.limit_minor - state.leased_minor - state.consumed_minor)


def _answer(queued: QueuedBudgetAsk, amount_minor: int, *, denied: bool) -> tuple[int, BudgetAnswer]:
    ask = queued.ask
    answer = BudgetAnswer(
        rule_id=ask.rule_id, asset_id=ask.asset_id, period_end=ask.period_end, ask_id=ask.ask_id, actor=ask.actor,
        event_id=ask.event_id, amount_minor=amount_minor, denied=denied,
    )  # fmt: skip
    return queued.partition, answer
