"""Benchmark: balance operations (adjust, hold, release, redeem; embedded also reversals) per second and
their latency, embedded and over HTTP.

Run ``python -m bench.operations`` (``--quick`` for a run under a minute, ``--json`` for machines). An operation
is synchronous: it runs in the participant's mailbox, in turn with its events, and answers only once its journal
entry is durable (group commit, fsync ON as in ``bench.embedded``). What it measures, for a SIMPLE asset (PTS,
UNLIMITED) and a LOT asset (CASH, PREFUNDED, wallet funded generously), one phase each:

- ``embedded``: ``--concurrency`` trio tasks; each takes the next *cycle* and runs, on participant
  ``cycle % participants``, ``adjust_balance`` CREDIT 10.00, ``balance_operation("HOLD")`` 4.00 under the
  reference ``{phase}-{cycle}``, ``balance_operation("RELEASE")`` 4.00 of that reference, then
  ``redemptions.create`` of 1.00, each awaited, each with its own idempotency key. Cycles are handed out in order and ``concurrency < participants``, so two
  tasks seldom work on one participant at once. Rate is operations / (first call → last answer); latency is
  per call, from just before it to its answer (p50/p99 over all four kinds, and per kind). Then one redemption
  of 2.00 and a partial reversal of 0.50 per cycle, for the reversal rate.
- ``http``: ``scrip serve`` in a subprocess on loopback with fsync ON (as ``bench.http`` starts it), the same
  cycles as ``POST /v1/participants/{id}/balances/adjust|hold|release`` and ``…/redemptions`` from ``wrk``
  (Debian's package), one connection per wrk thread so that a Lua state machine can keep each connection's
  credit → hold → release → redeem in order; without wrk, or with ``--loader python``, from httpx clients in this process. Each phase lasts
  ``--duration-s``; only 2xx answers count towards the rate, others are reported.

A cycle leaves 5.00 more available and nothing held, which ``--verify``
(the engine's own check of the store) and the HTTP phase's zero non-2xx answers confirm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from bench._common import bench_config, peak_rss_mb, percentile_ms, tune_gc
from bench.embedded import create_program, external_id
from bench.http import API_KEY, Phase, _process
from scrip_actor import (
    BalanceAdjust,
    BalanceOperation,
    Engine,
    ParticipantCreate,
    RedemptionCreate,
    ReversalCreate,
    open_engine,
)

CREDIT_AMOUNT = "10.00"
HOLD_AMOUNT = "4.00"
REDEEM_AMOUNT = "1.00"
OPERATIONS = ("adjust", "hold", "release", "redeem")  # one cycle, in this order
ASSETS = ("simple", "lot")


@dataclass(frozen=True)
class Settings:
    """One run's knobs (see ``--help``)."""

    participants: int = 20_000
    cycles: int = 40_000
    concurrency: int = 64
    http_participants: int = 5_000
    http_connections: int = 32
    duration_s: float = 15.0
    loader: str = "auto"
    modes: tuple[str, ...] = ("embedded", "http")
    sync: bool = True
    verify: bool = False
    tune_gc: bool = True


@dataclass(frozen=True)
class Cycle:
    """The four requests of one cycle on one participant, with their idempotency keys."""

    adjust: BalanceAdjust
    hold: BalanceOperation
    release: BalanceOperation
    redeem: RedemptionCreate


