"""The Python load generator of ``bench.http`` (used when wrk is not installed): keep-alive HTTP/1.1 over raw sockets.

``python -m bench.http_load --url http://127.0.0.1:PORT --program ID --connections 64 --duration-s 5`` opens that
many connections, each sending one request after another until time is up, every event with a unique
idempotency key, and prints one JSON line: ``requests_ok``, ``requests_other``, ``errors``, ``duration_s``,
``p50_ms``, ``p99_ms``. It runs in its own process so it does not share a core's interpreter with the server.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from urllib.parse import urlsplit

import trio

from bench.embedded import make_event_data

__all__ = ["main"]


class _Counts:
    def __init__(self) -> None:
        self.ok = 0
        self.other = 0
        self.errors = 0
        self.latencies_s: list[float] = []


def _body(args: argparse.Namespace, payloads: list[str], rng: random.Random, number: int) -> bytes:
    def event(index: int) -> str:
        return (
            f'{{"program_id":"{args.program}","external_id":"member-{rng.randrange(args.participants)}",'
            f'"idempotency_key":"{args.run}-{number}-{index}","event_data":{payloads[(number + index) % len(payloads)]}}}'
        )

    if args.batch == 0:
        return event(0).encode()
    return ('{"events":[' + ",".join(event(index) for index in range(args.batch)) + "]}").encode()


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> int:
    """Read one response (Content-Length framed); return its status. Leftover bytes stay in ``buffer``."""
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    total = len(head) + 4 + length
    while len(buffer) < total:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buffer += chunk
    del buffer[:total]
    return status


async def _connection(
    args: argparse.Namespace, worker: int, payloads: list[str], deadline: float, counts: _Counts
) -> None:
    url = urlsplit(args.url)
    path = "/v1/events" if args.batch == 0 else "/v1/events/batch"
    rng = random.Random(worker)
    stream = await trio.open_tcp_stream(url.hostname or "127.0.0.1", url.port or 80)
    buffer = bytearray()
    number = 0
    while time.monotonic() < deadline:
        number += 1
        body = _body(args, payloads, rng, worker * 1_000_000_000 + number)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {args.key}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        try:
            await stream.send_all(head + body)
            status = await _read_response(stream, buffer)
        except (ConnectionError, trio.BrokenResourceError):
            counts.errors += 1
            await stream.aclose()
            stream, buffer = await trio.open_tcp_stream(url.hostname or "127.0.0.1", url.port or 80), bytearray()
            continue
        counts.latencies_s.append(time.perf_counter() - started)
        if 200 <= status < 300:
            counts.ok += 1
        else:
            counts.other += 1
    await stream.aclose()


async def _run(args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(7)
    payloads = [json.dumps(make_event_data(rng), separators=(",", ":")) for _ in range(500)]
    counts = _Counts()
    started = time.monotonic()
    deadline = started + args.duration_s
    async with trio.open_nursery() as nursery:
        for worker in range(args.connections):
            nursery.start_soon(_connection, args, worker, payloads, deadline, counts)
    elapsed_s = time.monotonic() - started
    ordered = sorted(counts.latencies_s) or [0.0]
    return {
        "requests_ok": counts.ok,
        "requests_other": counts.other,
        "errors": counts.errors,
        "duration_s": elapsed_s,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def main() -> None:
    """Parse the command line, drive the server, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--batch", type=int, default=0, help="events per request; 0 for single-event POSTs")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=5.0)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--run", default=f"py{int(time.time())}", help="idempotency key prefix, unique per run")
    args = parser.parse_args()
    print(json.dumps(trio.run(_run, args)))


if __name__ == "__main__":
    main()
