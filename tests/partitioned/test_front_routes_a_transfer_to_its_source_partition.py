"""``POST /v1/transfers`` on the front: stored at the source's partition, then applied across partitions once.

Real Tansu, the real front app on loopback, in-process engine roles, real LMDB. Refusals (a source or a recipient
named by participant_id, which the stateless front cannot route) are 400s that produce nothing.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import TOPIC, applied_balances, config_for, seed_partitions

KEY = "front-transfer-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_LOOPBACK = Config(server=ServerSettings(host="127.0.0.1", port=0))


def _on(partition: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(1000) if partition_for(f"{prefix}{n}", 2) == partition)


async def test_a_transfer_through_the_front_reaches_a_recipient_on_another_partition(
    broker: str, tmp_path: Path
) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, 2)
    _kafka.create_topic(broker, TOPIC, 2)
    source, recipient = _on(0, "giver"), _on(1, "taker")
    events = [(source, n) for n in range(5)] + [(recipient, 0)]
    transfer = {
        "program_id": program_id,
        "asset_id": asset_id,
        "source_external_id": source,
        "recipients": [{"external_id": recipient, "amount": "3"}],
        "description": "a gift",
        "idempotency_key": "gift-1",
    }
    async with open_event_log(broker, TOPIC, 2) as log, trio.open_nursery() as nursery:
        port = await nursery.start(serve_front, log, _LOOPBACK, ApiKeys.of(KEY))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for name, n in events:
                body = {
                    "program_id": program_id,
                    "external_id": name,
                    "idempotency_key": f"{name}-{n}",
                    "event_data": {},
                }
                assert (await client.post("/v1/events", json=body, headers=AUTH)).status_code == 202
            by_id = {**transfer, "source_external_id": None, "source_participant_id": "par_x"}
            refused = await client.post("/v1/transfers", json=by_id, headers=AUTH)
            assert refused.status_code == 400, refused.text
            assert refused.json()["details"]["fields"][0]["field"] == "source_external_id"
            to_id = {**transfer, "recipients": [{"participant_id": "par_y", "amount": "3"}]}
            refused = await client.post("/v1/transfers", json=to_id, headers=AUTH)
            assert refused.status_code == 400
            assert refused.json()["details"]["fields"][0]["field"] == "recipients[0].external_id"
            accepted = await client.post("/v1/transfers", json=transfer, headers=AUTH)
        nursery.cancel_scope.cancel()
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["status"] == "ACCEPTED" and body["source_external_id"] == source
    assert body["log"]["partition"] == 0 and body["log"]["offset"] == 5  # after the source's 5 events, nothing else

    source_end = body["log"]["offset"] + 1
    config = config_for(partition_data_dir(partitions_dir, 0))
    assert (
        await run_partition(config, broker, TOPIC, 0, until_offset=source_end, idempotency_scope="participant")
        == source_end
    )  # relays the credit
    config = config_for(partition_data_dir(partitions_dir, 1))
    assert (
        await run_partition(config, broker, TOPIC, 1, until_offset=2, idempotency_scope="participant") == 2
    )  # its event, then the credit
    applied, _ = await applied_balances(partitions_dir, 2, asset_id)
    assert applied == {source: 5 - 3, recipient: 1 + 3}