def make_cycle(program_id: str, asset_id: str, prefix: str, number: int) -> Cycle:
    """Cycle ``number``: CREDIT 10.00, HOLD 4.00 under reference ``{prefix}-{number}``, RELEASE those 4.00,
    then a redemption of 1.00 (so every participant's balance grows by 9.00 a cycle and nothing is refused).

    RELEASE names its amount: on a SIMPLE asset a reference only labels the entry, so an unbounded release would
    also take what a concurrent cycle on the same participant holds.
    """
    reference = f"{prefix}-{number}"
    common = {"program_id": program_id, "asset_id": asset_id}
    return Cycle(
        adjust=BalanceAdjust(
            **common,
            type="CREDIT",
            amount=CREDIT_AMOUNT,
            description="bench credit",
            idempotency_key=f"{reference}-adjust",
        ),
        hold=BalanceOperation(
            **common,
            amount=HOLD_AMOUNT,
            reference_id=reference,
            description="bench hold",
            idempotency_key=f"{reference}-hold",
        ),
        release=BalanceOperation(
            **common,
            amount=HOLD_AMOUNT,
            reference_id=reference,
            description="bench release",
            idempotency_key=f"{reference}-release",
        ),
        redeem=RedemptionCreate(
            **common, amount=REDEEM_AMOUNT, description="bench redemption", idempotency_key=f"{reference}-redeem"
        ),
    )


def latency_figures(latencies_s: dict[str, list[float]]) -> dict[str, float | None]:
    """p50/p99/max over every operation, and p50/p99 per kind, in ms."""
    every = [sample for samples in latencies_s.values() for sample in samples]
    figures = {
        "p50_ms": _rounded(percentile_ms(every, 0.50)),
        "p99_ms": _rounded(percentile_ms(every, 0.99)),
        "max_ms": _rounded(percentile_ms(every, 1.0)),
    }
    for kind, samples in latencies_s.items():
        figures[f"{kind}_p50_ms"] = _rounded(percentile_ms(samples, 0.50))
        figures[f"{kind}_p99_ms"] = _rounded(percentile_ms(samples, 0.99))
    return figures


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run_concurrently(count: int, tasks: int, work: Callable[[int], Awaitable[None]]) -> None:
    """Call ``work(0)`` … ``work(count - 1)`` from ``tasks`` tasks, each taking the next number when done."""
    numbers = iter(range(count))

    async def worker() -> None:
        for number in numbers:
            await work(number)

    async with trio.open_nursery() as nursery:
        for _ in range(min(tasks, count)):
            nursery.start_soon(worker)


# --- embedded -----------------------------------------------------------------------------------------------


async def create_participants(engine: Engine, program_id: str, count: int, *, tasks: int = 64) -> list[str]:
    """``count`` participants enrolled in the program (concurrent upserts share group commits); their ids."""
    ids = [""] * count

    async def create(number: int) -> None:
        participant, _ = await engine.create_participant(
            ParticipantCreate(external_id=external_id(number), program_id=program_id)
        )
        ids[number] = participant.id

    await run_concurrently(count, tasks, create)
    return ids


async def measure_embedded_phase(
    engine: Engine, program_id: str, asset_id: str, participant_ids: list[str], settings: Settings, name: str
) -> dict[str, Any]:
    """Run ``settings.cycles`` cycles on ``asset_id`` from ``settings.concurrency`` tasks; the phase's figures."""
    latencies_s: dict[str, list[float]] = {kind: [] for kind in OPERATIONS}

    async def timed(kind: str, call: Awaitable[Any]) -> None:
        started_s = time.perf_counter()
        await call
        latencies_s[kind].append(time.perf_counter() - started_s)

    async def cycle(number: int) -> None:
        requests = make_cycle(program_id, asset_id, name, number)
        participant_id = participant_ids[number % len(participant_ids)]
        await timed("adjust", engine.adjust_balance(participant_id, requests.adjust))
        await timed("hold", engine.balance_operation("HOLD", participant_id, requests.hold))
        await timed("release", engine.balance_operation("RELEASE", participant_id, requests.release))
        await timed("redeem", engine.redemptions.create(participant_id, requests.redeem))

    before = engine.statistics()
    started_s = time.perf_counter()
    await run_concurrently(settings.cycles, settings.concurrency, cycle)
    elapsed_s = time.perf_counter() - started_s
    after = engine.statistics()
    operations = settings.cycles * len(OPERATIONS)
    commits = after.writer_commits - before.writer_commits
    return {
        "asset": name,
        "cycles": settings.cycles,
        "operations": operations,
        "elapsed_s": round(elapsed_s, 3),
        "operations_per_s": round(operations / elapsed_s, 1),
        **latency_figures(latencies_s),
        "journal_entries": after.journal_sequence - before.journal_sequence,
        "writer_commits": commits,
        "commit_batch_records_mean": round(
            (after.writer_records_durable - before.writer_records_durable) / max(1, commits), 1
        ),
        "writer_commit_seconds": round(after.writer_commit_seconds_total - before.writer_commit_seconds_total, 3),
    }


