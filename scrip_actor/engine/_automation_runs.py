"""The automation runner: fires what is due, and fans events out to participants (docs/automations.md).

A fire is a durable run record (``automation_runs[automation id + be64(fire_ms)]``), written in one record with
the schedule's move to the next fire. Its events go through the engine's admission like client events, with
``event_type`` SYSTEM and the idempotency key ``automation:{id}:{fire_ms}:{participant id}``; its event time is
the fire time. A fan-out walks the ``participants`` database in key order, a batch at a time: it admits the
batch's events, appends the run record with its cursor (the last key) after them, and awaits that record's
durability before the next batch, so the cursor is never ahead of the events on disk. After a crash the run
resumes from its cursor; the events of a batch whose cursor was lost are admitted again and found by their keys
(replays: nobody gets a second event). Memory is one batch; events in flight are bounded
(``automations.fanout_inflight_max``); the runner yields between batches, so client traffic keeps its turn.

A fire that was due before the engine opened (it was down) runs late once or is skipped
(``automations.missed_fire_policy``); a cron automation then continues from its next fire after now: never one
run per missed period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from itertools import islice
from typing import Any

import msgspec
import trio

from scrip_actor.automations import Automation, AutomationRun, from_ms, next_cron, to_ms
from scrip_actor.cel import CelCostExceeded, CelEvaluationError
from scrip_actor.config import AutomationSettings, Limits
from scrip_actor.engine._automations import MANUAL, REFRESH, SUBSCRIBER, Automations, event_data
from scrip_actor.engine._subscriptions import Subscriptions
from scrip_actor.errors import IdempotencyConflict, Overloaded, ScripError, ValidationFailed
from scrip_actor.ledger import ParticipantState
from scrip_actor.model import Event, EventSubmit
from scrip_actor.rules import cel_event_data, compile_condition, event_variables
from scrip_actor.store import Op, Store, Writer, be64, encode, unbe64

__all__ = ["AutomationRunner", "idempotency_key_of"]

_log = logging.getLogger("scrip_actor.automations")
_run_decoder = msgspec.json.Decoder(AutomationRun)
_YIELD_EVERY = 16  # participants a fan-out handles between two checkpoints


def idempotency_key_of(automation_id: str, fire_ms: int, participant_id: str) -> str:
    """The key of the event a fire sends one participant: the same on every attempt of that fire."""
    return f"automation:{automation_id}:{fire_ms}:{participant_id}"


def _run_key(automation_id: str, fire_ms: int) -> bytes:
    return automation_id.encode() + be64(fire_ms)


class AutomationRunner:
    """Fires due automations and runs their fan-outs (see the module docstring).

    Args:
        accept: admits a SYSTEM event synchronously (the engine's admission).
        inflight: how many events are admitted and not yet processed.
        participant: a participant's state by id (loaded from the store on a miss), or None.
        closing: whether the engine is shutting down (a fan-out stops; it resumes at the next open).
    """

    def __init__(
        self,
        *,
        automations: Automations,
        store: Store,
        writer: Writer,
        clock: Callable[[], datetime],
        settings: AutomationSettings,
        cel_compiler: Any,
        cel_cost_max: int,
        limits: Limits,
        accept: Callable[[EventSubmit], tuple[Event, bool]],
        inflight: Callable[[], int],
        participant: Callable[[str], ParticipantState | None],
        closing: Callable[[], bool],
    ) -> None:
        self._automations = automations
        self._store = store
        self._writer = writer
        self._clock = clock
        self._settings = settings
        self._cel_compiler = cel_compiler
        self._cel_cost_max = cel_cost_max
        self._accept = accept
        self._inflight = inflight
        self._participant = participant
        self._closing = closing
        self._lock = trio.Lock()
        self._wakeup = trio.Event()
        self._cancelled: set[str] = set()
        self.opened_ms = to_ms(clock())  # a fire due before this was missed (the engine was down)
        self.fires = {"run": 0, "skipped": 0}
        self._compiled: dict[str, Any] = {}  # CEL text -> compiled, for subscriptions' fires
        self.subscriptions = Subscriptions(
            automations=automations,
            store=store,
            writer=writer,
            clock=clock,
            settings=settings,
            limits=limits,
            participant=participant,
            passes=self.passes,
            send=self._send,
        )
        self.events_created = 0
        automations.on_scheduled = self.wake

    def wake(self) -> None:
        self._wakeup.set()

    # --- the worker ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """The worker: resume runs a crash interrupted, then fire what is due, waking at the next due time."""
        await self.resume()
        while True:
            self._wakeup = trio.Event()
            await self.run_due()
            wait_s = self._settings.poll_interval_s
            first = next(self._store.scan("automation_schedule"), None)
            if first is not None:
                wait_s = min(wait_s, max(0.0, (unbe64(first[0][:8]) - to_ms(self._clock())) / 1000))
            with trio.move_on_after(wait_s):
                await self._wakeup.wait()

    async def resume(self) -> int:
        """Run to their end the fan-outs that were executing when the engine stopped; returns how many."""
        keys = [key for key, _ in self._store.scan("automation_runs")]
        resumed = 0
        for key in keys:
            async with self._lock:
                raw = self._store.get_raw("automation_runs", key)  # read under the lock: another resume may have run it
                if raw is not None:
                    resumed += 1
                    await self._execute(_run_decoder.decode(raw))
        return resumed

    async def run_due(self) -> int:
        """Fire every automation due by now (the clock's), each to its end; returns how many fires started.

        The worker calls this when the next fire is due; tests with a manual clock call it directly.
        """
        fired = 0
        async with self._lock:
            now_ms = to_ms(self._clock())
            while not self._closing():
                due = [key for key, _ in islice(self._store.scan("automation_schedule"), 64)]
                due = [key for key in due if unbe64(key[:8]) <= now_ms or key.endswith(MANUAL)]  # a trigger: now
                if not due:
                    break
                for key in due:
                    run = await self._start(key, now_ms)
                    if run is not None:
                        fired += 1
                        await self._execute(run)
        return fired

    # --- one fire ---------------------------------------------------------------------------------------------

    async def _start(self, key: bytes, now_ms: int) -> AutomationRun | None:
        """Take one schedule entry: the run it starts (durable, with the next fire scheduled), or None (a
        participant_state entry is handled here whole: an enrolment, or one subscription's fire)."""
        due_ms = unbe64(key[:8])
        automation_id, _, tail = key[8:].partition(b"\0")
        manual = tail == MANUAL[1:]
        automation = self._automations.by_id.get(automation_id.decode())
        ops: list[Op] = [("automation_schedule", key, None)]
        if (automation is not None and tail[:1] == SUBSCRIBER[1:]) or tail == REFRESH[1:]:
            await self._participant_state(automation, key, tail, due_ms)
            return None
        one_shot = manual or (automation is not None and automation.trigger_type == "immediate")
        if (
            automation is None
            or automation.status != "active"
            or (one_shot and automation.execution_status == "cancelled")
        ):
            await self._writer.wait_durable(self._writer.append(ops))
            return None
        now = from_ms(now_ms)
        next_fire = None
        if automation.trigger_type == "cron" and not manual:
            assert automation.cron_expression is not None
            next_fire = next_cron(automation.cron_expression, automation.timezone, max(now, from_ms(due_ms)))
        changes: dict[str, Any] = {"next_run_at": next_fire if not manual else automation.next_run_at}
        # Missed: due while the engine was down (it existed, and its time passed, before this open).
        missed = due_ms < self.opened_ms and to_ms(automation.created_at) < self.opened_ms
        if missed and self._settings.missed_fire_policy == "skip":
            self.fires["skipped"] += 1
            changes["last_error"] = f"missed the fire due at {from_ms(due_ms).isoformat()} (skipped: engine was down)"
            if automation.trigger_type == "one_time":
                changes.update(processed_at=now, error_message=changes["last_error"])
            updated = msgspec.structs.replace(automation, **changes, updated_at=now)
            await self._writer.wait_durable(
                self._writer.append(self._automations.save_ops(updated, next_fire, None, ops=ops))
            )
            return None
        run = AutomationRun(
            automation_id=automation.id,
            program_id=automation.program_id,
            fire_ms=due_ms,
            scope=automation.scope,
            event_data=event_data(automation),
            participant_id=automation.participant_id,
            participant_filter=automation.participant_filter,
            guard_condition=automation.guard_condition,
        )
        self._cancelled.discard(automation.id)
        changes.update(
            execution_status="executing", execution_started_at=now, execution_completed_at=None, execution_error=None
        )
        changes.update(last_run_at=now)
        if automation.scope == "participants":
            changes.update(participants_processed=0, participants_total=None, events_created=0)
        updated = msgspec.structs.replace(automation, **changes, updated_at=now)
        ops.append(("automation_runs", _run_key(run.automation_id, due_ms), encode(run)))
        await self._writer.wait_durable(
            self._writer.append(self._automations.save_ops(updated, next_fire, None, ops=ops))
        )
        self.fires["run"] += 1
        return run

    async def _execute(self, run: AutomationRun) -> None:
        """Send a run's events (one, or a fan-out from its cursor) and record its end."""
        if run.scope == "program":
            assert run.participant_id is not None
            created = await self._send(run, run.participant_id)
            run = msgspec.structs.replace(run, events_created=int(created), status="completed")
        else:
            run = await self._fan_out(run)
            if run.status == "executing":
                return  # the engine is closing: the run record stays, and resumes at the next open
        await self._finish(run)

    async def _fan_out(self, run: AutomationRun) -> AutomationRun:
        """The participants of the run's program from its cursor, a batch at a time (module docstring)."""
        settings = self._settings
        checks = [compile_condition(text, field, self._cel_compiler) for field, text in _conditions(run)]
        variables_data = cel_event_data(run.event_data)
        fire_time = from_ms(run.fire_ms)
        while True:
            if run.automation_id in self._cancelled:
                return msgspec.structs.replace(run, status="cancelled")
            if self._closing():
                return run
            start = run.cursor.encode() if run.cursor is not None else None
            keys = [key for key, _ in islice(self._store.scan("participants", start=start), settings.fanout_batch_size)]
            processed, created = run.participants_processed, run.events_created
            for key in keys:
                state = self._participant(key.decode())
                if state is None or run.program_id not in state.program_ids:
                    continue
                processed += 1
                if all(_passes(check, variables_data, state, fire_time, self._cel_cost_max) for check in checks):
                    created += await self._send(run, state.id)
                if processed % _YIELD_EVERY == 0:  # admission is synchronous: let client requests in between
                    await self._drain()
                if self._closing():
                    return run  # this batch's cursor is not written: its events are replays at the next open
            if run.automation_id in self._cancelled:
                return msgspec.structs.replace(run, status="cancelled", participants_processed=processed)
            run = msgspec.structs.replace(
                run,
                cursor=keys[-1].decode() if keys else run.cursor,
                participants_processed=processed,
                events_created=created,
            )
            if len(keys) < settings.fanout_batch_size:
                return msgspec.structs.replace(run, status="completed")
            await self._checkpoint(run)

    async def _checkpoint(self, run: AutomationRun) -> None:
        """Persist the cursor after the batch's events, show the progress, then give client traffic its turn."""
        automation = self._automations.by_id[run.automation_id]
        updated = msgspec.structs.replace(
            automation, participants_processed=run.participants_processed, events_created=run.events_created
        )
        run_op: Op = ("automation_runs", _run_key(run.automation_id, run.fire_ms), encode(run))
        await self._writer.wait_durable(
            self._writer.append(self._automations.save_ops(updated, None, None, ops=[run_op]))
        )
        await self._drain()

    async def _drain(self) -> None:
        """Wait while more than ``fanout_inflight_max`` events are queued, then yield: a client's event never
        waits behind more than that many of the fan-out's in the actors' round-robin."""
        while True:  # polled: no hook per processed event; clients go on meanwhile
            if self._inflight() <= self._settings.fanout_inflight_max or self._closing():
                break
            await trio.sleep(0.002)
        await trio.lowlevel.checkpoint()

    async def _send(self, run: AutomationRun, participant_id: str) -> bool:
        """Admit one participant's event of this fire; True if it is new (False: a replay, or refused)."""
        request = EventSubmit(
            program_id=run.program_id,
            participant_id=participant_id,
            idempotency_key=idempotency_key_of(run.automation_id, run.fire_ms, participant_id),
            event_timestamp=from_ms(run.fire_ms),
            event_data=run.event_data,
        )
        while True:
            try:
                _, new = self._accept(request)
            except Overloaded:
                if self._closing():
                    return False
                await trio.sleep(0.01)  # the in-flight bound: wait for the actors, never drop the event
                continue
            except IdempotencyConflict:
                _log.warning("automation %s: key of %s used by another event", run.automation_id, participant_id)
                return False
            except ScripError as error:  # the participant or program went away meanwhile
                _log.warning("automation %s: no event for %s: %s", run.automation_id, participant_id, error)
                return False
            if new:
                self.events_created += 1
            return new

    async def _finish(self, run: AutomationRun) -> None:
        automation = self._automations.by_id[run.automation_id]
        now = self._clock()
        status = {"completed": "completed", "cancelled": "cancelled"}.get(run.status, "failed")
        changes: dict[str, Any] = {"execution_status": status, "execution_completed_at": now, "updated_at": now}
        if run.scope == "participants":
            changes.update(participants_processed=run.participants_processed, events_created=run.events_created)
            if status == "completed":
                changes["participants_total"] = run.participants_processed
        if status == "cancelled":
            changes["execution_error"] = "cancelled by request"
        if automation.trigger_type == "one_time":
            changes["processed_at"] = now
        updated = msgspec.structs.replace(automation, **changes)
        run_op: Op = ("automation_runs", _run_key(run.automation_id, run.fire_ms), None)
        if automation.source == "rule_action" and status == "completed":  # fired: removed (see follow_up_ops)
            self._automations.by_id.pop(automation.id, None)
            ops: list[Op] = [run_op, ("automations", automation.id.encode(), None)]
        else:
            ops = self._automations.save_ops(updated, None, None, ops=[run_op])
        await self._writer.wait_durable(self._writer.append(ops))

    async def _participant_state(self, automation: Automation | None, key: bytes, tail: bytes, due_ms: int) -> None:
        if automation is None:
            await self._writer.wait_durable(self._writer.append([("automation_schedule", key, None)]))
        elif tail == REFRESH[1:]:
            await self.subscriptions.refresh(automation, key)
        else:
            missed = due_ms < self.opened_ms and self._settings.missed_fire_policy == "skip"
            self.fires["skipped" if missed else "run"] += 1
            await self.subscriptions.fire(automation, tail[1:].decode(), due_ms, missed)

    def passes(self, run: AutomationRun, state: ParticipantState) -> bool:
        """Whether ``state`` passes the run's participant_filter and guard_condition at the run's fire time."""
        fire_time = from_ms(run.fire_ms)
        data = cel_event_data(run.event_data)
        for field, text in _conditions(run):
            check = self._compiled.get(text)
            if check is None:
                if len(self._compiled) > 256:
                    self._compiled.clear()
                check = self._compiled[text] = compile_condition(text, field, self._cel_compiler)
            if not _passes(check, data, state, fire_time, self._cel_cost_max):
                return False
        return True

    # --- cancel ------------------------------------------------------------------------------------------------

    async def cancel(self, program_id: str, automation_id: str) -> Automation:
        """Stop a running or pending fan-out at its next batch: execution_status ``cancelled``. Events already
        admitted stay; the rest are not sent. The automation stays active (its next fires still happen)."""
        automation = self._automations.get(program_id, automation_id)
        if automation.execution_status not in ("pending", "executing"):
            raise_not_running(automation)
        self._cancelled.add(automation_id)
        now = self._clock()
        stored = self._automations.by_id[automation_id]
        updated = msgspec.structs.replace(
            stored,
            execution_status="cancelled",
            execution_error="cancelled by request",
            execution_completed_at=now,
            updated_at=now,
        )
        ops: list[Op] = [
            ("automation_runs", key, None) for key, _ in self._store.scan("automation_runs", automation_id.encode())
        ]
        manual = [
            key for key, _ in self._store.scan("automation_schedule") if key.endswith(automation_id.encode() + MANUAL)
        ]
        ops.extend(("automation_schedule", key, None) for key in manual)
        unschedule = None
        if stored.trigger_type == "immediate" and stored.next_run_at is not None:  # created, not started yet
            unschedule, updated.next_run_at = stored.next_run_at, None
        await self._automations.save(updated, unschedule=unschedule, ops=ops)
        return msgspec.structs.replace(updated)


def raise_not_running(automation: Automation) -> None:
    raise ValidationFailed(f"automation {automation.id} has no fan-out running or pending to cancel")


def _conditions(run: AutomationRun) -> list[tuple[str, str]]:
    return [
        (f, t)
        for f, t in (("participant_filter", run.participant_filter), ("guard_condition", run.guard_condition))
        if t
    ]


def _passes(check: Any, data: Any, state: ParticipantState, now: datetime, cost_max: int) -> bool:
    """Whether a participant passes a filter: true only for ``true`` (an error or a non-boolean excludes it)."""
    view = state.cel_view_at(now) if state.counter_windows else state.cel_view()
    try:
        return check.evaluate(event_variables(data, view, now, cost_max)) is True
    except (CelEvaluationError, CelCostExceeded):  # excludes this participant, never stops the fan-out
        return False
