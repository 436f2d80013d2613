"""With idempotency claims, each event whose key another partition owns adds exactly one record to each log.

What bench.partitioned relies on to know when the claims run is done (``claimed_log_ends``): an event on p whose
key partition c is another one sends one ClaimRequest to c, which answers with one ClaimAnswer to p; an event whose
key is p's own adds nothing. Real Tansu, 2 engine processes with ``--idempotency-scope program``, each run to its
predicted end. Asserted: both exit DONE there, each log read to its end is exactly that long, every event is
admitted once (balances, event counts, `scrip verify`), nothing is left parked.
"""

from __future__ import annotations

from pathlib import Path

import trio

from bench._claims_cost import lmdb_counts
from scrip_actor.partitioned import _kafka
from tests.partitioned.partition_setup import (
    applied_balances,
    claimed_log_ends,
    log_end,
    produce,
    seed_partitions,
    start_engine,
)

TOPIC = "events-claimed-ends"
PARTITIONS = 2
EVENTS = 400


def test_each_log_ends_where_the_claims_predict(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = trio.run(seed_partitions, tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    placed: dict[int, int] = {}
    acked, produced = produce(broker, program_id, list(range(EVENTS)), 50, PARTITIONS, TOPIC, placed=placed)
    until = claimed_log_ends(program_id, placed, PARTITIONS)
    assert sum(until) - EVENTS > EVENTS // 4  # about half the keys live on the other partition: both add records

    engines = [start_engine(broker, partitions_dir, n, end, TOPIC, scope="program") for n, end in enumerate(until)]
    outputs = [engine.communicate(timeout=60)[0] for engine in engines]

    for partition, output in enumerate(outputs):
        assert f"DONE {until[partition]} " in output, output
    assert [log_end(broker, TOPIC, n) for n in range(PARTITIONS)] == until
    applied, events_stored = trio.run(applied_balances, partitions_dir, PARTITIONS, asset_id)
    assert applied == dict(acked)
    assert events_stored == EVENTS
    assert lmdb_counts(partitions_dir, PARTITIONS)["parked_entries"] == 0
    assert produced == [list(placed.values()).count(n) for n in range(PARTITIONS)]
