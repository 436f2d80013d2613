"""Participant actors: one mailbox per participant, so a participant's events are processed strictly in the order
they were delivered, with no locks.

An actor is *virtual*: it exists while its mailbox has work, and its state is cached separately by the engine, so an
idle actor costs nothing but its cache entry. One dispatcher task runs every step: it takes the actors that have
work in round-robin order, one message per turn, so a busy participant cannot starve the others. Each step is a
synchronous function, so running them on one task loses no concurrency (trio runs one task at a time anyway) and
saves a task spawn and a channel hand-off per activation, which a measured prototype showed to dominate the cost
of an event (DESIGN.md §3). The dispatcher checkpoints every ``steps_per_checkpoint`` steps so that HTTP handlers,
the writer and the sweeper keep running under load.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import trio

__all__ = ["AGAIN", "HOLD", "ActorRegistry", "ActorStatistics"]

# What a step returns to keep its message at the head of the mailbox and stop taking the actor's messages until
# :meth:`ActorRegistry.resume` (partitioned mode: a credit waiting for more of a shared wallet). Any other return
# value means the message is done.
HOLD = object()
# What a step returns to run the same message again at once, before any other actor's (it changed what the step
# will decide: partitioned mode's lease keeper refusing to hold a credit any longer).
AGAIN = object()


class ActorStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the actor registry."""

    actors_live: int
    actors_live_peak: int
    activations: int
    messages_processed: int
    mailbox_depth_peak: int


class ActorRegistry:
    """Per-key mailboxes and the dispatcher that drains them.

    Args:
        step: the synchronous handler ``step(key, message)``; it must not await. Returning :data:`HOLD` keeps the
            message at its mailbox's head and the actor out of turn until :meth:`resume`.
        steps_per_checkpoint: how many steps run before the dispatcher yields to other tasks.
    """

    def __init__(self, step: Callable[[str, Any], None], *, steps_per_checkpoint: int = 32) -> None:
        assert steps_per_checkpoint >= 1
        self._step = step
        self._steps_per_checkpoint = steps_per_checkpoint
        self._mailboxes: dict[str, deque[Any]] = {}
        self._ready: deque[str] = deque()
        self._wakeup = trio.Event()
        self._idle = trio.Event()
        self._idle.set()
        self._live_peak = 0
        self._activations = 0
        self._processed = 0
        self._depth_peak = 0
        self.queued = 0  # messages waiting in all mailboxes
        self._held: set[str] = set()  # actors whose head message's step returned HOLD, until resumed

    def deliver(self, key: str, message: Any) -> None:
        """Queue ``message`` for actor ``key`` (synchronous; mailboxes are bounded by admission control upstream)."""
        mailbox = self._mailboxes.get(key)
        if mailbox is None:
            mailbox = self._mailboxes[key] = deque()
            self._ready.append(key)
            self._activations += 1
            if len(self._mailboxes) > self._live_peak:
                self._live_peak = len(self._mailboxes)
            if self._idle.is_set():
                self._idle = trio.Event()
            self._wakeup.set()
        mailbox.append(message)
        self.queued += 1
        if len(mailbox) > self._depth_peak:
            self._depth_peak = len(mailbox)

    def is_busy(self, key: str) -> bool:
        """True while ``key`` has queued work."""
        return key in self._mailboxes

    def is_held(self, key: str) -> bool:
        """True while ``key``'s head message is held (its step returned HOLD) and not yet resumed."""
        return key in self._held

    def head(self, key: str) -> Any:
        """The message at the head of ``key``'s mailbox (None: no mailbox)."""
        mailbox = self._mailboxes.get(key)
        return mailbox[0] if mailbox else None

    def runnable(self) -> bool:
        """True while some actor that is not held has a message waiting."""
        return len(self._mailboxes) > len(self._held)

    def held(self) -> list[str]:
        """The actors held right now."""
        return list(self._held)

    def resume(self, key: str) -> None:
        """Run a held actor's head message again, before any other actor's (nothing if it is not held)."""
        if key in self._held:
            self._held.discard(key)
            self._ready.appendleft(key)
            if self._idle.is_set():
                self._idle = trio.Event()
            self._wakeup.set()

    async def wait_idle(self) -> None:
        """Wait until every mailbox is empty, or held: no step is left to run until something resumes one."""
        while self.runnable():
            await self._idle.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher loop; runs until cancelled (cancellation lands between steps, never inside one)."""
        task_status.started()
        mailboxes, ready, step = self._mailboxes, self._ready, self._step
        since_checkpoint = 0
        while True:
            if not ready:
                self._idle.set()
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            key = ready.popleft()
            mailbox = mailboxes[key]
            verdict = step(key, mailbox[0])
            if verdict is HOLD:
                self._held.add(key)  # out of ``ready`` until resume(); deliver() only appends to its mailbox
            elif verdict is AGAIN:
                ready.appendleft(key)
            else:
                mailbox.popleft()
                self.queued -= 1
                self._processed += 1
                if mailbox:
                    ready.append(key)
                else:
                    del mailboxes[key]
            since_checkpoint += 1
            if since_checkpoint >= self._steps_per_checkpoint:
                since_checkpoint = 0
                await trio.lowlevel.checkpoint()

    def reset_peaks(self) -> None:
        """Start a new window for the ``*_peak`` figures."""
        self._live_peak = len(self._mailboxes)
        self._depth_peak = max((len(mailbox) for mailbox in self._mailboxes.values()), default=0)

    def statistics(self) -> ActorStatistics:
        """A snapshot of the registry's counters."""
        return ActorStatistics(
            actors_live=len(self._mailboxes),
            actors_live_peak=self._live_peak,
            activations=self._activations,
            messages_processed=self._processed,
            mailbox_depth_peak=self._depth_peak,
        )
