"""bench.partitioned's partition move, measured: one partition with N events, then its two ways to a new owner.

1. **Build**: a 1-partition topic, N events over ``participants`` participants produced (idempotent, acks=all),
   applied by one engine process into a store seeded with the catalog (``move_build_events_per_s``, READY →
   DONE). Then one more event (offset N): the "next record" a new owner must apply.
2. **Move with the store kept** (the shared data dir of docs/partitioned.md): a new engine process opens the same
   store and resumes at offset N. ``move_reopen_s``: its process start → READY (imports, the LMDB open, the
   stored offset read, the consumer positioned); ``move_reopen_to_next_applied_s``: process start → DONE N+1
   (record N read, applied, processed, fsynced). ``move_store_open_s``: the store's open and close alone, timed
   in this process just before; ``fresh_start_to_ready_s``: the same start-up on an empty store, for comparison.
3. **Move by deterministic replay**: a fresh store with the same catalog (a copy of the same template), an engine
   process reading from offset 0. ``move_replay_s``: process start → DONE N+1 (every record re-applied,
   processed, fsynced); ``move_replay_events_per_s`` = (N+1) / (READY → DONE).

Checked: both stores pass ``scrip verify`` (``verify_and_read_s_per_store``: the verify and the balances read, per store), the kept store's balances
equal the acknowledged events (``lost``, ``applied_twice``), and the replayed store's balances and event count
equal the kept store's (``replay_matches``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import trio

from bench._common import directory_size_mb
from scrip_actor import open_engine
from scrip_actor.partitioned import _kafka, partition_data_dir
from tests.partitioned.partition_setup import applied_balances, config_for, produce, seed_partitions, start_engine

__all__ = ["move_run"]

_MAP_SIZE_BYTES = 16 << 30  # a 1M-event store is several GiB (the default 1 GiB map of the tests is too small)
_TOPIC = "move"


def _engine_times(
    bootstrap: str, partitions_dir: Path, until: int
) -> tuple[float, tuple[int, float], tuple[int, float]]:
    """Run one engine process to offset ``until``: (its start, (READY offset, time), (DONE offset, time))."""
    started_at_unix_s = time.time()
    process = start_engine(bootstrap, partitions_dir, 0, until, _TOPIC, map_size_bytes=_MAP_SIZE_BYTES)
    out, _ = process.communicate()
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    if process.returncode != 0 or "READY" not in lines or "DONE" not in lines:
        raise RuntimeError(f"the engine process exited with {process.returncode}: {out[-2000:]}")
    ready, done = lines["READY"], lines["DONE"]
    return started_at_unix_s, (int(ready[1]), float(ready[2])), (int(done[1]), float(done[2]))


async def _store_open_s(data_dir: Path) -> float:
    started = time.perf_counter()
    async with open_engine(config=config_for(data_dir, _MAP_SIZE_BYTES)):
        pass
    return time.perf_counter() - started


async def _build(bootstrap: str, work_dir: Path, events: int, participants: int) -> dict[str, Any]:
    """The partition with ``events`` applied, plus one more record produced; the figures and what the rest needs."""
    kept_dir, program_id, asset_id = await seed_partitions(work_dir / "kept", 1)
    replay_dir = work_dir / "replay"
    shutil.copytree(work_dir / "kept" / "template", partition_data_dir(replay_dir, 0))  # same catalog, same ids
    _kafka.create_topic(bootstrap, _TOPIC, 1)
    started = time.perf_counter()
    acked, ends = await trio.to_thread.run_sync(
        produce, bootstrap, program_id, list(range(events)), participants, 1, _TOPIC
    )
    produce_s = time.perf_counter() - started
    _, ready, done = await trio.to_thread.run_sync(_engine_times, bootstrap, kept_dir, ends[0])
    next_acked, next_ends = await trio.to_thread.run_sync(
        produce, bootstrap, program_id, [events], participants, 1, _TOPIC
    )
    return {
        "kept_dir": kept_dir,
        "replay_dir": replay_dir,
        "asset_id": asset_id,
        "acked": acked + next_acked,
        "end": next_ends[0],
        "producer_records_per_s": round(events / produce_s, 1),
        "move_build_events_per_s": round(events / (done[1] - ready[1]), 1),
    }


async def move_run(bootstrap: str, work_dir: Path, events: int, participants: int) -> dict[str, Any]:
    """The three steps of the module docstring; returns the ``move_*`` figures and the checks."""
    built = await _build(bootstrap, work_dir, events, participants)
    kept_dir, replay_dir, end = built["kept_dir"], built["replay_dir"], built["end"]
    store_open_s = await _store_open_s(partition_data_dir(kept_dir, 0))
    started, ready, done = await trio.to_thread.run_sync(_engine_times, bootstrap, kept_dir, end)
    resumed_at = ready[0]
    reopen_s, reopen_to_next_s = ready[1] - started, done[1] - started
    started, replay_ready, replay_done = await trio.to_thread.run_sync(_engine_times, bootstrap, replay_dir, end)
    checked = time.perf_counter()
    kept, kept_events = await applied_balances(kept_dir, 1, built["asset_id"], _MAP_SIZE_BYTES)
    replayed, replayed_events = await applied_balances(replay_dir, 1, built["asset_id"], _MAP_SIZE_BYTES)
    verify_s = (time.perf_counter() - checked) / 2
    acked = built["acked"]
    lost = sum(max(0, count - kept.get(who, 0)) for who, count in acked.items())
    twice = sum(max(0, kept.get(who, 0) - count) for who, count in acked.items()) + max(0, kept_events - end)
    return {
        "move_events": events,
        "move_store_mb": round(directory_size_mb(partition_data_dir(kept_dir, 0)), 1),
        "move_producer_records_per_s": built["producer_records_per_s"],
        "move_build_events_per_s": built["move_build_events_per_s"],
        "move_store_open_s": round(store_open_s, 3),
        "move_reopen_resumed_at": resumed_at,
        "move_reopen_s": round(reopen_s, 3),
        "move_reopen_to_next_applied_s": round(reopen_to_next_s, 3),
        "fresh_start_to_ready_s": round(replay_ready[1] - started, 3),
        "move_replay_s": round(replay_done[1] - started, 3),
        "move_replay_events_per_s": round(end / (replay_done[1] - replay_ready[1]), 1),
        "verify_and_read_s_per_store": round(verify_s, 2),
        "replay_matches": replayed == kept and replayed_events == kept_events,
        "all_done": resumed_at == end - 1 and done[0] == end and replay_done[0] == end,
        "lost": lost,
        "applied_twice": twice,
    }
