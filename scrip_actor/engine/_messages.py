"""The messages an actor's mailbox carries: an event to process, a sweep of the lots that came due, or an
operator's balance operation (scrip_actor.engine._operations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from scrip_actor.model import Event
from scrip_actor.rules import CompiledRule

__all__ = ["Operate", "Process", "Sweep"]


class Process(msgspec.Struct):
    """Process this event.

    ``cel_data`` is its data as CEL sees it, computed once at admission; ``position`` its key in the inbox (its
    sequence, or a later position when a FAILED event is retried, so a restart replays it in the same order);
    ``rules`` the program's compiled rules in force at that position, chosen when the message is delivered, so a
    rule changed while the event waits in its mailbox applies only to events admitted after the change — live and
    on replay alike (``scrip_actor._rule_sets``).
    """

    event: Event
    cel_data: Any
    position: int
    rules: list[CompiledRule]
    data_bytes: int  # its event_data's JSON size, counted against engine.inflight_event_bytes_max until processed


class Sweep(msgspec.Struct):
    """Mature and expire this participant's lots that are due."""

    participant_id: str
    keys: list[bytes]


class Operate(msgspec.Struct):
    """Run an operator's balance operation on this participant, in turn with its events.

    ``work(tx, state)`` does the operation on a transaction and returns what ``answer(work's value, entry,
    state)`` needs to build the reply once committed; ``reply`` is the caller's (it awaits it).
    """

    participant_id: str
    program_id: str
    work: Callable[[Any, Any], Any]
    answer: Callable[[Any, Any, Any], Any]
    reply: Any
    idempotency: tuple[bytes, str, str] | None  # (store key, request hash, operation) when the caller gave a key
    # Partitioned mode: more ops for the operation's own record, given its answer (the log offset it consumed,
    # the answer kept under the record's position, its key's claim), so they commit with its entry or not at all.
    record_ops: Callable[[Any], list[Any]] | None = None
