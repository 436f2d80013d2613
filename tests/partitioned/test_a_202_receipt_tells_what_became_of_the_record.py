"""``GET /v1/log-records/{partition}/{offset}`` through the front: what became of a record it acknowledged.

The front's 202 names the record's log position before any engine judged it; this route answers from the
partition's store: PENDING, PARKED, REFUSED (with the kept error) or APPLIED. Real Tansu, the real front, engine
roles with their readers and idempotency claims on, real LMDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.test_front_routes_reads_to_the_owning_partition import AUTH, PARTITIONS, Running, _running


def _on(partition: int, prefix: str) -> str:
    return next(f"{prefix}{n}" for n in range(1000) if partition_for(f"{prefix}{n}", PARTITIONS) == partition)


async def _settled(running: Running, log: dict[str, Any]) -> dict[str, Any]:
    """The record's status once it is no longer PENDING or PARKED."""
    path = f"/v1/log-records/{log['partition']}/{log['offset']}"
    with trio.fail_after(20):
        while True:
            answer = await running.front.get(path, headers=AUTH)
            assert answer.status_code == 200, answer.text
            status = answer.json()
            if status["status"] not in ("PENDING", "PARKED"):
                return status
            await trio.sleep(0.05)


async def test_the_receipt_of_a_202_tells_applied_from_refused(broker: str, tmp_path: Path) -> None:
    async with _running(broker, tmp_path) as (running, program_id):
        alice, bob = _on(0, "alice"), _on(1, "bob")
        first = {"program_id": program_id, "external_id": alice, "idempotency_key": "shared", "event_data": {}}
        accepted = await running.front.post("/v1/events", json=first, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        applied = await _settled(running, accepted.json()["log"])
        assert applied["status"] == "APPLIED" and applied["error"] is None

        reuse = {**first, "external_id": bob}  # another participant, on another partition, the same key
        accepted = await running.front.post("/v1/events", json=reuse, headers=AUTH)
        assert accepted.status_code == 202 and accepted.json()["log"]["partition"] == 1
        refused = await _settled(running, accepted.json()["log"])
        assert refused["status"] == "REFUSED", refused
        assert refused["error"]["code"] == "idempotency_conflict"

        pending = await running.front.get("/v1/log-records/2/999999", headers=AUTH)
        assert pending.status_code == 200 and pending.json()["status"] == "PENDING"
        beyond = await running.front.get(f"/v1/log-records/{PARTITIONS}/0", headers=AUTH)
        assert beyond.status_code == 404, beyond.text
        malformed = await running.front.get("/v1/log-records/x/0", headers=AUTH)
        assert malformed.status_code == 400 and malformed.json()["code"] == "bad_request"
        anonymous = await running.front.get("/v1/log-records/0/0")
        assert anonymous.status_code == 401
