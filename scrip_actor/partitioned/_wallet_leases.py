"""Shared PREFUNDED wallets, the partition's side: a credit its lease cannot cover waits for the wallet's owner.

In partitioned mode a partition's own wallet account (``PROGRAM:<program>:<asset>:AVAILABLE`` in its store) is its
**lease** of the wallet: a rule's credit draws on it in the step, with no I/O, exactly as on one process. When a
credit needs more than the lease holds (:class:`~scrip_actor.ledger.WalletShort`), the step is **held** instead
of failing the event (``Engine.on_short_hold`` returns HOLD, the actor registry keeps the event at the head of
its participant's mailbox, nothing is committed) and a :class:`~._wallet_messages.LeaseAsk` goes to the owner
partition through the outbox. The owner's :class:`~._wallet_messages.LeaseAnswer` credits the lease (from the
transit account, as a transfer's value arrives) and resumes the asker's held step, first, which runs again from
scratch; a denied ask lets its event fail as it would on one process ("program wallet ... has ..., needs ...").
An event asks at most :data:`ASKS_PER_EVENT_MAX` times.

While a participant is held, its later events queue in its mailbox behind the held one, and the transfers and
credits that touch it are parked behind it (``KeyClaims``, as behind an event parked for its idempotency claim),
so its order is kept; other participants are not held up. A held event is admitted and durable but unprocessed:
after a crash it is processed again on the next open, and asks again.

The owner's side (grants, the endgame recall, funding) is :mod:`._wallet_owner`; the protocol is in
:mod:`._wallet_messages`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import msgspec

from scrip_actor.actors import AGAIN, HOLD
from scrip_actor.budgets import BudgetShort
from scrip_actor.engine import Engine, transit_account
from scrip_actor.ledger import Changes, LedgerTx, WalletShort, account_key
from scrip_actor.model import Event
from scrip_actor.partitioned._budget_messages import BudgetAnswer, BudgetAsk, budget_owner
from scrip_actor.partitioned._wallet_messages import LeaseAnswer, LeaseAsk, LeaseRecall, LeaseReturn, wallet_owner
from scrip_actor.store import Op

__all__ = [
    "ASKS_PER_EVENT_MAX",
    "WalletLeases",
    "hold_until_applier",
    "lease_entry",
    "publish_lease",
    "refuse_copied_funding",
    "wait_quiet",
]

ASKS_PER_EVENT_MAX = 8  # then the event fails: a bound on the round trips one event can cause
_ASK_BASE = 1 << 62  # asks are numbered apart from log offsets (their outbox records' origin offsets)
_TRACKED_EVENTS_MAX = 65_536  # the per-event ask counts kept; beyond it they are forgotten (a few more asks)

Wallet = tuple[str, str]  # (program id, asset id)
Held = tuple[str, str, str]  # ("wallet", program id, asset id) or ("budget", rule id, asset id): what a step waits for
Ask = LeaseAsk | BudgetAsk
SendOps = Callable[[int, list[tuple[int, msgspec.Struct]], int], list[Op]]


def hold_until_applier(engine: Engine, partition: int, partitions: int) -> None:
    """Hold every short credit and budgeted match from the moment the store opens: events recovered at the open
    step before the partition's applier exists, and must wait for it rather than fail (:meth:`WalletLeases.__init__`
    resumes them). From here on this partition's allowance of a rule budget it does not own is its lease."""
    engine.on_short_hold = lambda _actor, _event, _short: HOLD
    engine._step_limits = msgspec.structs.replace(engine._step_limits, hold_when_short=True)
    engine._budgets.leaseholder = lambda rule_id, asset_id: budget_owner(rule_id, asset_id, partitions) != partition


def refuse_copied_funding(engine: Engine, partition: int, partitions: int) -> None:
    """Refuse (ValueError) a fresh partition store that holds funding of a wallet another partition owns.

    Partition stores start as copies of one template store; a wallet funded there would be funded once per copy.
    Only its owner may hold it: copy the template before funding, and fund through the front (the owner's log)."""
    for asset in engine._world.assets.values():
        if asset.issuance_policy != "PREFUNDED":
            continue
        for program_id in asset.program_ids:
            owner = wallet_owner(program_id, asset.id, partitions)
            held_minor = engine._world.accounts.get(account_key("PROGRAM", program_id, asset.id), 0)
            if owner != partition and held_minor != 0:
                raise ValueError(
                    f"partition {partition}'s store holds funding of program {program_id}'s {asset.symbol} wallet, "
                    f"which partition {owner} owns: copy the template store before funding it, then fund the "
                    f"wallet through the front (POST /v1/programs/{program_id}/assets/{asset.id}/fund)"
                )


