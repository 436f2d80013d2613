"""Benchmark: the embedded engine end to end — events/s, submit → processed latency, memory — against cel-python.

Run ``python -m bench.embedded`` (``--quick`` for a run under 45 s, ``--json`` for machines). What it does:

1. Opens an engine on a temporary directory (``--data-dir`` to choose), fsync ON: durable group commit.
2. Creates one program with a SIMPLE asset (PTS, UNLIMITED) and a LOT asset (CASH, PREFUNDED, wallet funded
   generously), then ``--participants`` participants through one "signup" event each (before any rule exists).
3. Creates 10 rules of mixed kinds (see :data:`RULES`): comparisons, tag membership, a counter threshold, string
   functions, CEL amount expressions like ``round(event.amount * 0.05, 2)``, a ``stop_after_match`` chain.
4. Measures, on realistic events (type, amount, mcc, sku, channel, store...) spread uniformly over the
   participants, every submit awaited for durability and many in flight, in two ways:

   - ``submit``: ``--concurrency`` tasks, each awaiting ``engine.submit(one event)`` in a loop;
   - ``batch``: ``--batch-tasks`` tasks, each awaiting ``engine.submit_batch(--batch-size events)`` in a loop.

   Throughput is events / (first submit → last outcome durable). Latency is per event, from just before its
   submit to the engine's ``on_event_processed`` hook (the outcome is durable).
5. ``--baseline celpy`` (default) runs the identical workload with ``EngineSettings(cel_backend="celpy")`` —
   cel-python's interpreted runner with ``json_to_cel`` per evaluation — on fewer events (it is ~100× slower),
   and reports the ratio. Each engine runs in its own child process so memory figures are not mixed.
6. With ``--rate R`` (events/s) it instead paces single submits at R and reports the latency at that load;
   ``--half-rate`` runs the ``submit`` phase first and then paces at half the rate it measured.
7. ``--mechanics`` (alias ``--budgets``) also runs the same workload with the program mechanics of issue 13 on:
   two of the rules budgeted (:data:`BUDGETED_RULES`: a lifetime PTS budget and a 30-day CASH budget, limits far
   above what the run issues, so nothing is skipped) and one tier definition (:func:`create_tier`: three levels
   on the visits counter, a calendar-year lifecycle with DROP_ONE and EXCESS rollover, so auto-qualification runs
   after every event), in its own child process right after the plain run, and reports both side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from bench._common import (
    LatencyRecorder,
    Progress,
    bench_config,
    peak_rss_mb,
    percentile_ms,
    rss_breakdown_mb,
    tune_gc,
)
from scrip_actor import (
    AssetCreate,
    BudgetSpec,
    CounterAction,
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    Overloaded,
    ProgramCreate,
    RuleCreate,
    ScripError,
    TagAction,
    open_engine,
)
from scrip_actor.tiers import (
    CounterRollover,
    Criterion,
    DowngradePolicy,
    LevelSpec,
    Lifecycle,
    Qualification,
    QualificationPeriod,
    Retention,
    TierCreate,
)

# name -> (condition, actions builder(pts_id, cash_id), stop_after_match). Literals are doubles so cel-python,
# which refuses some int/double mixes (DESIGN.md §4), gives the same outcomes as our compiler.
RULES: list[tuple[str, str, Callable[[str, str], list[Any]], bool]] = [
    (
        "base points (CEL amount)",
        "event.type == 'purchase' && event.amount >= 10.0",
        lambda pts, cash: [CreditAction(asset_id=pts, amount="round(event.amount * 0.05, 2)")],
        False,
    ),
    (
        "visit counter",
        "event.type == 'purchase' || event.type == 'visit'",
        lambda pts, cash: [CounterAction(key="visits", value="1")],
        False,
    ),
    (
        "regular tier (counter threshold)",
        "get(participant.counters, 'visits', 0.0) >= 5.0 && !('regular' in participant.tags)",
        lambda pts, cash: [TagAction(tag="regular")],
        False,
    ),
    (
        "regular bonus (tag membership)",
        "'regular' in participant.tags && event.type == 'purchase'",
        lambda pts, cash: [CreditAction(asset_id=pts, amount="1")],
        False,
    ),
    (
        "grocery cashback (LOT, prefunded)",
        "event.type == 'purchase' && event.mcc in ['5411', '5422', '5499'] && event.amount >= 50.0",
        lambda pts, cash: [CreditAction(asset_id=cash, amount="round(event.amount * 0.01, 2)", expires_at="90d")],
        False,
    ),
    (
        "eco in app (string functions)",
        "event.type == 'purchase' && event.sku.startsWith('ECO-') && event.channel.endsWith('app')",
        lambda pts, cash: [CreditAction(asset_id=pts, amount="2")],
        False,
    ),
    (
        "review",
        "event.type == 'review' && size(event.text) >= 40",
        lambda pts, cash: [CreditAction(asset_id=pts, amount="3"), TagAction(tag="reviewer")],
        False,
    ),
    (
        "big basket (stops the chain)",
        "event.type == 'purchase' && event.amount >= 250.0",
        lambda pts, cash: [CreditAction(asset_id=cash, amount="2", expires_at="90d")],
        True,
    ),
    (
        "medium basket (chain tail)",
        "event.type == 'purchase' && event.amount >= 100.0",
        lambda pts, cash: [CreditAction(asset_id=cash, amount="0.50", expires_at="90d")],
        False,
    ),
    (
        "refund clawback (sets)",
        "event.type == 'refund' && sets.intersects(participant.tags, ['regular', 'reviewer'])",
        lambda pts, cash: [DebitAction(asset_id=pts, amount="round(event.amount * 0.05, 2)", allow_negative=True)],
        False,
    ),
]

# --budgets: rule name -> the budget it gets (asset "pts" or "cash", schedule). Limits are far above what a run
# issues (a 200k-event run credits some 10^6 points), so no match is skipped and the figures compare like for like.
BUDGETED_RULES: dict[str, tuple[str, dict[str, str]]] = {
    "base points (CEL amount)": ("pts", {}),
    "grocery cashback (LOT, prefunded)": ("cash", {"schedule_type": "INTERVAL", "interval": "720h"}),
}
_BUDGET_LIMIT = "100000000000"

_MCCS = ["5411", "5422", "5499", "5812", "5999", "5311", "4111"]
_SKU_LINES = ["ECO", "STD", "LUX"]
_CHANNELS = ["app", "web", "store", "partner-app"]
_WORDS = "great fast friendly fresh value staff clean queue price quality".split()


@dataclass(frozen=True)
class Workload:
    """Everything one run depends on; sent to the child process as JSON."""

    participants: int = 100_000
    events: int = 200_000
    concurrency: int = 1000
    batch_size: int = 500
    batch_tasks: int = 8
    modes: tuple[str, ...] = ("submit", "batch")
    cel_backend: str = "compiled"
    sync: bool = True
    rate_per_s: float | None = None
    half_rate: bool = False
    data_dir: str | None = None
    seed: int = 42
    tune_gc: bool = True
    mechanics: bool = False  # two of the rules budgeted (BUDGETED_RULES) and a tier definition (create_tier)
    extra: dict[str, Any] = field(default_factory=dict)


def external_id(number: int) -> str:
    """The external id of participant ``number``."""
    return f"member-{number:07d}"


def make_event_data(rng: random.Random) -> dict[str, Any]:
    """One realistic event payload (~150 bytes of JSON): mostly purchases, some visits, reviews and refunds."""
    roll = rng.random()
    amount = round(min(2000.0, rng.lognormvariate(3.6, 1.0)), 2)
    if roll < 0.80:
        return {
            "type": "purchase",
            "amount": amount,
            "currency": "EUR",
            "mcc": rng.choice(_MCCS),
            "sku": f"{rng.choice(_SKU_LINES)}-{rng.randrange(10_000):04d}",
            "channel": rng.choice(_CHANNELS),
            "store": f"store-{rng.randrange(300):03d}",
            "items": rng.randrange(1, 12),
        }
    if roll < 0.88:
        return {"type": "visit", "channel": rng.choice(_CHANNELS), "store": f"store-{rng.randrange(300):03d}"}
    if roll < 0.96:
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(2, 14)))
        return {"type": "review", "rating": float(rng.randrange(1, 6)), "text": text, "channel": rng.choice(_CHANNELS)}
    return {
        "type": "refund",
        "amount": amount,
        "currency": "EUR",
        "sku": f"STD-{rng.randrange(10_000):04d}",
        "channel": rng.choice(_CHANNELS),
    }


def make_events(program_id: str, participants: int, count: int, *, seed: int, key_prefix: str) -> list[EventSubmit]:
    """``count`` events over participants chosen uniformly at random; idempotency keys ``{key_prefix}-{n}``."""
    rng = random.Random(f"{seed}/{key_prefix}")
    return [
        EventSubmit(
            program_id=program_id,
            external_id=external_id(rng.randrange(participants)),
            idempotency_key=f"{key_prefix}-{number}",
            event_data=make_event_data(rng),
        )
        for number in range(count)
    ]


async def create_program(engine: Engine) -> tuple[str, str, str]:
    """The program, its SIMPLE asset and its funded LOT asset: ``(program_id, pts_id, cash_id)``. No rules yet."""
    program = await engine.create_program(ProgramCreate(name="Bench rewards"))
    pts = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol="PTS",
            inventory_mode="SIMPLE",
            issuance_policy="UNLIMITED",
            scale=2,
        )
    )
    cash = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Cashback",
            symbol="CASH",
            inventory_mode="LOT",
            issuance_policy="PREFUNDED",
            scale=2,
        )
    )
    await engine.fund(program.id, cash.id, "1000000000", "benchmark funding")
    return program.id, pts.id, cash.id


async def create_rules(engine: Engine, program_id: str, pts_id: str, cash_id: str, *, budgets: bool = False) -> None:
    """The 10 rules of :data:`RULES`, in order; with ``budgets``, those of :data:`BUDGETED_RULES` budgeted."""
    assets = {"pts": pts_id, "cash": cash_id}
    for order, (name, condition, actions, stop) in enumerate(RULES, start=1):
        budgeted = BUDGETED_RULES.get(name) if budgets else None
        specs = (
            [BudgetSpec(asset_id=assets[budgeted[0]], limit=_BUDGET_LIMIT, **budgeted[1])]  # type: ignore[arg-type]
            if budgeted
            else []
        )
        await engine.create_rule(
            RuleCreate(
                program_id=program_id,
                name=name,
                condition=condition,
                actions=actions(pts_id, cash_id),
                order=order,
                stop_after_match=stop,
                budgets=specs,
            )
        )


async def create_tier(engine: Engine, program_id: str) -> None:
    """``--mechanics``: a "status" tier of three levels on the ``visits`` counter (which most events bump), kept
    per calendar year with DROP_ONE and EXCESS rollover: auto-qualification runs after every event's rules."""
    levels = [
        LevelSpec(
            key=key,
            rank=rank,
            qualification=Qualification(criteria=[Criterion(counter="visits", operator=">=", threshold=threshold)]),
        )
        for key, rank, threshold in (("silver", 1, 5), ("gold", 2, 20), ("platinum", 3, 60))
    ]
    lifecycle = Lifecycle(
        retention=Retention(mode="PERIOD_BASED"),
        qualification_period=QualificationPeriod(type="CALENDAR_YEAR"),
        downgrade_policy=DowngradePolicy(mode="DROP_ONE"),
        counters=CounterRollover(rollover="EXCESS", qualifying=["visits"]),
    )
    await engine.tiers.create(program_id, TierCreate(key="status", levels=levels, lifecycle=lifecycle))


