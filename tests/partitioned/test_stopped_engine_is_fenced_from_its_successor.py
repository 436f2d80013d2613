"""A stopped (SIGSTOP) owner of a partition and its successor never both write the partition's store.

The fence is the data directory's exclusive lock (scrip_actor/_data_dir.py), held for as long as the store is
open: the successor waits for it instead of writing beside a zombie that may wake up (SIGCONT) mid-batch. After
the zombie wakes, finishes and exits, the successor resumes at the zombie's last stored offset: each record once.
"""

from __future__ import annotations

import select
import signal
from pathlib import Path

import trio

from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import TOPIC, applied_balances, produce, seed_partitions, start_engine

EVENTS = 4000
PARTICIPANTS = 11


async def test_a_zombie_owner_and_its_successor_never_write_together(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, 1)
    _kafka.create_topic(broker, TOPIC, 1)
    acked, ends = await trio.to_thread.run_sync(produce, broker, program_id, list(range(EVENTS)), PARTICIPANTS, 1)

    zombie = start_engine(broker, partitions_dir, 0, ends[0])
    successor = None
    try:
        assert zombie.stdout is not None
        assert zombie.stdout.readline().startswith("READY 0")
        await trio.sleep(0.2)
        assert zombie.poll() is None, "the owner is meant to be stopped mid-partition"
        zombie.send_signal(signal.SIGSTOP)  # frozen mid-partition, as a paused VM or a long GC pause would be
        successor = start_engine(broker, partitions_dir, 0, ends[0])  # the "rebalance": a new owner starts
        assert successor.stdout is not None
        await trio.sleep(1.5)
        ready, _, _ = select.select([successor.stdout], [], [], 0)
        assert not ready, "the successor opened the store beside a live owner"
        zombie.send_signal(signal.SIGCONT)  # the zombie wakes up and goes on: still alone in the store
        zombie_output = zombie.communicate(timeout=60)[0]
        successor_output = await trio.to_thread.run_sync(lambda: successor.communicate(timeout=60)[0])
    finally:
        for process in (zombie, successor):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert f"DONE {ends[0]}" in zombie_output
    assert successor_output.split()[:2] == ["READY", str(ends[0])]  # it opened only after the zombie had gone
    assert f"DONE {ends[0]}" in successor_output

    applied, events_stored = await applied_balances(partitions_dir, 1, asset_id)
    assert events_stored == EVENTS
    assert applied == dict(acked)