async def wait_quiet(engine: Engine) -> None:
    """Wait until no step is left to run (held ones aside) and everything appended is durable: the point at which
    a record that moves a wallet or a participant's value outside a step sees every earlier record's effects."""
    registry = engine._registry
    assert registry is not None
    while True:
        await registry.wait_idle()
        await engine._caught_up()
        if not registry.runnable():
            return


def lease_entry(engine: Engine, wallet: Wallet, moved_minor: int, transit_of: int, seed: str, text: str) -> LedgerTx:
    """A transaction with one WALLET_LEASE entry: ``moved_minor`` into the wallet account from partition
    ``transit_of``'s transit account (negative: out of the wallet into it). Nothing is posted for 0."""
    program_id, asset_id = wallet
    now = engine._clock()
    tx = LedgerTx(engine._world, now=now, id_seed=seed, program_id=program_id)
    if moved_minor != 0:
        legs = [
            ("SYSTEM", transit_account(transit_of), asset_id, "AVAILABLE", -moved_minor),
            ("PROGRAM", program_id, asset_id, "AVAILABLE", moved_minor),
        ]
        tx.post("WALLET_LEASE", legs, rule_id=None, description=text)
    return tx


async def publish_lease(engine: Engine, tx: LedgerTx, ops: list[Op], then: Callable[[], None] | None = None) -> None:
    """Commit ``tx`` (if it posted anything) with ``ops`` as one record, and wait until it is durable. ``then``
    runs right after the commit, before the wait: a resumed step must be the first to see the grant, or another
    participant's step, running during the wait, would take it and the asker would have to ask again."""
    if tx.is_empty():
        engine._writer.append(ops)
    else:
        changes: Changes = tx.commit(engine._clock())
        engine._publisher.publish(changes, ops)
    if then is not None:
        then()
    await engine._caught_up()


