"""``scrip serve --role engine --config F`` applies the file's limits, as the embedded server and the front do.

Without it an engine would judge events by the built-in defaults while a front configured otherwise accepted them.
Real Tansu, the engine role as a process, real LMDB: an event over the file's ``event_data_bytes_max`` is refused
by the engine that read the file and admitted by one that did not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec

from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.verify import verify
from tests.partitioned.partition_setup import seed_partitions, start_engine

TOPIC = "events-config"


def _produce_big_event(bootstrap: str, program_id: str) -> None:
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []
    event = {"program_id": program_id, "external_id": "u1", "idempotency_key": "big", "event_data": {"s": "x" * 200}}
    producer.produce(TOPIC, b"u1", msgspec.json.encode(event), lambda e, _p, _o: e and errors.append(e), partition=0)
    assert producer.flush() == 0
    assert errors == []


async def test_an_engine_role_applies_the_limits_of_its_config_file(broker: str, tmp_path: Path) -> None:
    _kafka.create_topic(broker, TOPIC, 1)
    strict, program_id, _ = await seed_partitions(tmp_path / "strict", 1)
    default = tmp_path / "default"
    shutil.copytree(partition_data_dir(strict, 0), partition_data_dir(default, 0))  # the same catalog
    _produce_big_event(broker, program_id)
    config_file = tmp_path / "scrip.toml"
    config_file.write_text("[limits]\nevent_data_bytes_max = 64\n")

    engine = start_engine(broker, strict, 0, 1, TOPIC, extra=["--config", str(config_file)])
    assert "DONE 1" in engine.communicate(timeout=60)[0]
    assert verify(str(partition_data_dir(strict, 0))).events == 0  # refused: over the file's 64 bytes

    engine = start_engine(broker, default, 0, 1, TOPIC)
    assert "DONE 1" in engine.communicate(timeout=60)[0]
    report = verify(str(partition_data_dir(default, 0)))
    assert report.ok, report.problems
    assert report.events == 1  # admitted under the 64 KiB default