async def measure_redemptions(
    engine: Engine, program_id: str, asset_id: str, participant_ids: list[str], settings: Settings, name: str
) -> dict[str, Any]:
    """``settings.cycles`` redemptions of 2.00 (each with its key), then a partial reversal of 0.50 of each, from
    ``settings.concurrency`` tasks: redemptions and reversals per second and their latency (after the cycles
    above, so every participant has the value to spend)."""
    latencies_s: dict[str, list[float]] = {"redeem": [], "reverse": []}
    redemption_ids: list[str] = [""] * settings.cycles

    async def redeem(number: int) -> None:
        request = RedemptionCreate(
            program_id=program_id,
            asset_id=asset_id,
            amount="2.00",
            description="bench",
            idempotency_key=f"{name}-r{number}",
        )
        started_s = time.perf_counter()
        redemption, _ = await engine.redemptions.create(participant_ids[number % len(participant_ids)], request)
        latencies_s["redeem"].append(time.perf_counter() - started_s)
        redemption_ids[number] = redemption.id

    async def reverse(number: int) -> None:
        started_s = time.perf_counter()
        await engine.redemptions.reverse(redemption_ids[number], ReversalCreate(reason="bench", amount="0.50"))
        latencies_s["reverse"].append(time.perf_counter() - started_s)

    started_s = time.perf_counter()
    await run_concurrently(settings.cycles, settings.concurrency, redeem)
    redeemed_s = time.perf_counter()
    await run_concurrently(settings.cycles, settings.concurrency, reverse)
    reversed_s = time.perf_counter()
    return {
        "asset": name,
        "redemptions_per_s": round(settings.cycles / (redeemed_s - started_s), 1),
        "reversals_per_s": round(settings.cycles / (reversed_s - redeemed_s), 1),
        **latency_figures(latencies_s),
    }


async def run_embedded(settings: Settings) -> dict[str, Any]:
    """One engine on a temporary directory: program, assets, participants, then one phase per asset."""
    with tempfile.TemporaryDirectory(prefix="scrip-bench-operations-") as scratch:
        async with open_engine(config=bench_config(Path(scratch) / "data", sync=settings.sync)) as engine:
            program_id, pts_id, cash_id = await create_program(engine)
            setup_started_s = time.perf_counter()
            participant_ids = await create_participants(engine, program_id, settings.participants)
            setup_s = time.perf_counter() - setup_started_s
            if settings.tune_gc:
                tune_gc()
            phases = {
                name: await measure_embedded_phase(engine, program_id, asset_id, participant_ids, settings, name)
                for name, asset_id in zip(ASSETS, (pts_id, cash_id), strict=True)
            }
            redemptions = {
                name: await measure_redemptions(engine, program_id, asset_id, participant_ids, settings, name)
                for name, asset_id in zip(ASSETS, (pts_id, cash_id), strict=True)
            }
            report = await engine.verify() if settings.verify else None
    return {
        "participants": settings.participants,
        "concurrency": settings.concurrency,
        "participants_created_per_s": round(settings.participants / setup_s, 1),
        "phases": phases,
        "redemptions": redemptions,
        "rss_peak_mb": round(peak_rss_mb(), 1),
        "verify_ok": None if report is None else report.ok,
    }


# --- over HTTP ----------------------------------------------------------------------------------------------