async def sign_up(engine: Engine, program_id: str, participants: int, *, chunk: int = 1000, tasks: int = 4) -> None:
    """Create ``participants`` participants through one signup event each (batched), and wait until processed."""
    requests = [
        EventSubmit(
            program_id=program_id,
            external_id=external_id(number),
            idempotency_key=f"signup-{number}",
            event_data={"type": "signup", "channel": "web"},
        )
        for number in range(participants)
    ]
    await submit_in_batches(engine, requests, chunk, tasks, LatencyRecorder())
    await engine.wait_idle()


async def submit_one_by_one(
    engine: Engine, requests: list[EventSubmit], concurrency: int, recorder: LatencyRecorder
) -> int:
    """``concurrency`` tasks, each awaiting ``submit`` of the next event until none are left. Returns Overloaded retries."""
    pending = iter(requests)
    retries = 0

    async def submitter() -> None:
        nonlocal retries
        for request in pending:
            recorder.start(request.idempotency_key)
            while True:
                try:
                    await engine.submit(request)
                    break
                except Overloaded:
                    retries += 1
                    await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(submitter)
    return retries


async def submit_in_batches(
    engine: Engine, requests: list[EventSubmit], batch_size: int, tasks: int, recorder: LatencyRecorder
) -> int:
    """``tasks`` tasks, each awaiting ``submit_batch`` of the next ``batch_size`` events. Returns Overloaded retries."""
    chunks = iter([requests[start : start + batch_size] for start in range(0, len(requests), batch_size)])
    retries = 0

    async def submitter() -> None:
        nonlocal retries
        for chunk in chunks:
            while chunk:
                for request in chunk:
                    recorder.start(request.idempotency_key)
                results = await engine.submit_batch(chunk)
                rejected = [
                    request for request, result in zip(chunk, results, strict=True) if isinstance(result, Overloaded)
                ]
                other = [
                    result
                    for result in results
                    if isinstance(result, ScripError) and not isinstance(result, Overloaded)
                ]
                assert not other, f"benchmark events rejected: {other[:3]}"
                retries += len(rejected)
                chunk = rejected
                if rejected:
                    await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(submitter)
    return retries