class WalletLeases:
    """This partition's leases: holds short credits, asks the owners, applies their answers and recalls.

    Args:
        engine: the partition's engine (its ``on_short_hold`` hook is this object's from now on).
        partition, partitions: this partition, and the topic's count (the owners' routing rule).
        send_ops: the applier's outbox ops for effects caused at an origin offset.
        wake_relay: called once an ask's record is durable (the relay produces it).
        holds: False with ``--idempotency-scope participant``: no parking for a held participant's transfers, so
            a short credit fails as on one process, and only asks for more for the credits after it.
    """

    def __init__(
        self, engine: Engine, partition: int, partitions: int, send_ops: SendOps, wake_relay: Callable[[], None], *,
        holds: bool,
    ) -> None:  # fmt: skip
        self._engine, self._partition, self._partitions = engine, partition, partitions
        self._send_ops, self._wake_relay, self._holds = send_ops, wake_relay, holds
        self._holding: dict[Held, set[str]] = {}  # actors held for a wallet or a budget
        self._asks_per_event: dict[str, int] = {}
        self._denied: set[str] = set()  # events whose ask was denied: their next short step fails
        self._refused: set[str] = set()  # StepLimits.hold_refused
        engine.on_short_hold = self.on_short
        limits = engine._step_limits
        engine._step_limits = msgspec.structs.replace(limits, hold_when_short=True, hold_refused=self._refused)
        registry = engine._registry
        assert registry is not None
        for actor in registry.held():  # held since the open (hold_until_applier): run again, with this hook
            registry.resume(actor)

    def is_held(self, actor: str) -> bool:
        """Whether ``actor`` (an external id) has an event held for a wallet right now."""
        registry = self._engine._registry
        return registry is not None and registry.is_held(actor)

    def on_short(self, actor: str, event: Event, short: WalletShort | BudgetShort) -> object:
        """``Engine.on_short_hold``, inside the step: ask the owner for the shortfall and HOLD the step. A held
        step committed nothing, so an event that must go on instead (its ask denied, too many asks, no holds) is
        run AGAIN at once with its id in ``hold_refused``: its credit fails, or its budgeted match is skipped, as
        on one process. A short rule budget (_budget_leases.py) is asked for the same way."""
        asked = self._asks_per_event.get(event.id, 0)
        if len(self._denied) >= _TRACKED_EVENTS_MAX:  # a denied event that went on never comes back to clear it
            self._denied.clear()
        if event.id in self._denied or asked >= ASKS_PER_EVENT_MAX:
            self._asks_per_event.pop(event.id, None)
            self._denied.discard(event.id)
            return self._refuse(event)
        if len(self._asks_per_event) >= _TRACKED_EVENTS_MAX:
            self._asks_per_event.clear()
        self._asks_per_event[event.id] = asked + 1
        ask_id = _ASK_BASE | secrets.randbits(61)  # unique across restarts and replays, unlike a counter
        held_for, owner, ask = self._ask(short, ask_id, actor, event.id)
        self._engine._writer.append(self._send_ops(ask_id, [(owner, ask)], 0), self._wake_relay)
        if not self._holds:
            return self._refuse(event)
        self._holding.setdefault(held_for, set()).add(actor)
        return HOLD

    def _ask(self, short: WalletShort | BudgetShort, ask_id: int, actor: str, event_id: str) -> tuple[Held, int, Ask]:
        """What the step is held for, the partition that owns it, and the ask to send there. The owner's own ask
        names the whole amount: its lease is the remainder itself."""
        if isinstance(short, BudgetShort):
            owner = budget_owner(short.rule_id, short.asset_id, self._partitions)
            budget_ask = BudgetAsk(
                rule_id=short.rule_id, asset_id=short.asset_id, period_end=short.period_end,
                need_minor=short.full_need_minor if owner == self._partition else short.need_minor,
                full_need_minor=short.full_need_minor, ask_id=ask_id, actor=actor, event_id=event_id,
            )  # fmt: skip
            return ("budget", short.rule_id, short.asset_id), owner, budget_ask
        owner = wallet_owner(short.program_id, short.asset_id, self._partitions)
        ask = LeaseAsk(
            program_id=short.program_id,
            asset_id=short.asset_id,
            need_minor=short.need_minor - (0 if owner == self._partition else short.available_minor),
            full_need_minor=short.need_minor,
            ask_id=ask_id,
            actor=actor,
            event_id=event_id,
        )
        return ("wallet", short.program_id, short.asset_id), owner, ask

    def _refuse(self, event: Event) -> object:
        """Run ``event``'s step again at once, failing where its wallet is short."""
        if len(self._refused) >= _TRACKED_EVENTS_MAX:  # those before have run again long since
            self._refused.clear()
        self._refused.add(event.id)
        return AGAIN

    def refuse_if_stuck(self) -> int:
        """The partition is overloaded (its in-flight bound is reached) and no step can run: every event in flight
        is held, or queued behind a held one, and the answers that would resume them are later records, which
        cannot be read until the in-flight events are done. Let every held credit fail, as on one process (its
        lease short), so that the partition goes on; returns how many. Without this a slow or absent owner would
        stop the partition for good rather than delay it."""
        registry = self._engine._registry
        assert registry is not None
        if registry.runnable():
            return 0  # steps are running: the in-flight events will finish on their own
        refused = 0
        for actor in registry.held():
            head = registry.head(actor)
            event = getattr(head, "event", None)
            if event is None:
                continue
            self._refused.add(event.id)
            for holders in self._holding.values():
                holders.discard(actor)
            registry.resume(actor)
            refused += 1
        return refused

    def resume(self, wallet: Wallet) -> None:
        """Run every step held for ``wallet`` again (it was funded)."""
        registry = self._engine._registry
        assert registry is not None
        for actor in self._holding.pop(("wallet", *wallet), set()):
            registry.resume(actor)

    async def on_answer(self, offset: int, origin: int, answer: LeaseAnswer, first_ops: list[Op]) -> None:
        """The owner's answer: the grant joins the lease in the answer's own record; the held steps run again."""
        engine, wallet = self._engine, (answer.program_id, answer.asset_id)
        await wait_quiet(engine)
        seed = f"lease/{self._partition}/{offset}"
        tx = lease_entry(engine, wallet, answer.amount_minor, origin, seed, f"lease from partition {origin}")
        await publish_lease(engine, tx, first_ops, lambda: self.resume_asker(answer, ("wallet", *wallet)))

    def resume_asker(self, answer: LeaseAnswer | BudgetAnswer, held_for: Held) -> None:
        """Only the asker runs again, first: the others wait for their own answers. (Resuming every holder would
        let them race for one grant, and each loser would ask again: an ask storm in the endgame.)"""
        registry, actor = self._engine._registry, answer.actor
        assert registry is not None
        head = registry.head(actor) if registry.is_held(actor) else None
        if getattr(getattr(head, "event", None), "id", None) != answer.event_id:
            return  # its event went on without it (or asked again after a restart, and that answer will come)
        if answer.denied:
            self._denied.add(answer.event_id)
        self._holding.get(held_for, set()).discard(actor)
        registry.resume(actor)

    async def on_recall(self, offset: int, origin: int, recall: LeaseRecall, first_ops: list[Op]) -> None:
        """The owner's endgame: send back everything this lease holds (0 too: the owner counts the answers)."""
        engine, wallet = self._engine, (recall.program_id, recall.asset_id)
        await wait_quiet(engine)
        held_minor = engine._world.accounts.get(account_key("PROGRAM", recall.program_id, recall.asset_id), 0)
        back = LeaseReturn(
            program_id=recall.program_id, asset_id=recall.asset_id, round=recall.round, amount_minor=held_minor
        )
        seed = f"lease/{self._partition}/{offset}"
        tx = lease_entry(engine, wallet, -held_minor, origin, seed, f"lease returned to partition {origin}")
        await publish_lease(engine, tx, [*first_ops, *self._send_ops(offset, [(origin, back)], 0)])