async def setup_over_http(client: httpx.AsyncClient, participants: int) -> tuple[str, dict[str, str], list[str]]:
    """Program, the two assets (CASH funded) and ``participants`` participants: ``(program, assets, ids)``."""

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    program = (await post("/v1/programs", {"name": "Bench operations"}))["id"]
    asset = {"program_id": program, "scale": 2}
    pts = await post(
        "/v1/assets",
        {**asset, "name": "Points", "symbol": "PTS", "inventory_mode": "SIMPLE", "issuance_policy": "UNLIMITED"},
    )
    cash = await post(
        "/v1/assets",
        {**asset, "name": "Cashback", "symbol": "CASH", "inventory_mode": "LOT", "issuance_policy": "PREFUNDED"},
    )
    await post(f"/v1/programs/{program}/assets/{cash['id']}/fund", {"amount": "1000000000"})
    ids = [""] * participants

    async def create(number: int) -> None:
        ids[number] = (await post("/v1/participants", {"external_id": external_id(number), "program_id": program}))[
            "id"
        ]

    await run_concurrently(participants, 32, create)
    return program, {"simple": pts["id"], "lot": cash["id"]}, ids


def _cycle_bodies(program: str, asset: str, prefix: str, number: int) -> list[tuple[str, bytes]]:
    """Cycle ``number`` as (path suffix, JSON body) pairs, the same requests as the embedded phase."""
    requests = make_cycle(program, asset, prefix, number)
    return [
        ("/balances/adjust", msgspec.json.encode(requests.adjust)),
        ("/balances/hold", msgspec.json.encode(requests.hold)),
        ("/balances/release", msgspec.json.encode(requests.release)),
        ("/redemptions", msgspec.json.encode(requests.redeem)),
    ]


