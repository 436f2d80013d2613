"""Admitting records consumed from a log (partitioned mode, issue 16): each with its log position, atomically.

A partition's engine (scrip_actor/partitioned/) reads its partition's records in offset order and admits each as
an event. Exactly-once rests on one rule: the offset after a record is written **in the same LMDB record as the
event the record produced** (an op in its admission record, see :meth:`Admission.accept`), so after any crash
the store says exactly which records it holds and the consumer resumes right after the last one. Whatever the
broker's transactions do (or, on Tansu, fail to do), no record is applied twice or skipped.

A record that admits nothing new (a replay of an idempotency key, or refused input: a 4xx the front would have
caught) still moves the position, in a small record of its own: the writer commits records in the order they
were appended, so the position can never run ahead of an event before it.

Processing then follows the embedded engine's own guarantees: an admitted event is in the inbox and is processed
exactly once, before or after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from scrip_actor.errors import Overloaded, ScripError
from scrip_actor.model import Event
from scrip_actor.store import Op, be64, unbe64

if TYPE_CHECKING:
    from scrip_actor.engine._engine import Engine

__all__ = ["Verdict", "admit_consumed", "consumed_offset", "offset_op"]

# What partitioned mode decides for a record before admitting it (scrip_actor/partitioned/_apply.py): admit it
# (the ops join its admission record), consume it (the ops are written with the position and nothing is admitted:
# an event parked until its key is claimed, or a claim effect), or refuse it (the ops are written with the
# position; the error is the record's result).
Verdict = tuple[Literal["admit", "consume", "refuse"], list["Op"], ScripError | None]

_OFFSET_KEY_PREFIX = b"log_offset:"


def _offset_key(log: str) -> bytes:
    return _OFFSET_KEY_PREFIX + log.encode()


def offset_op(log: str, next_offset: int) -> Op:
    """The op that records ``next_offset`` (the offset after the last record applied) for ``log``."""
    return ("meta", _offset_key(log), be64(next_offset))


def consumed_offset(engine: Engine, log: str) -> int:
    """The offset to resume ``log`` at: after the last record whose effects are durable (0: none yet)."""
    raw = engine._store.get_raw("meta", _offset_key(log))
    return 0 if raw is None else unbe64(raw)


async def admit_consumed(
    engine: Engine,
    log: str,
    records: list[tuple[int, Any]],
    decide: Callable[[int, Any], Verdict] | None = None,
    admitted: Callable[[int], None] | None = None,
) -> list[Event | ScripError | None]:
    """Admit ``(offset, request or its decoding error)`` records in order; return once their records are durable.

    A record that is neither an ``EventSubmit`` nor a ``ScripError`` must be one ``decide`` consumes. Each result is
    the admitted event (or the original, for a replay), the error that refused it, or None for a record ``decide``
    consumed. ``admitted(offset)`` is told of each record admitted as a new event, its ``decide`` ops with it. An
    ``Overloaded`` refusal is the caller's to retry: its position is *not* recorded, and neither is any after it.
    """
    admission, writer = engine._admission, engine._writer
    results: list[Event | ScripError | None] = []
    # Offsets only move forward, from where the store says the log was left (gaps are fine: a broker's control
    # records take offsets too). A reader that jumped back (a recreated topic) or was rewound would re-admit.
    previous_offset = consumed_offset(engine, log) - 1
    for offset, request in records:
        assert offset > previous_offset, (log, previous_offset, offset)
        previous_offset = offset
        position = [offset_op(log, offset + 1)]
        if isinstance(request, ScripError):
            results.append(request)
            writer.append(position)
            continue
        extra: list[Op] = []
        if decide is not None:
            verdict, extra, refusal = decide(offset, request)
            if verdict != "admit":
                writer.append(position + extra)
                results.append(refusal)
                continue
        try:
            event, is_new = admission.accept(request, extra_ops=position + extra)
        except ScripError as error:
            results.append(error.with_traceback(None))
            if isinstance(error, Overloaded):
                break
            writer.append(position)
            continue
        if not is_new:
            writer.append(position)
        elif admitted is not None:
            admitted(offset)
        results.append(event)
    await engine._caught_up()
    assert len(results) <= len(records)
    assert not any(isinstance(result, Overloaded) for result in results[:-1])
    return results
