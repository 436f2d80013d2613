"""Backtest jobs (docs/backtest.md): start, follow, cancel, list; each run a trio task that yields as it goes.

A run is a job, not one long request: :meth:`Backtests.start` checks everything a 400 can say (the window and its
bounds, the proposed rules), then starts a task in the engine's nursery and answers at once with the job
(``RUNNING``). The task drives the replay (engine/_backtest_replay.py) and gives the loop back every
:data:`~scrip_actor.engine._backtest_replay.STEPS_PER_YIELD` events, where it also looks at its bounds and at a
cancel request; so live traffic keeps running between two chunks (docs/benchmarks.md "Backtest beside live
traffic"), and a cancel or the time bound takes effect within one chunk.

Jobs live in memory: at most ``backtests.running_max`` at once (one more is a 409 ``backtest_running``) and the
newest ``backtests.finished_kept`` finished ones. A restart forgets them (a GET then answers 404), and a run that
was going is not resumed: nothing of it was ever stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec
import trio

from scrip_actor.backtest_model import Backtest, BacktestCreate
from scrip_actor.config import BacktestSettings, Limits
from scrip_actor.cursors import decode as decode_cursor
from scrip_actor.cursors import encode as encode_cursor
from scrip_actor.engine._backtest_process import WorkerStopped
from scrip_actor.engine._backtest_replay import OverBound, ReplayPlan, ReplaySources, replay
from scrip_actor.engine._backtest_report import Tally
from scrip_actor.engine._backtest_rules import current_rules, proposed_rules
from scrip_actor.engine._catalog import Catalog, utc_or_none
from scrip_actor.engine._validation import validated
from scrip_actor.errors import Conflict, NotFound, ValidationFailed
from scrip_actor.model import Page

__all__ = ["BacktestRunning", "Backtests"]

_log = logging.getLogger("scrip_actor.backtests")


class BacktestRunning(Conflict):
    """As many backtests as ``backtests.running_max`` are running already (HTTP 409)."""

    code = "backtest_running"


WORKER_GRACE_S = 5.0  # the child enforces time_max_s itself; the parent kills it this much later
# What the parent takes from the child's job lines (it keeps its own id, created_at, status and finish).
_FROM_CHILD = tuple(
    field.name
    for field in msgspec.structs.fields(Backtest)
    if field.name not in ("id", "created_at", "status", "failure_reason", "finished_at")
)

Worker = Callable[[str, BacktestCreate, Callable[[Backtest], None]], Awaitable[Backtest]]


class _Job:
    """One job: its public record, its tally (None when a child process counts), and how it is told to stop."""

    __slots__ = ("cancel_requested", "done", "record", "scope", "tally")

    def __init__(self, record: Backtest, tally: Tally | None) -> None:
        self.record = record
        self.tally = tally
        self.cancel_requested = False
        self.done = trio.Event()
        self.scope = trio.CancelScope()  # cancels a child process's run

    def snapshot(self) -> Backtest:
        """The record with the tally so far written in (a copy: the caller may keep it)."""
        if self.tally is not None:
            self.tally.fill(self.record)
        return msgspec.structs.replace(self.record, warnings=list(self.record.warnings))


class Backtests:
    """The backtest jobs of one engine (see the module docstring)."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        sources: ReplaySources,
        settings: BacktestSettings,
        limits: Limits,
        clock: Callable[[], datetime],
        caught_up: Callable[[], Awaitable[None]],
        worker: Worker | None = None,
    ) -> None:
        """``worker``: runs a job in a child process (engine/_backtest_process.py); None: on this thread."""
        self._catalog = catalog
        self._sources = sources
        self._settings = settings
        self._limits = limits
        self._clock = clock
        self._caught_up = caught_up
        self._worker = worker
        self._jobs: dict[str, _Job] = {}  # insertion order is creation order
        self.nursery: trio.Nursery | None = None  # the engine's workers, set when it starts

    async def start(self, program_id: str, request: BacktestCreate) -> Backtest:
        """Check the request and start the run; the job as it begins (``RUNNING``).

        Raises:
            NotFound: no such program. ValidationFailed: the window, a bound or a proposed rule (naming the
            field). BacktestRunning: ``running_max`` runs are going.
        """
        request = validated(request)
        program = self._catalog.program(program_id)
        plan, names, time_max_s = self._plan(program_id, request)
        await self._caught_up()  # every processed event's outcome is on disk, where the replay reads it
        # From here to the job's registration nothing awaits: two starts cannot both pass the bound.
        running = sum(job.record.status == "RUNNING" for job in self._jobs.values())
        if running >= self._settings.running_max:
            raise BacktestRunning(
                f"{running} backtests are running; at most {self._settings.running_max} run at once",
                {"running_max": self._settings.running_max},
            )
        assert self.nursery is not None, "backtests start once the engine has started"
        record = Backtest(
            id=str(uuid.uuid4()),
            program_id=program.id,
            status="RUNNING",
            from_=plan.from_,
            to=plan.to,
            rules_source="current" if request.rules is None else "proposed",
            created_at=self._clock(),
        )
        tally = Tally(program.id, self._sources.world.assets, names) if self._worker is None else None
        job = _Job(record, tally)
        self._jobs[record.id] = job
        self.nursery.start_soon(self._run, job, plan, time_max_s, request)
        return job.snapshot()

    def _plan(self, program_id: str, request: BacktestCreate) -> tuple[ReplayPlan, dict[str, tuple[str, str]], float]:
        settings = self._settings
        program = self._catalog.program(program_id)
        from_ = utc_or_none(request.from_, "from")
        to = utc_or_none(request.to, "to")
        assert from_ is not None
        assert to is not None
        if to <= from_:
            raise ValidationFailed.field("to", "invalid", "to must be after from")
        if to - from_ > timedelta(days=settings.window_days_max):
            raise ValidationFailed.field(
                "to",
                "too_long",
                f"a backtest window is at most {settings.window_days_max} days (backtests.window_days_max)",
            )
        for name, value, bound in (
            ("events_max", request.events_max, settings.events_max),
            ("time_max_s", request.time_max_s, settings.time_max_s),
        ):
            if value is not None and value > bound:
                raise ValidationFailed.field(name, "too_large", f"{name} is at most {bound} (backtests.{name})")
        if request.rules is None:
            rules, names = current_rules(self._catalog, program)
        else:
            assets = self._sources.world.assets
            rules, names = proposed_rules(self._catalog, program, request.rules, self._limits, assets, from_)
        plan = ReplayPlan(
            program=program, from_=from_, to=to, rules=rules, events_max=request.events_max or settings.events_max
        )
        return plan, names, request.time_max_s or settings.time_max_s

    async def _run(self, job: _Job, plan: ReplayPlan, time_max_s: float, request: BacktestCreate) -> None:
        """The run's task: the replay here, or in a child process (``backtests.isolation``), until it ends."""
        record = job.record
        try:
            if self._worker is None:
                await self._run_here(job, plan, time_max_s)
            else:
                await self._run_in_worker(job, plan.program.id, request, time_max_s)
        except Exception as error:  # a bug: the job fails, the engine goes on (the sandbox was never published)
            _log.exception("backtest %s failed", record.id)
            record.status = "FAILED"
            record.failure_reason = f"internal error during the backtest ({type(error).__name__}); it was logged"
        finally:
            if record.status == "RUNNING":  # cancelled from outside (the engine is closing)
                record.status, record.failure_reason = "FAILED", "the engine stopped during the run"
            record.finished_at = self._clock()
            if job.tally is not None:
                job.tally.fill(record)
            job.done.set()
            self._prune()

    async def _run_here(self, job: _Job, plan: ReplayPlan, time_max_s: float) -> None:
        """Replay on the engine's thread, holding it at most ``slice_ms`` at a time."""
        record = job.record
        assert job.tally is not None
        deadline = trio.current_time() + time_max_s
        slice_s, pause_s = self._settings.slice_ms / 1000, self._settings.pause_ms / 1000
        steps = replay(self._sources, plan, record, job.tally)
        try:
            slice_start = time.perf_counter()
            for _ in steps:
                if job.cancel_requested:
                    record.status = "CANCELLED"
                    return
                if trio.current_time() > deadline:
                    record.status = "FAILED"
                    record.failure_reason = f"the run took longer than time_max_s = {time_max_s} s"
                    return
                if time.perf_counter() - slice_start < slice_s:
                    continue
                await trio.sleep(pause_s)  # live events, HTTP and the writer run here
                slice_start = time.perf_counter()
            record.status = "COMPLETED"
        except OverBound as bound:
            record.status, record.failure_reason = "FAILED", str(bound)
        finally:
            steps.close()

    async def _run_in_worker(self, job: _Job, program_id: str, request: BacktestCreate, time_max_s: float) -> None:
        """Run in a child process (engine/_backtest_process.py); a cancel or the time bound kills it."""
        assert self._worker is not None
        record = job.record

        def progress(child: Backtest) -> None:
            for name in _FROM_CHILD:
                setattr(record, name, getattr(child, name))

        child: Backtest | None = None
        with job.scope, trio.move_on_after(time_max_s + WORKER_GRACE_S) as bound:
            try:
                child = await self._worker(program_id, request, progress)
            except WorkerStopped as stopped:
                record.status, record.failure_reason = "FAILED", str(stopped)
                return
        if job.cancel_requested:
            record.status = "CANCELLED"
        elif bound.cancelled_caught or child is None:
            record.status, record.failure_reason = "FAILED", f"the run took longer than time_max_s = {time_max_s} s"
        else:
            record.status, record.failure_reason = child.status, child.failure_reason

    def _prune(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.record.status != "RUNNING"]
        for key in finished[: max(0, len(finished) - self._settings.finished_kept)]:
            del self._jobs[key]

    def _job(self, program_id: str, backtest_id: str) -> _Job:
        self._catalog.program(program_id)
        job = self._jobs.get(backtest_id)
        if job is None or job.record.program_id != program_id:
            raise NotFound("backtest", backtest_id)
        return job

    def get(self, program_id: str, backtest_id: str) -> Backtest:
        """One job, with its report so far. Raises NotFound (no such program, or job of it)."""
        return self._job(program_id, backtest_id).snapshot()

    def cancel(self, program_id: str, backtest_id: str) -> Backtest:
        """Ask a running job to stop at its next chunk (it ends CANCELLED); a finished job is a 409."""
        job = self._job(program_id, backtest_id)
        if job.record.status != "RUNNING":
            raise Conflict(f"the backtest is {job.record.status}; only a RUNNING one can be cancelled")
        job.cancel_requested = True
        job.scope.cancel()
        return job.snapshot()

    async def wait(self, program_id: str, backtest_id: str, timeout_s: float | None = None) -> Backtest:
        """The job once it has finished (or as it stands after ``timeout_s``)."""
        job = self._job(program_id, backtest_id)
        with trio.move_on_after(timeout_s if timeout_s is not None else float("inf")):
            await job.done.wait()
        return job.snapshot()

    async def run(self, program_id: str, request: BacktestCreate) -> Backtest:
        """Start a job and wait for its end (the embedded ``Engine.backtest``)."""
        started = await self.start(program_id, request)
        return await self.wait(program_id, started.id)

    def list(self, program_id: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        """The program's jobs, newest first."""
        self._catalog.program(program_id)
        jobs = [job for job in reversed(self._jobs.values()) if job.record.program_id == program_id]
        if cursor is not None:
            (after,) = decode_cursor(cursor, tuple[str])
            ids = [job.record.id for job in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        chunk = jobs[:limit]
        more = len(jobs) > limit
        next_cursor = encode_cursor((chunk[-1].record.id,)) if more else None
        return Page(data=[job.snapshot() for job in chunk], has_more=more, next_cursor=next_cursor)
