"""bench.partitioned's end-to-end run: HTTP load → the front role → the broker → k engine processes → k stores.

On a topic with k partitions (k stores seeded with the same catalog): k engine processes
(``scrip serve --role engine --partition n``) are started and waited for until each is READY, then a front
process (``scrip serve --role front``), then ``requests`` single-event POSTs (bench._front_load, the client of
bench.partitioned_front) while the engines apply what the front produces.

The engines are given ``--until-offset`` before the load starts: each partition's end is known in advance, since
the routing is ``partition_for(external_id, k)`` and the front produces exactly one record per 202 (offsets
0..n-1, which is checked against the 202s afterwards). So the engines' DONE says when the last event is applied.
With ``scope="program"`` (idempotency keys claimed across partitions) each log also gets the claims' requests and
answers: its final end is predicted (``claimed_log_ends``) and checked afterwards by reading it (bench._claims_cost),
and no event may be left parked.

Figures:

- ``front_req_per_s``: 202s per second (the first timed POST sent → the last answer), with the engines running;
- ``front_engines_events_per_s``: events applied per second end to end (the first timed POST sent → the last
  engine DONE: every event applied, processed and fsynced), and ``engines_behind_last_202_s`` (the last 202 →
  the last DONE: how far the engines trail the front);
- ``ack_to_applied_p50_ms``/``p99``: each event's ``processed_at`` in its store minus the time its 202 reached
  the client (same machine, same clock); negative when the engine processed it before the answer arrived. And
  ``sent_to_applied_p50_ms``/``p99``: from the POST sent. ``processed_at`` is the engine's step time; the
  group commit that makes it durable follows within milliseconds.

Checked afterwards as the other runs are: every store passes ``scrip verify``, and each participant's balance
equals the 202-acknowledged events for it (``lost``, ``applied_twice``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import trio

from bench._claims_cost import finish_claims, lmdb_counts
from bench._front_load import WARM_UP_NUMBER, LoadOutcome, event_body, post_events, start_front
from scrip_actor import open_engine
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import (
    applied_balances,
    claimed_log_ends,
    config_for,
    seed_partitions,
    start_engine,
)

__all__ = ["front_engines_run"]

_CONCURRENCY = 32
_DRAIN_TIMEOUT_S = 120.0  # after the load: the engines are then at most a few seconds behind


def _ends(engines: int, requests: int, program_id: str, participants: int) -> tuple[list[int], dict[int, int]]:
    """Each partition's offset after its last event record, if every POST (the warm-up too) is one record, and
    each POST's number → its partition (what ``claimed_log_ends`` needs)."""
    ends = [0] * engines
    placed: dict[int, int] = {}
    for number in [WARM_UP_NUMBER, *range(requests)]:
        placed[number] = partition_for(event_body(number, program_id, participants)["external_id"], engines)
        ends[placed[number]] += 1
    return ends, placed


def _offsets_as_expected(outcome: LoadOutcome, ends: list[int], log_ends: list[int]) -> bool:
    """The 202s' log positions: exactly 0..end-1 on each partition (one record per 202, nothing else) without
    claims; with them (``log_ends`` beyond ``ends``), ``ends[n]`` distinct positions below the log's end."""
    found: dict[int, set[int]] = {}
    for answer in outcome.answers:
        if answer.partition is not None and answer.offset is not None:
            found.setdefault(answer.partition, set()).add(answer.offset)
    if log_ends == ends:
        return all(found.get(partition, set()) == set(range(end)) for partition, end in enumerate(ends))
    return all(
        len(found.get(partition, set())) == end and max(found.get(partition, {0})) < log_ends[partition]
        for partition, end in enumerate(ends)
    )


async def _processed_at(partitions_dir: Path, engines: int) -> dict[int, float]:
    """Event number → its ``processed_at`` (unix seconds), from every store (read after the engines exited)."""
    processed: dict[int, float] = {}
    for partition in range(engines):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            cursor = None
            while True:
                page = await engine.list_events(descending=False, limit=200, cursor=cursor)
                for event in page.data:
                    if event.processed_at is not None:
                        processed[int(event.idempotency_key[1:])] = event.processed_at.timestamp()
                if not page.has_more:
                    break
                cursor = page.next_cursor
    return processed


def _latencies_ms(outcome: LoadOutcome, processed: dict[int, float]) -> dict[str, float | None]:
    acked = [answer for answer in outcome.answers if answer.status_code == 202 and answer.number in processed]
    after_ack = sorted(processed[answer.number] - answer.answered_at_unix_s for answer in acked)
    after_send = sorted(processed[answer.number] - answer.sent_at_unix_s for answer in acked)

    def percentile(values: list[float], fraction: float) -> float | None:
        return round(values[min(len(values) - 1, int(fraction * len(values)))] * 1000, 1) if values else None

    return {
        "ack_to_applied_p50_ms": percentile(after_ack, 0.50),
        "ack_to_applied_p99_ms": percentile(after_ack, 0.99),
        "sent_to_applied_p50_ms": percentile(after_send, 0.50),
        "sent_to_applied_p99_ms": percentile(after_send, 0.99),
    }