async def submit_paced(
    engine: Engine, requests: list[EventSubmit], rate_per_s: float, recorder: LatencyRecorder
) -> int:
    """Single submits started at ``rate_per_s`` (each in its own task, so a slow one never delays the next)."""
    retries = 0

    async def submit(request: EventSubmit) -> None:
        nonlocal retries
        recorder.start(request.idempotency_key)
        while True:
            try:
                await engine.submit(request)
                return
            except Overloaded:
                retries += 1
                await trio.sleep(0.001)

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for number, request in enumerate(requests):
            due = started + number / rate_per_s
            if due - trio.current_time() > 0.0005:
                await trio.sleep_until(due)
            nursery.start_soon(submit, request)
    return retries


async def measure_phase(
    engine: Engine,
    label: str,
    requests: list[EventSubmit],
    workload: Workload,
    recorder: LatencyRecorder,
    mode: str,
    rate_per_s: float | None = None,
) -> dict[str, Any]:
    """Run one way of submitting over ``requests`` until every outcome is durable; return its figures."""
    recorder.reset()
    before = engine.statistics()
    started_s = time.perf_counter()
    async with Progress(label, len(requests), lambda: recorder.processed):
        if mode == "submit":
            retries = await submit_one_by_one(engine, requests, workload.concurrency, recorder)
        elif mode == "batch":
            retries = await submit_in_batches(engine, requests, workload.batch_size, workload.batch_tasks, recorder)
        else:
            assert rate_per_s is not None
            retries = await submit_paced(engine, requests, rate_per_s, recorder)
        await engine.wait_idle()
    elapsed_s = time.perf_counter() - started_s
    after = engine.statistics()
    commits = after.writer_commits - before.writer_commits
    return {
        "mode": mode,
        "events": len(requests),
        "elapsed_s": round(elapsed_s, 3),
        "events_per_s": round(len(requests) / elapsed_s, 1),
        "target_rate_per_s": rate_per_s,
        "p50_ms": _rounded(percentile_ms(recorder.latencies_s, 0.50)),
        "p99_ms": _rounded(percentile_ms(recorder.latencies_s, 0.99)),
        "max_ms": _rounded(percentile_ms(recorder.latencies_s, 1.0)),
        "latency_samples": len(recorder.latencies_s),
        "events_failed": after.events_failed - before.events_failed,
        "overloaded_retries": retries,
        "writer_commits": commits,
        "commit_batch_records_mean": round(
            (after.writer_records_durable - before.writer_records_durable) / max(1, commits), 1
        ),
        "writer_batch_records_peak": after.writer_batch_records_peak,
        "events_inflight_peak": after.events_inflight_peak,
        "actors_live_peak": after.actors.actors_live_peak,
        "mailbox_depth_peak": after.actors.mailbox_depth_peak,
        "participants_cached": after.participants_cached,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class PreparedEngine:
    """An open benchmark engine with its program, participants and rules in place (see :func:`prepared_engine`)."""

    engine: Engine
    recorder: LatencyRecorder
    program_id: str
    signup_s: float


@asynccontextmanager
async def prepared_engine(workload: Workload) -> AsyncIterator[PreparedEngine]:
    """Open an engine for ``workload`` and set it up (program, assets, signups, the 10 rules, GC tuning if asked).

    Everything :func:`run_workload` does before its measured phases; other benchmarks (``bench.plot``) reuse it to
    run their own phases on the same set-up. The store lives in a temporary directory unless ``data_dir`` is set.
    """
    label = "celpy" if workload.cel_backend == "celpy" else "engine"
    with tempfile.TemporaryDirectory(prefix="scrip-bench-") as scratch:
        data_dir = Path(workload.data_dir or scratch) / f"embedded-{label}"
        config = bench_config(data_dir, cel_backend=workload.cel_backend, sync=workload.sync)
        async with open_engine(config=config) as engine:
            recorder = LatencyRecorder()
            recorder.attach(engine)
            program_id, pts_id, cash_id = await create_program(engine)
            setup_started_s = time.perf_counter()
            await sign_up(engine, program_id, workload.participants)
            signup_s = time.perf_counter() - setup_started_s
            await create_rules(engine, program_id, pts_id, cash_id, budgets=workload.mechanics)
            if workload.mechanics:
                await create_tier(engine, program_id)
            if workload.tune_gc:
                tune_gc()
            yield PreparedEngine(engine, recorder, program_id, signup_s)


async def run_workload(workload: Workload) -> dict[str, Any]:
    """Set up one engine and run every phase ``workload`` asks for; the figures as a JSON-ready dict."""
    label = "celpy" if workload.cel_backend == "celpy" else "engine"
    async with prepared_engine(workload) as prepared:
        engine = prepared.engine
        phases = await _run_phases(engine, prepared.program_id, workload, prepared.recorder, label)
        statistics = engine.statistics()
        breakdown = rss_breakdown_mb()
        report = await engine.verify() if workload.extra.get("verify") else None
    return {
        "cel_backend": workload.cel_backend,
        "mechanics": workload.mechanics,
        "participants": workload.participants,
        "signup_events_per_s": round(workload.participants / prepared.signup_s, 1),
        "phases": phases,
        "rss_peak_mb": round(peak_rss_mb(), 1),
        "rss_anon_mb": breakdown.get("anon"),
        "rss_file_mb": breakdown.get("file"),
        "participants_cached": statistics.participants_cached,
        "actors_live": statistics.actors.actors_live,
        "actors_live_peak": statistics.actors.actors_live_peak,
        "writer_commits": statistics.writer_commits,
        "writer_batch_records_peak": statistics.writer_batch_records_peak,
        "verify_ok": None if report is None else report.ok,
    }


async def _run_phases(
    engine: Engine, program_id: str, workload: Workload, recorder: LatencyRecorder, label: str
) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    measured_rate: float | None = None
    for mode in workload.modes:
        requests = make_events(program_id, workload.participants, workload.events, seed=workload.seed, key_prefix=mode)
        phases[mode] = await measure_phase(engine, f"{label}/{mode}", requests, workload, recorder, mode)
        if mode == "submit":
            measured_rate = phases[mode]["events_per_s"]
    rate_per_s = workload.rate_per_s
    if rate_per_s is None and workload.half_rate and measured_rate:
        rate_per_s = measured_rate / 2
    if rate_per_s:
        count = min(workload.events, max(1000, int(rate_per_s * 10)))  # about 10 s of paced traffic
        requests = make_events(program_id, workload.participants, count, seed=workload.seed, key_prefix="paced")
        phases["paced"] = await measure_phase(
            engine, f"{label}/paced", requests, workload, recorder, "paced", rate_per_s
        )
    return phases


def run_in_child(workload: Workload) -> dict[str, Any]:
    """Run :func:`run_workload` in a fresh interpreter (own heap, own GC state, own cel-python parser)."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.embedded", "--worker", json.dumps(asdict(workload))],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def summarize(engine: dict[str, Any], baseline: dict[str, Any] | None, headline_mode: str) -> dict[str, Any]:
    """The headline figures (``events_per_s``, ``ratio``, ...) from one engine run and its baseline run."""
    phase = engine["phases"].get(headline_mode) or next(iter(engine["phases"].values()))
    baseline_phase = (baseline or {}).get("phases", {}).get(phase["mode"])
    baseline_rate = baseline_phase["events_per_s"] if baseline_phase else None
    summary: dict[str, Any] = {
        "events_per_s": phase["events_per_s"],
        "baseline_events_per_s": baseline_rate,
        "ratio": round(phase["events_per_s"] / baseline_rate, 1) if baseline_rate else None,
        "p50_ms": phase["p50_ms"],
        "p99_ms": phase["p99_ms"],
        "rss_mb": engine["rss_peak_mb"],
        "rss_anon_mb_at_end": engine["rss_anon_mb"],
        "rss_file_mb_at_end": engine["rss_file_mb"],
        "headline_mode": phase["mode"],
    }
    for mode, figures in engine["phases"].items():
        summary[f"{mode}_events_per_s"] = figures["events_per_s"]
        summary[f"{mode}_p99_ms"] = figures["p99_ms"]
        base = (baseline or {}).get("phases", {}).get(mode)
        if base:
            summary[f"{mode}_ratio"] = round(figures["events_per_s"] / base["events_per_s"], 1)
    summary.update(
        live_actors=engine["actors_live"],
        live_actors_peak=engine["actors_live_peak"],
        participants_cached=engine["participants_cached"],
        writer_commits=engine["writer_commits"],
        writer_batch_records_peak=engine["writer_batch_records_peak"],
        python=platform.python_version(),
        engine=engine,
        baseline=baseline,
    )
    return summary


def print_report(summary: dict[str, Any]) -> None:
    """A human-readable table of every phase, engine and baseline side by side."""
    print(f"scrip-actor embedded benchmark (Python {summary['python']}, {platform.machine()})")
    header = f"{'run':<8} {'mode':<7} {'events':>8} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'commits':>8} {'rec/commit':>10} {'failed':>7}"
    print(header)
    print("-" * len(header))
    for name in ("engine", "mechanics", "baseline"):
        result = summary.get(name)
        for mode, phase in (result or {}).get("phases", {}).items():
            run = "mechanic" if name == "mechanics" else result["cel_backend"]  # type: ignore[index]
            print(
                f"{run:<8} {mode:<7} {phase['events']:>8} {phase['events_per_s']:>10,.0f}"  # type: ignore[index]
                f" {phase['p50_ms'] or 0:>8.2f} {phase['p99_ms'] or 0:>8.2f} {phase['writer_commits']:>8}"
                f" {phase['commit_batch_records_mean']:>10} {phase['events_failed']:>7}"
            )
    print(
        f"\nheadline ({summary['headline_mode']}): {summary['events_per_s']:,.0f} events/s, "
        f"baseline {summary['baseline_events_per_s'] or 0:,.0f} events/s, ratio {summary['ratio']}x; "
        f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms; peak RSS {summary['rss_mb']} MB; "
        f"live actors {summary['live_actors']} (peak {summary['live_actors_peak']}), "
        f"cached participants {summary['participants_cached']}, commit batch peak {summary['writer_batch_records_peak']} records"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 45 s) that still measures the baseline")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--participants", type=int, help="participants (default 100000; quick 10000)")
    parser.add_argument("--events", type=int, help="events per phase (default 200000; quick 10000)")
    parser.add_argument("--concurrency", type=int, default=1000, help="concurrent submit tasks (mode submit)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per submit_batch call (mode batch)")
    parser.add_argument("--batch-tasks", type=int, default=8, help="concurrent submit_batch tasks (mode batch)")
    parser.add_argument("--modes", default="submit,batch", help="comma-separated phases: submit, batch")
    parser.add_argument("--headline", default="batch", help="which mode's figures are the headline")
    parser.add_argument("--baseline", choices=["celpy", "none"], default="celpy")
    parser.add_argument("--baseline-events", type=int, help="events per baseline phase (default 3000; quick 400)")
    parser.add_argument("--rate", type=float, help="also pace single submits at this many events/s")
    parser.add_argument("--half-rate", action="store_true", help="also pace at half the measured submit rate")
    parser.add_argument("--data-dir", help="where the stores go (default: a temporary directory)")
    parser.add_argument("--no-sync", action="store_true", help="no fsync (LMDB still commits every transaction)")
    parser.add_argument("--verify", action="store_true", help="run verify() on the store after the run")
    parser.add_argument(
        "--mechanics",
        "--budgets",
        action="store_true",
        help="also run with two rules budgeted and a tier definition (same invocation)",
    )
    parser.add_argument("--in-process", action="store_true", help="no child processes (tests)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def workloads(arguments: argparse.Namespace) -> tuple[Workload, Workload | None]:
    """The engine's workload and the baseline's (same but fewer events and no paced phase), from the options."""
    quick = arguments.quick
    engine = Workload(
        participants=arguments.participants or (10_000 if quick else 100_000),
        events=arguments.events or (10_000 if quick else 200_000),
        concurrency=arguments.concurrency,
        batch_size=arguments.batch_size,
        batch_tasks=arguments.batch_tasks,
        modes=tuple(mode for mode in arguments.modes.split(",") if mode),
        sync=not arguments.no_sync,
        rate_per_s=arguments.rate,
        half_rate=arguments.half_rate,
        data_dir=arguments.data_dir,
        extra={"verify": arguments.verify},
    )
    if arguments.baseline == "none":
        return engine, None
    baseline_events = arguments.baseline_events or (400 if quick else 3000)
    baseline = replace(
        engine, cel_backend="celpy", events=min(engine.events, baseline_events), rate_per_s=None, half_rate=False
    )
    return engine, baseline


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Parse options, run the engine and baseline workloads, print; returns the summary (None for a worker)."""
    arguments = _parser().parse_args(argv)
    if arguments.worker:
        fields = json.loads(arguments.worker)
        fields["modes"] = tuple(fields["modes"])
        print(json.dumps(trio.run(run_workload, Workload(**fields))))
        return None
    engine_workload, baseline_workload = workloads(arguments)

    def run(workload: Workload) -> dict[str, Any]:
        if arguments.in_process:
            return trio.run(run_workload, replace(workload, tune_gc=False))
        return run_in_child(workload)

    engine = run(engine_workload)
    mechanics = run(replace(engine_workload, mechanics=True)) if arguments.mechanics else None
    baseline = run(baseline_workload) if baseline_workload is not None else None
    summary = summarize(engine, baseline, arguments.headline)
    if mechanics is not None:
        summary["mechanics"] = mechanics
        for mode, figures in mechanics["phases"].items():
            summary[f"mechanics_{mode}_events_per_s"] = figures["events_per_s"]
            summary[f"mechanics_{mode}_p99_ms"] = figures["p99_ms"]
    summary["command"] = "python -m bench.embedded " + " ".join(argv if argv is not None else sys.argv[1:])
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)
    return summary


if __name__ == "__main__":
    main()
