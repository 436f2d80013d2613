"""The engine role applies every acknowledged record exactly once, though it is SIGKILLed mid-partition.

Real broker (Tansu), real engine processes (``python -m scrip_actor.partitioned engine``), real LMDB. The catalog
is seeded by copying one template store into each partition's data directory (the catalog topic is not built yet,
docs/partitioned.md), so every partition knows the same program with one rule: +1 point per event.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import trio

from scrip_actor import AssetCreate, Config, CreditAction, ProgramCreate, RuleCreate, open_engine
from scrip_actor.config import StorageSettings
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.verify import verify

TOPIC = "events"
PARTITIONS = 2
EVENTS = 8000
PARTICIPANTS = 23
REPEATED = 200  # records produced twice (a front retrying after a lost answer): the second must change nothing


def _config(data_dir: Path) -> Config:
    return Config(storage=StorageSettings(data_dir=str(data_dir), sync=True, lmdb_map_size_bytes=1 << 30))


async def _seed_catalog(template: Path) -> tuple[str, str]:
    async with open_engine(config=_config(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="partitioned"))
        asset = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name="P",
                symbol="P",
                inventory_mode="SIMPLE",
                issuance_policy="UNLIMITED",
                scale=0,
            )
        )
        await engine.create_rule(
            RuleCreate(
                program_id=program.id,
                name="one",
                condition="true",
                actions=[CreditAction(asset_id=asset.id, amount="1")],
            )
        )
    return program.id, asset.id


def _produce(bootstrap: str, program_id: str) -> tuple[Counter[str], list[int]]:
    """Produce the events (and REPEATED of them again); returns the acknowledged events per participant and the
    offset after the last record of each partition (from the acknowledgements: Tansu 0.6's high watermark is
    not the next offset, so nothing here relies on it)."""
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []
    ends = [0] * PARTITIONS

    def on_acked(error: str | None, partition: int, offset: int) -> None:
        if error is not None:
            errors.append(error)
        else:
            ends[partition] = max(ends[partition], offset + 1)

    for number in [*range(EVENTS), *range(REPEATED)]:
        participant = f"user{number % PARTICIPANTS}"
        value = msgspec.json.encode(
            {"program_id": program_id, "external_id": participant, "idempotency_key": f"k{number}", "event_data": {}}
        )
        producer.produce(TOPIC, participant.encode(), value, on_acked)
    assert producer.flush() == 0
    assert errors == []
    return Counter(f"user{number % PARTICIPANTS}" for number in range(EVENTS)), ends


def _engine(bootstrap: str, partitions_dir: Path, partition: int, until: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scrip_actor.partitioned",
            "engine",
            "--bootstrap",
            bootstrap,
            "--topic",
            TOPIC,
            "--partition",
            str(partition),
            "--partitions-dir",
            str(partitions_dir),
            "--until-offset",
            str(until),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


async def _balances(data_dir: Path, asset_id: str) -> dict[str, int]:
    async with open_engine(config=_config(data_dir)) as engine:
        page = await engine.list_participants(limit=100)
        found = {}
        assert not page.has_more
        for participant in page.data:
            amounts = [int(b.available) for b in participant.balances if b.asset_id == asset_id]
            found[participant.external_id] = sum(amounts)
        return found


async def test_every_acknowledged_event_is_applied_once_across_a_sigkill(broker: str, tmp_path: Path) -> None:
    template = tmp_path / "template"
    program_id, asset_id = await _seed_catalog(template)
    partitions_dir = tmp_path / "partitions"
    for partition in range(PARTITIONS):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    acked, ends = await trio.to_thread.run_sync(_produce, broker, program_id)
    assert sum(ends) == EVENTS + REPEATED

    engines = [_engine(broker, partitions_dir, partition, ends[partition]) for partition in range(PARTITIONS)]
    try:
        assert engines[0].stdout is not None
        assert engines[0].stdout.readline().startswith("READY 0")
        await trio.sleep(0.3)  # let it apply part of its partition, then kill it without a chance to clean up
        engines[0].send_signal(signal.SIGKILL)
        engines[0].wait(timeout=10)
        engines[0].stdout.close()
        engines[0] = _engine(broker, partitions_dir, 0, ends[0])  # its replacement resumes from the stored offset
        outputs = [engine.communicate(timeout=60)[0] for engine in engines]
    finally:
        for engine in engines:
            if engine.poll() is None:
                engine.kill()
                engine.wait()
    resumed_at = int(outputs[0].split()[1])  # the replacement's READY line: where the killed one had got to
    assert 0 < resumed_at < ends[0], "the kill is meant to land mid-partition"
    for partition, output in enumerate(outputs):
        assert f"DONE {ends[partition]}" in output, output

    applied: dict[str, int] = {}
    events_stored = 0
    for partition in range(PARTITIONS):
        data_dir = partition_data_dir(partitions_dir, partition)
        report = verify(str(data_dir))  # what `scrip verify` runs
        assert report.ok, report.problems
        assert report.events_pending == 0
        events_stored += report.events
        balances = await _balances(data_dir, asset_id)
        assert not set(balances) & set(applied), "a participant lives in exactly one partition"
        applied.update(balances)
    assert events_stored == EVENTS  # the repeated records made no event of their own
    assert applied == dict(acked)  # balances equal the events: none lost, none applied twice
