"""Benchmark: a million participants — memory, size on disk, and how long the store takes to reopen.

Run ``python -m bench.scale`` (1M participants; ``--quick`` for 50k; ``--participants N`` to choose; ``--json``).

1. Opens an engine on a temporary directory (``--data-dir`` to choose), fsync ON, with one program, a SIMPLE
   asset and one welcome rule (``event.type == 'signup'`` → credit 10 points and tag ``new``), so every
   participant has an account, a balance, a tag and a journal entry, as after a real onboarding.
2. Creates the participants through signup events, ``submit_batch`` chunks of ``--batch-size`` from
   ``--batch-tasks`` concurrent tasks (events are generated chunk by chunk, so the generator holds no memory).
3. Reports the process's RSS (now and peak; now also split into anonymous memory and file-backed pages, which
   are mostly LMDB's map), how often the writer dropped that map from this process's RSS
   (``storage.lmdb_map_resident_max_mb``), the cached participants (bounded by ``engine.actors_resident_max``),
   the data size on disk (allocated blocks, LMDB files are sparse).
4. Closes the engine and reopens the store in a *fresh process*, timing ``open_engine`` until it is ready plus
   one participant lookup, and that process's RSS. The OS page cache is warm (the store was just written): this
   is a restart, not a cold boot.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from bench._common import (
    LatencyRecorder,
    Progress,
    bench_config,
    current_rss_mb,
    directory_size_mb,
    peak_rss_mb,
    rss_breakdown_mb,
    tune_gc,
)
from scrip_actor import (
    AssetCreate,
    CreditAction,
    Engine,
    EventSubmit,
    Overloaded,
    ProgramCreate,
    RuleCreate,
    TagAction,
    open_engine,
)


def external_id(number: int) -> str:
    """The external id of participant ``number``."""
    return f"member-{number:08d}"


def signup_chunks(program_id: str, participants: int, chunk_size: int) -> Iterator[list[EventSubmit]]:
    """Signup events for participants 0..participants-1, ``chunk_size`` at a time, built only when needed."""
    for start in range(0, participants, chunk_size):
        yield [
            EventSubmit(
                program_id=program_id,
                external_id=external_id(number),
                idempotency_key=f"signup-{number}",
                event_data={"type": "signup", "channel": "app", "country": "DE", "referrer": None},
            )
            for number in range(start, min(participants, start + chunk_size))
        ]


async def set_up(engine: Engine) -> str:
    """One program with a points asset and the welcome rule; returns the program id."""
    program = await engine.create_program(ProgramCreate(name="Scale"))
    points = await engine.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Points",
            symbol="PTS",
            inventory_mode="SIMPLE",
            issuance_policy="UNLIMITED",
            scale=2,
        )
    )
    await engine.create_rule(
        RuleCreate(
            program_id=program.id,
            name="welcome",
            condition="event.type == 'signup'",
            actions=[CreditAction(asset_id=points.id, amount="10"), TagAction(tag="new")],
        )
    )
    return program.id


async def create_participants(engine: Engine, program_id: str, participants: int, chunk_size: int, tasks: int) -> float:
    """Submit every signup event (batched, ``tasks`` in flight) and wait until processed; returns seconds taken."""
    chunks = signup_chunks(program_id, participants, chunk_size)
    recorder = LatencyRecorder()
    recorder.attach(engine)
    started_s = time.perf_counter()

    async def submitter() -> None:
        for chunk in chunks:
            while chunk:
                results = await engine.submit_batch(chunk)
                chunk = [
                    request for request, result in zip(chunk, results, strict=True) if isinstance(result, Overloaded)
                ]
                if chunk:
                    await trio.sleep(0.001)

    async with Progress("create", participants, lambda: recorder.processed):
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(submitter)
        await engine.wait_idle()
    return time.perf_counter() - started_s


async def build(
    data_dir: Path, participants: int, chunk_size: int, tasks: int, sync: bool, gc_tuned: bool = True
) -> dict[str, Any]:
    """Create the store with ``participants`` participants; the figures measured while it is open.

    ``gc_tuned=False`` leaves the cyclic GC alone (in-process runs such as tests must not freeze their heap).
    """
    async with open_engine(config=bench_config(data_dir, sync=sync)) as engine:
        program_id = await set_up(engine)
        if gc_tuned:
            tune_gc()
        elapsed_s = await create_participants(engine, program_id, participants, chunk_size, tasks)
        statistics = engine.statistics()
        rss_mb = current_rss_mb()
        breakdown = rss_breakdown_mb()
    return {
        "participants": participants,
        "create_s": round(elapsed_s, 1),
        "create_events_per_s": round(participants / elapsed_s, 1),
        "rss_mb": round(rss_mb, 1),
        "rss_peak_mb": round(peak_rss_mb(), 1),
        "rss_anon_mb": breakdown.get("anon"),
        "rss_file_mb": breakdown.get("file"),
        "map_trims": statistics.writer_map_trims,
        "map_trim_s_total": round(statistics.writer_map_trim_seconds_total, 3),
        "participants_cached": statistics.participants_cached,
        "passivations": statistics.passivations,
        "events_failed": statistics.events_failed,
        "journal_entries": statistics.journal_sequence,
        "writer_commits": statistics.writer_commits,
        "writer_batch_records_peak": statistics.writer_batch_records_peak,
        "data_mb": round(directory_size_mb(data_dir), 1),
    }


async def reopen(data_dir: Path, participants: int) -> dict[str, Any]:
    """Time ``open_engine`` until ready plus one lookup of a random participant (run in a fresh process)."""
    rss_before_mb = current_rss_mb()
    number = random.Random(7).randrange(participants)
    started_s = time.perf_counter()
    async with open_engine(config=bench_config(data_dir)) as engine:
        opened_s = time.perf_counter() - started_s
        participant = await engine.get_participant_by_external_id(external_id(number))
        ready_s = time.perf_counter() - started_s
        assert participant.tags == ["new"], participant
        breakdown = rss_breakdown_mb()
    return {
        "reopen_s": round(ready_s, 3),
        "open_engine_s": round(opened_s, 3),
        "reopen_rss_mb": round(current_rss_mb(), 1),
        "reopen_rss_anon_mb": breakdown.get("anon"),
        "reopen_rss_file_mb": breakdown.get("file"),
        "reopen_rss_before_open_mb": round(rss_before_mb, 1),
    }


def reopen_in_child(data_dir: Path, participants: int) -> dict[str, Any]:
    """:func:`reopen` in a fresh interpreter: cold Python heap, warm OS page cache."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--reopen-worker", str(data_dir), "--participants", str(participants)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k participants instead of 1M")
    parser.add_argument("--participants", type=int, help="participants to create (default 1000000; quick 50000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per submit_batch call")
    parser.add_argument("--batch-tasks", type=int, default=4, help="concurrent submit_batch tasks")
    parser.add_argument("--data-dir", help="where the store goes (default: a temporary directory, removed after)")
    parser.add_argument("--no-sync", action="store_true", help="no fsync (LMDB still commits every transaction)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--in-process", action="store_true", help="reopen in this process (tests)")
    parser.add_argument("--reopen-worker", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Build the store, measure, reopen, print; returns the figures (None for the reopen worker)."""
    arguments = _parser().parse_args(argv)
    participants = arguments.participants or (50_000 if arguments.quick else 1_000_000)
    if arguments.reopen_worker:
        print(json.dumps(trio.run(reopen, Path(arguments.reopen_worker), participants)))
        return None
    with tempfile.TemporaryDirectory(prefix="scrip-scale-") as scratch:
        data_dir = Path(arguments.data_dir or scratch) / "scale"
        figures = trio.run(
            build,
            data_dir,
            participants,
            arguments.batch_size,
            arguments.batch_tasks,
            not arguments.no_sync,
            not arguments.in_process,
        )
        if arguments.in_process:
            figures.update(trio.run(reopen, data_dir, participants))
        else:
            figures.update(reopen_in_child(data_dir, participants))
    figures["command"] = "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:])
    if arguments.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:<28} {value}")
    return figures


if __name__ == "__main__":
    main()
