"""Overload: offer three times the sustainable rate to the real server and check it sheds load instead of growing.

``python -m bench.overload --seconds 10`` prints one JSON line; ``tests/reliability/test_overload.py`` runs it for
two seconds. The server runs with ``engine.inflight_events_max`` small (200 by default here) and a rule that costs
real CPU per event (a nested comprehension over 40 numbers), so processing, not HTTP, is the bottleneck. Phases:

1. *sustainable rate*: flood for a second; the completion rate at saturation is what the engine sustains (R);
2. *overload*: an open-loop schedule offers 3 R events/s in batches every 50 ms (plus single POSTs), whatever the
   answers; the server must refuse the excess (batch items ``too_many_requests``, single POSTs 429 with
   ``Retry-After``), keep ``events_inflight`` at or under the cap, and keep its RSS under the bound;
3. *drain*: once the load stops, every accepted event completes; none is lost, none was invented.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.crash import AckLedger, ServerProcess, check_exactly_once, expect, setup_program

__all__ = ["OverloadResult", "overload_run"]

INFLIGHT_MAX = 200
TICK_S = 0.05
REQUESTS_CONCURRENT_MAX = 16
NUMBERS_PER_EVENT = 40
# 40 x 40 = 1,600 iterations per event: a few milliseconds of CPU in the engine for a small body on the wire.
CONDITION = "event.xs.all(x, event.xs.all(y, x + y >= 0.0))"
_NUMBERS = [float(n) for n in range(NUMBERS_PER_EVENT)]


@dataclass
class OverloadResult:
    """Figures of one overload run."""

    sustainable_per_s: float
    offered_per_s: float
    offered: int
    accepted: int
    refused: int
    single_429_with_retry_after: int
    inflight_peak: int
    rss_peak_mb: float
    rss_start_mb: float
    drain_s: float
    completed: int
    extra: dict[str, Any] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def engine_metric(client: httpx.AsyncClient, name: str) -> float:
    """One ``scrip_engine_<name>`` value from ``/metrics``."""
    text = (await client.get("/metrics")).text
    match = re.search(rf"^scrip_engine_{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert match is not None, f"no scrip_engine_{name} in /metrics"
    return float(match.group(1))


class Offer:
    """Open-loop sender: numbered events, answers recorded in an :class:`AckLedger`."""

    def __init__(self, ledger: AckLedger, client: httpx.AsyncClient) -> None:
        self.ledger, self.client = ledger, client
        self.number = 0
        self.offered = 0
        self.single_429 = 0
        self.limiter = trio.CapacityLimiter(REQUESTS_CONCURRENT_MAX)

    def _bodies(self, count: int) -> tuple[list[str], list[dict[str, Any]]]:
        keys, bodies = [], []
        for _ in range(count):
            self.number += 1
            key = f"o{self.number}"
            body = self.ledger.submission(key, self.number)
            body["event_data"]["xs"] = _NUMBERS
            keys.append(key)
            bodies.append(body)
        self.offered += count
        return keys, bodies

    async def batch(self, count: int) -> None:
        """Offer ``count`` events in one batch; a request that cannot start at once counts as refused by us."""
        keys, bodies = self._bodies(count)
        if self.limiter.available_tokens == 0:
            self.ledger.refused += count  # the client's own bound on open requests: still offered, never sent
            return
        async with self.limiter:
            response = await self.client.post("/v1/events/batch", json={"events": bodies})
        from bench.crash import _record_batch

        _record_batch(self.ledger, keys, response)

    async def single(self) -> None:
        """Offer one event as a single POST: under overload it must be a 429 with Retry-After."""
        keys, bodies = self._bodies(1)
        response = await self.client.post("/v1/events", json=bodies[0])
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1, response.headers
            body = response.json()
            assert body["code"] == "too_many_requests" and set(body) == {"code", "message", "details", "request_id"}
            self.single_429 += 1
            self.ledger.refused += 1
        elif response.status_code == 202:
            self.ledger.acked[keys[0]] = response.json()["id"]
        else:
            self.ledger.unexpected.append(f"single: {response.status_code} {response.text[:200]}")


async def _sample_rss(pid: int, peak: list[float], stop: trio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb(pid))
        await trio.sleep(0.05)


async def _sustainable_rate(offer: Offer, flood_s: float) -> float:
    """Completions per second while the engine is saturated (flooded with batches of 100 for ``flood_s``)."""
    client = offer.client
    done_before = await engine_metric(client, "events_completed")
    started_s = time.monotonic()
    async with trio.open_nursery() as nursery:
        while time.monotonic() - started_s < flood_s:
            nursery.start_soon(offer.batch, 100)
            await trio.sleep(TICK_S)
    done_after = await engine_metric(client, "events_completed")
    return (done_after - done_before) / (time.monotonic() - started_s)


async def _overload(offer: Offer, rate_per_s: float, seconds: float) -> float:
    """Offer ``rate_per_s`` events/s for ``seconds`` on a fixed schedule, not waiting for answers.

    Open loop with catch-up: every tick sends whatever the schedule says is due by now (at most 1000 events per
    batch), so a late tick (the load generator shares the machine with the server) sends more, not less.

    Returns:
        The seconds from the first send to the last (answers may still be outstanding then).
    """
    started_s = time.monotonic()
    due_total = round(rate_per_s * seconds)
    sent = 0
    async with trio.open_nursery() as nursery:
        for tick in range(int(seconds / TICK_S) * 10):
            elapsed_s = time.monotonic() - started_s
            due = min(due_total, round(rate_per_s * min(elapsed_s, seconds))) - sent
            while due > 0:
                count = min(due, 1000)
                nursery.start_soon(offer.batch, count)
                sent, due = sent + count, due - count
            if tick % 2 == 0:
                nursery.start_soon(offer.single)
            if sent >= due_total:
                break
            await trio.sleep(TICK_S)
        sending_s = time.monotonic() - started_s
    return sending_s


async def overload_run(workdir: Path, *, seconds: float = 2.0, flood_s: float = 1.0) -> OverloadResult:
    """One run (see the module docstring). Raises AssertionError when a promise is broken."""
    server = ServerProcess.start(
        workdir / "data",
        {"SCRIP_ENGINE_INFLIGHT_EVENTS_MAX": str(INFLIGHT_MAX), "SCRIP_STORAGE_SYNC": "true"},
        log_name="overload",
    )
    try:
        async with server.client() as client:
            program_id, asset_id = await setup_program(client)
            await expect(
                client,
                "POST",
                "/v1/rules",
                201,
                json={
                    "program_id": program_id,
                    "name": "costly",
                    "condition": CONDITION,
                    "actions": [{"type": "CREDIT", "asset_id": asset_id, "amount": "1"}],
                },
            )
            ledger = AckLedger(program_id)
            offer = Offer(ledger, client)
            rss_start_mb, peak, stop = rss_mb(server.process.pid), [0.0], trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_sample_rss, server.process.pid, peak, stop)
                sustainable = await _sustainable_rate(offer, flood_s)
                offered_before = offer.offered
                sending_s = await _overload(offer, 3 * sustainable, seconds)
                offered_per_s = (offer.offered - offered_before) / sending_s
                stop.set()
            result = await _drain_and_check(client, ledger, offer, sustainable, offered_per_s, peak[0], rss_start_mb)
    finally:
        status = server.stop()
    assert status == 0, server.logs()[-2000:]
    return result


async def _drain_and_check(
    client: httpx.AsyncClient,
    ledger: AckLedger,
    offer: Offer,
    sustainable: float,
    offered_per_s: float,
    rss_peak_mb: float,
    rss_start_mb: float,
) -> OverloadResult:
    assert not ledger.unexpected, ledger.unexpected[:5]
    inflight_peak = int(await engine_metric(client, "events_inflight_peak"))
    drain_started_s = time.monotonic()
    with trio.fail_after(60):
        while await engine_metric(client, "events_inflight") > 0:
            await trio.sleep(0.05)
    drain_s = time.monotonic() - drain_started_s
    completed = await check_exactly_once(client, ledger, check_balances=False)
    return OverloadResult(
        sustainable_per_s=round(sustainable, 1),
        offered_per_s=round(offered_per_s, 1),
        offered=offer.offered,
        accepted=len(ledger.acked),
        refused=ledger.refused,
        single_429_with_retry_after=offer.single_429,
        inflight_peak=inflight_peak,
        rss_peak_mb=round(rss_peak_mb, 1),
        rss_start_mb=round(rss_start_mb, 1),
        drain_s=round(drain_s, 2),
        completed=completed,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.overload --seconds 10``: one JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the overload phase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scrip-overload-") as workdir:
        result = trio.run(lambda: overload_run(Path(workdir), seconds=args.seconds, flood_s=2.0))
    print(json.dumps(result.__dict__), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