def _drain(processes: list[subprocess.Popen[str]]) -> list[str]:
    """Each engine's remaining stdout once it exits (killed if it has not within the drain timeout)."""
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=_DRAIN_TIMEOUT_S)[0])
        except subprocess.TimeoutExpired:
            process.kill()  # by its own pid
            outputs.append(process.communicate()[0])
    return outputs


async def _load_while_applying(
    bootstrap: str, work_dir: Path, until: list[int], requests: int, program_id: str, participants: int, scope: str
) -> tuple[LoadOutcome, list[str], float]:
    """Engines READY, then the front, then the load; returns it, the engines' outputs and the load's start time."""
    topic, engines, partitions_dir = work_dir.name, len(until), work_dir / "partitions"
    processes = [start_engine(bootstrap, partitions_dir, n, end, topic, scope=scope) for n, end in enumerate(until)]
    front: subprocess.Popen[str] | None = None
    try:
        for process in processes:
            assert process.stdout is not None
            line = await trio.to_thread.run_sync(process.stdout.readline)
            assert line.startswith("READY"), line
        (work_dir / "front").mkdir(exist_ok=True)
        front, port = await trio.to_thread.run_sync(start_front, bootstrap, engines, work_dir / "front", topic)
        started_at_unix_s = time.time()
        outcome = await post_events(
            port, requests, _CONCURRENCY, partitions=engines, program_id=program_id, participants=participants
        )
        outputs = await trio.to_thread.run_sync(_drain, processes)
    finally:
        if front is not None:
            front.send_signal(signal.SIGTERM)  # by its own pid
            await trio.to_thread.run_sync(partial(front.communicate, timeout=30))
        for process in processes:
            if process.poll() is None:
                process.kill()  # by its own pid
                process.wait()
    return outcome, outputs, started_at_unix_s


async def front_engines_run(
    bootstrap: str, work_dir: Path, engines: int, requests: int, participants: int, scope: str = "participant"
) -> dict[str, Any]:
    """One end-to-end run with ``engines`` partitions and engine processes; the figures of the module docstring.

    ``scope`` ``program``: the engines claim every key at its partition, so each log ends after the claims' records
    too (predicted, given as ``--until-offset``, checked afterwards by reading each log: bench._claims_cost)."""
    run_dir = work_dir / f"front-{engines}{'-claims' if scope == 'program' else ''}"
    partitions_dir, program_id, asset_id = await seed_partitions(run_dir, engines)
    _kafka.create_topic(bootstrap, run_dir.name, engines)
    ends, placed = _ends(engines, requests, program_id, participants)
    until = claimed_log_ends(program_id, placed, engines) if scope == "program" else ends
    outcome, outputs, started_at_unix_s = await _load_while_applying(
        bootstrap, run_dir, until, requests, program_id, participants, scope
    )
    log_ends, as_predicted = until, True
    if scope == "program":
        log_ends, as_predicted = await finish_claims(bootstrap, partitions_dir, run_dir.name, until)
    done_at = [float(line.split()[2]) for out in outputs for line in out.splitlines() if line.startswith("DONE")]
    all_done = len(done_at) == engines and as_predicted and _offsets_as_expected(outcome, ends, log_ends)
    all_done = all_done and lmdb_counts(partitions_dir, engines)["parked_entries"] == 0
    acked = Counter(
        event_body(answer.number, program_id, participants)["external_id"]
        for answer in outcome.answers
        if answer.status_code == 202
    )
    applied, events_stored = await applied_balances(partitions_dir, engines, asset_id)
    lost = sum(max(0, count - applied.get(who, 0)) for who, count in acked.items())
    twice = sum(max(0, applied.get(who, 0) - count) for who, count in acked.items())
    twice += max(0, events_stored - sum(acked.values()))
    last_answer_at = max(answer.answered_at_unix_s for answer in outcome.answers)
    last_done_at = max(done_at, default=float("nan"))
    return {
        "engines": engines,
        "idempotency_scope": scope,
        "requests": requests,
        "concurrency": _CONCURRENCY,
        "all_done": all_done,
        "front_req_per_s": round(
            sum(a.status_code == 202 and a.number != WARM_UP_NUMBER for a in outcome.answers) / outcome.elapsed_s, 1
        ),
        "front_p50_ms": outcome.percentile_ms(0.50),
        "front_p99_ms": outcome.percentile_ms(0.99),
        "front_engines_events_per_s": round(sum(acked.values()) / (last_done_at - started_at_unix_s), 1),
        "engines_behind_last_202_s": round(last_done_at - last_answer_at, 3),
        **_latencies_ms(outcome, await _processed_at(partitions_dir, engines)),
        "not_202_or_misrouted": len(outcome.wrong),
        "lost": lost,
        "applied_twice": twice,
    }
