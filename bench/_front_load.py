"""What bench.partitioned_front and bench.partitioned share: a real front process, and an HTTP load of single-event POSTs.

- :func:`start_front`: ``scrip serve --role front`` on loopback (port 0, ``SCRIP_API_KEY``), its port read from
  the line it prints once bound;
- :func:`post_events`: event ``k<number>`` for participant ``user<number % participants>`` POSTed once per
  number, ``concurrency`` in flight, from one httpx client; every answer is kept (:class:`Answer`: its wall-clock
  send and answer times, status, and the log position of a 202), and an answer that is not a 202 at the partition
  ``partition_for`` names is counted as wrong.

A warm-up request (number -1) goes first, outside the timing: it opens connections and makes the front's first
metadata round trip. It is an event like the others (a 202 is a record in the topic), so it is in ``answers``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from scrip_actor.partitioned._routing import partition_for

__all__ = ["API_KEY", "Answer", "LoadOutcome", "event_body", "post_events", "start_front"]

API_KEY = "bench-front-key"
WARM_UP_NUMBER = -1


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """One POST's answer. ``partition``/``offset``: where a 202 says the event is (None otherwise)."""

    number: int
    status_code: int
    sent_at_unix_s: float
    answered_at_unix_s: float
    partition: int | None
    offset: int | None


class LoadOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The timed POSTs (the warm-up excluded from ``elapsed_s`` and ``latencies_s``, included in ``answers``)."""

    requests: int
    elapsed_s: float
    latencies_s: list[float]  # sorted
    answers: list[Answer]
    wrong: list[str]  # not a 202, or a 202 at another partition than partition_for's

    def percentile_ms(self, fraction: float) -> float:
        return round(self.latencies_s[min(len(self.latencies_s) - 1, int(fraction * len(self.latencies_s)))] * 1000, 2)


def start_front(
    bootstrap: str, partitions: int, data_dir: Path, topic: str = "events"
) -> tuple[subprocess.Popen[str], int]:
    """A front process for ``topic`` (``partitions`` partitions); returns it and the port it listens on."""
    command = [sys.executable, "-m", "scrip_actor", "serve", "--role", "front", "--bootstrap", bootstrap]
    command += ["--topic", topic, "--partitions", str(partitions), "--port", "0", "--data-dir", str(data_dir)]
    env = {**os.environ, "SCRIP_API_KEY": API_KEY, "PYTHONPATH": str(Path(__file__).parents[1])}
    front = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert front.stdout is not None
    line = front.stdout.readline()
    assert "front listening on" in line, line
    return front, int(line.rsplit(":", 1)[1])


def event_body(number: int, program_id: str, participants: int) -> dict[str, Any]:
    """The body POSTed for ``number``: its participant is ``user<number % participants>``, its key ``k<number>``."""
    body: dict[str, Any] = {"program_id": program_id, "external_id": f"user{number % participants}"}
    body["idempotency_key"] = f"k{number}"
    body["event_data"] = {"amount": "12.50"}
    return body


async def post_events(
    port: int, requests: int, concurrency: int, *, partitions: int | None, program_id: str, participants: int
) -> LoadOutcome:
    """POST events 0..requests-1 (after the warm-up); ``partitions`` None: a bare app, no routing to check."""
    latencies_s: list[float] = []
    answers: list[Answer] = []
    wrong: list[str] = []
    sending = trio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(client: httpx.AsyncClient, number: int) -> None:
        body = event_body(number, program_id, participants)
        async with sending:
            sent_at_unix_s, sent = time.time(), time.perf_counter()
            answer = await client.post("/v1/events", json=body, headers=headers)
            latencies_s.append(time.perf_counter() - sent)
        log = answer.json().get("log") if answer.status_code == 202 else None
        answers.append(
            Answer(
                number=number,
                status_code=answer.status_code,
                sent_at_unix_s=sent_at_unix_s,
                answered_at_unix_s=time.time(),
                partition=None if log is None else log["partition"],
                offset=None if log is None else log["offset"],
            )
        )
        if answer.status_code != 202:
            wrong.append(f"{answer.status_code} {answer.text[:200]}")
        elif partitions is not None and log["partition"] != partition_for(body["external_id"], partitions):
            wrong.append(f"wrong partition for {body['external_id']}")

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        await one(client, WARM_UP_NUMBER)
        latencies_s.clear()
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for number in range(requests):
                nursery.start_soon(one, client, number)
        elapsed_s = time.perf_counter() - started
    latencies_s.sort()
    return LoadOutcome(requests=requests, elapsed_s=elapsed_s, latencies_s=latencies_s, answers=answers, wrong=wrong)
