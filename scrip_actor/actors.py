"""Participant actors: one mailbox per participant, drained by one task at a time, so events of a participant are
processed strictly in the order they were delivered, with no locks.

An actor is *virtual*: it exists while its mailbox has work. The first message starts a task in the engine's nursery
that drains the mailbox (each message is one synchronous step, with a checkpoint between steps so other actors run),
and the task ends when the mailbox is empty. The participant's state is cached separately by the engine, so an idle
actor costs nothing but its cache entry.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import trio

__all__ = ["ActorRegistry", "ActorStatistics"]


class ActorStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the actor registry."""

    actors_live: int
    actors_live_peak: int
    activations: int
    messages_processed: int
    mailbox_depth_peak: int


class _Actor:
    __slots__ = ("key", "mailbox")

    def __init__(self, key: str) -> None:
        self.key = key
        self.mailbox: deque[Any] = deque()


class ActorRegistry:
    """Routes messages to per-key mailboxes and runs one draining task per busy key.

    Args:
        nursery: where actor tasks run; cancelling it stops them between steps (never inside one).
        step: the synchronous handler ``step(key, message)``; it must not await.
    """

    def __init__(self, nursery: trio.Nursery, step: Callable[[str, Any], None]) -> None:
        self._nursery = nursery
        self._step = step
        self._actors: dict[str, _Actor] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._live_peak = 0
        self._activations = 0
        self._processed = 0
        self._depth_peak = 0

    def deliver(self, key: str, message: Any) -> None:
        """Queue ``message`` for the actor ``key`` (synchronous; the mailbox is bounded by admission control)."""
        actor = self._actors.get(key)
        if actor is None:
            actor = self._actors[key] = _Actor(key)
            self._activations += 1
            self._live_peak = max(self._live_peak, len(self._actors))
            if self._idle.is_set():
                self._idle = trio.Event()
            self._nursery.start_soon(self._drain, actor)
        actor.mailbox.append(message)
        if len(actor.mailbox) > self._depth_peak:
            self._depth_peak = len(actor.mailbox)

    def is_busy(self, key: str) -> bool:
        """True while ``key`` has queued or running work."""
        return key in self._actors

    async def wait_idle(self) -> None:
        """Wait until every mailbox is empty."""
        while self._actors:
            await self._idle.wait()

    async def _drain(self, actor: _Actor) -> None:
        mailbox = actor.mailbox
        try:
            while mailbox:
                message = mailbox.popleft()
                self._step(actor.key, message)
                self._processed += 1
                await trio.lowlevel.checkpoint()
        finally:
            if not mailbox:
                del self._actors[actor.key]
                if not self._actors:
                    self._idle.set()

    def statistics(self) -> ActorStatistics:
        """A snapshot of the registry's counters."""
        return ActorStatistics(
            actors_live=len(self._actors),
            actors_live_peak=self._live_peak,
            activations=self._activations,
            messages_processed=self._processed,
            mailbox_depth_peak=self._depth_peak,
        )