_WRK_SCRIPT = r"""
-- One connection per thread: each thread's Lua state walks credit -> hold -> release -> redeem on its participants.
-- wrk asks for the next request only once the previous answer has arrived, so the order holds. The state moves
-- on in response(), not in request(): wrk calls request() once more on the first thread before the run (to
-- check for pipelining), and after a reconnect it asks again for the request it lost; both get the same one
-- again (a resend is answered from its idempotency key).
local program = "%(program)s"
local asset = "%(asset)s"
local run = "%(run)s"
local credit, hold, redeem = "%(credit)s", "%(hold)s", "%(redeem)s"
local participants = { %(participants)s }
local threads = %(threads)d
local next_id = 0
local step, cycle, reported = 0, 1, 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end
function request()
  local participant = participants[((cycle - 1) * threads + tid - 1) %% #participants + 1]
  local reference = run .. "-" .. tid .. "-" .. cycle
  local head = '{"program_id":"' .. program .. '","asset_id":"' .. asset .. '",'
  local path, body
  if step == 0 then
    path = "/adjust"
    body = head .. '"type":"CREDIT","amount":"' .. credit .. '","description":"bench credit",'
  elseif step == 1 then
    path = "/hold"
    body = head .. '"reference_id":"' .. reference .. '","amount":"' .. hold .. '","description":"bench hold",'
  elseif step == 2 then
    path = "/release"
    body = head .. '"reference_id":"' .. reference .. '","amount":"' .. hold .. '","description":"bench release",'
  else
    path = "/redeem"
    body = head .. '"amount":"' .. redeem .. '","description":"bench redemption",'
  end
  body = body .. '"idempotency_key":"' .. reference .. path .. '"}'
  if step == 3 then
    return wrk.format("POST", "/v1/participants/" .. participant .. "/redemptions", nil, body)
  end
  return wrk.format("POST", "/v1/participants/" .. participant .. "/balances" .. path, nil, body)
end
function response(status, headers, body)
  if status >= 300 and reported < 3 then
    reported = reported + 1
    io.write("WRK_NON_2XX " .. status .. " " .. body .. "\n")
  end
  step = (step + 1) %% 4
  if step == 0 then cycle = cycle + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_phase(
    url: str, name: str, program: str, asset: str, ids: list[str], settings: Settings, work: Path
) -> tuple[Phase, list[str]]:
    """One phase with wrk, ``http_connections`` threads of one connection each; with the first non-2xx answers."""
    script = work / f"{name}.lua"
    script.write_text(
        _WRK_SCRIPT
        % {
            "program": program,
            "asset": asset,
            "run": f"{name}{int(time.time())}",
            "credit": CREDIT_AMOUNT,
            "hold": HOLD_AMOUNT,
            "redeem": REDEEM_AMOUNT,
            "participants": ", ".join(f'"{participant}"' for participant in ids),
            "threads": settings.http_connections,
        }
    )
    connections = settings.http_connections
    argv = ["wrk", f"-t{connections}", f"-c{connections}", f"-d{int(settings.duration_s)}s", "--timeout", "10s"]
    argv += ["-s", str(script), "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {API_KEY}", url]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=settings.duration_s + 60, check=True).stdout
    found = json.loads(next(line for line in output.splitlines() if line.startswith("WRK_JSON "))[9:])
    non_2xx = [line[12:] for line in output.splitlines() if line.startswith("WRK_NON_2XX ")]
    phase = Phase(
        name=name,
        requests_ok=found["requests"] - found["status_errors"],
        requests_other=found["status_errors"],
        errors=found["socket_errors"],
        duration_s=found["duration_us"] / 1e6,
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
    )
    return phase, non_2xx[:5]


async def python_phase(
    client: httpx.AsyncClient, name: str, program: str, asset: str, ids: list[str], settings: Settings
) -> tuple[Phase, list[str]]:
    """One phase from ``http_connections`` httpx tasks in this process (no wrk): cycles until time is up.

    Much slower than wrk (the client's own Python work shares the two cores with the server): for tests and
    machines without wrk, not for figures.
    """
    latencies_s: list[float] = []
    non_2xx: list[str] = []
    counts = {"ok": 0, "other": 0}
    numbers = count()
    prefix = f"{name}{int(time.time())}"
    started_s = time.perf_counter()
    deadline_s = started_s + settings.duration_s

    async def connection() -> None:
        while time.perf_counter() < deadline_s:
            number = next(numbers)
            one = f"/v1/participants/{ids[number % len(ids)]}"
            for suffix, body in _cycle_bodies(program, asset, prefix, number):
                request_started_s = time.perf_counter()
                response = await client.post(one + suffix, content=body, headers={"Content-Type": "application/json"})
                latencies_s.append(time.perf_counter() - request_started_s)
                counts["ok" if response.is_success else "other"] += 1
                if not response.is_success and len(non_2xx) < 5:
                    non_2xx.append(f"{response.status_code} {response.text}")

    async with trio.open_nursery() as nursery:
        for _ in range(settings.http_connections):
            nursery.start_soon(connection)
    phase = Phase(
        name=name,
        requests_ok=counts["ok"],
        requests_other=counts["other"],
        errors=0,
        duration_s=time.perf_counter() - started_s,
        p50_ms=percentile_ms(latencies_s, 0.50) or 0.0,
        p99_ms=percentile_ms(latencies_s, 0.99) or 0.0,
    )
    return phase, non_2xx


def _use_wrk(settings: Settings) -> bool:
    return settings.loader == "wrk" or (settings.loader == "auto" and shutil.which("wrk") is not None)


async def _server_counters(client: httpx.AsyncClient) -> dict[str, float]:
    """The server's journal sequence and group-commit counters, from its own /metrics."""
    wanted = {
        "scrip_engine_journal_sequence": "journal_sequence",
        "scrip_engine_writer_commits_total": "writer_commits",
        "scrip_engine_writer_records_durable_total": "writer_records_durable",
    }
    counters = {}
    for line in (await client.get("/metrics")).text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            counters[wanted[name]] = float(value)
    return counters


async def drive_http(url: str, settings: Settings, work: Path) -> dict[str, Any]:
    """Set up over the API, then one load phase per asset; each phase's figures with the server's counters."""
    limits = httpx.Limits(max_connections=max(64, settings.http_connections))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        program, assets, ids = await setup_over_http(client, settings.http_participants)
        phases = {}
        for name in ASSETS:
            before = await _server_counters(client)
            if _use_wrk(settings):
                phase, non_2xx = await trio.to_thread.run_sync(
                    wrk_phase, url, name, program, assets[name], ids, settings, work
                )
            else:
                phase, non_2xx = await python_phase(client, name, program, assets[name], ids, settings)
            await trio.sleep(0.5)  # let answers wrk stopped waiting for reach the journal before counting
            after = await _server_counters(client)
            commits = after["writer_commits"] - before["writer_commits"]
            records = after["writer_records_durable"] - before["writer_records_durable"]
            phases[name] = {
                **asdict(phase),
                "operations_per_s": round(phase.rps, 1),
                "journal_entries": int(after["journal_sequence"] - before["journal_sequence"]),
                "writer_commits": int(commits),
                "commit_batch_records_mean": round(records / max(1.0, commits), 1),
                "non_2xx_samples": non_2xx,
            }
    return {
        "participants": settings.http_participants,
        "connections": settings.http_connections,
        "loader": "wrk" if _use_wrk(settings) else "python",
        "phases": phases,
    }


def run_http(settings: Settings) -> dict[str, Any]:
    """``scrip serve`` on a free loopback port and a temporary data directory, fsync ON, driven by :func:`drive_http`."""
    with tempfile.TemporaryDirectory(prefix="scrip-bench-operations-http-") as temp:
        work = Path(temp)
        env = {**os.environ, "SCRIP_API_KEY": API_KEY, "SCRIP_STORAGE_SYNC": "true" if settings.sync else "false"}
        argv = [sys.executable, "-m", "scrip_actor", "serve", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--data-dir", str(work / "data")]
        server: subprocess.Popen[str] | None = None
        try:
            with _process(argv, env, work / "server.log", "listening on") as (server, url):
                return trio.run(drive_http, url, settings, work)
        finally:
            if server is not None and server.stdout is not None:
                server.stdout.close()  # bench.http's _process leaves the pipe it read "listening on" from open


# --- the run ------------------------------------------------------------------------------------------------


def summarize(embedded: dict[str, Any] | None, http: dict[str, Any] | None, settings: Settings) -> dict[str, Any]:
    """Headline keys (``{mode}_{asset}_operations_per_s``, ``…_p50_ms``, ``…_p99_ms``) over the full figures."""
    summary: dict[str, Any] = {}
    for mode, result in (("embedded", embedded), ("http", http)):
        for asset, phase in (result or {}).get("phases", {}).items():
            summary[f"{mode}_{asset}_operations_per_s"] = phase["operations_per_s"]
            summary[f"{mode}_{asset}_p50_ms"] = phase["p50_ms"]
            summary[f"{mode}_{asset}_p99_ms"] = phase["p99_ms"]
    summary.update(
        embedded=embedded,
        http=http,
        settings=asdict(settings),
        machine={"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
    )
    return summary


def print_report(summary: dict[str, Any]) -> None:
    """One line per phase: rate, latency, journal entries and group commits."""
    machine = summary["machine"]
    print(f"scrip-actor balance operations (Python {machine['python']}, {machine['machine']}, {machine['cpus']} CPUs)")
    header = (
        f"{'mode':<9} {'asset':<7} {'ops':>8} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'entries':>8} {'commits':>8} {'rec/commit':>10} {'non-2xx':>8}"
    )
    print(header)
    print("-" * len(header))
    for mode in ("embedded", "http"):
        for asset, phase in (summary.get(mode) or {}).get("phases", {}).items():
            done = phase.get("operations", phase.get("requests_ok"))
            print(
                f"{mode:<9} {asset:<7} {done:>8} {phase['operations_per_s']:>8,.0f} {phase['p50_ms']:>8.2f}"
                f" {phase['p99_ms']:>8.2f} {phase['journal_entries']:>8} {phase['writer_commits']:>8}"
                f" {phase['commit_batch_records_mean']:>10} {phase.get('requests_other', 0):>8}"
            )
    embedded = summary.get("embedded")
    if embedded:
        for asset, phase in embedded["phases"].items():
            kinds = ", ".join(
                f"{kind} {phase[f'{kind}_p50_ms']:.2f}/{phase[f'{kind}_p99_ms']:.2f}" for kind in OPERATIONS
            )
            print(f"  embedded {asset} p50/p99 ms by kind: {kinds}")
        for asset, figures in embedded.get("redemptions", {}).items():
            print(
                f"  embedded {asset} redemptions {figures['redemptions_per_s']:,.0f}/s"
                f" (p50/p99 {figures['redeem_p50_ms']:.2f}/{figures['redeem_p99_ms']:.2f} ms),"
                f" reversals {figures['reversals_per_s']:,.0f}/s"
                f" ({figures['reverse_p50_ms']:.2f}/{figures['reverse_p99_ms']:.2f} ms)"
            )
        print(f"  embedded verify: {embedded['verify_ok']}; peak RSS {embedded['rss_peak_mb']} MB")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--participants", type=int, help="embedded participants (default 20000; quick 2000)")
    parser.add_argument("--cycles", type=int, help="embedded cycles per asset, 3 operations each (40000; quick 3000)")
    parser.add_argument("--concurrency", type=int, default=Settings.concurrency, help="embedded concurrent tasks")
    parser.add_argument("--http-participants", type=int, help="participants over HTTP (default 5000; quick 1000)")
    parser.add_argument("--http-connections", type=int, default=Settings.http_connections)
    parser.add_argument("--duration-s", type=float, help="seconds per HTTP phase (default 15; quick 5)")
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--modes", default="embedded,http", help="comma-separated: embedded, http")
    parser.add_argument("--no-sync", action="store_true", help="no fsync (LMDB still commits every transaction)")
    parser.add_argument("--verify", action="store_true", help="verify() the embedded store after its phases")
    parser.add_argument("--no-tune-gc", action="store_true", help=argparse.SUPPRESS)  # tests: keep the GC as it is
    return parser


def settings_from(arguments: argparse.Namespace) -> Settings:
    """The run's :class:`Settings` from the command line (``--quick`` changes the defaults only)."""
    quick = arguments.quick
    settings = Settings(
        participants=arguments.participants or (2_000 if quick else Settings.participants),
        cycles=arguments.cycles or (3_000 if quick else Settings.cycles),
        concurrency=arguments.concurrency,
        http_participants=arguments.http_participants or (1_000 if quick else Settings.http_participants),
        http_connections=arguments.http_connections,
        duration_s=arguments.duration_s or (5.0 if quick else Settings.duration_s),
        loader=arguments.loader,
        modes=tuple(mode for mode in arguments.modes.split(",") if mode),
        sync=not arguments.no_sync,
        verify=arguments.verify,
        tune_gc=not arguments.no_tune_gc,
    )
    assert settings.concurrency < settings.participants, "concurrency must stay below participants (see the docstring)"
    return settings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse options, run the phases asked for, print; returns the summary."""
    arguments = _parser().parse_args(argv)
    settings = settings_from(arguments)
    embedded = trio.run(run_embedded, settings) if "embedded" in settings.modes else None
    http = run_http(settings) if "http" in settings.modes else None
    summary = summarize(embedded, http, settings)
    summary["command"] = "python -m bench.operations " + " ".join(argv if argv is not None else sys.argv[1:])
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        print_report(summary)
    return summary


if __name__ == "__main__":
    main()
