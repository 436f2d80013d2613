"""Crash harness: run the real server as a subprocess, load it over HTTP, SIGKILL it, restart it, check nothing is lost.

``python -m bench.crash --trials 20`` runs the long version and prints one JSON line. ``tests/reliability`` runs the
same trials at small scale (3 event trials, one fund/burn trial, one lot-expiry trial, one balance-operation trial,
one money-out trial — redemptions, reversals, transfers —, one full-disk trial, one budget trial across period
resets and one tier-boundary trial in bench/crash_tiers.py).

What one *event trial* checks, after a SIGKILL at a random moment and a restart on the same data directory:

* every event answered 202 exists, with the id it was answered with, and is COMPLETED (processed once);
* no event exists that was never sent (nothing invented), and every event that exists is one that was sent;
* the journal holds exactly one entry per event, and the participants' balances sum to the number of events;
* resubmitting acknowledged events (singly and in a batch) with their keys answers 202 with the original ids;
* ``scrip verify --data-dir`` passes after a clean stop.

Events sent but not answered when the process died are *uncertain*: each may or may not exist afterwards (it exists
exactly when its inbox record was committed before the kill), but if it exists it is processed exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

from scrip_actor._data_dir import check_data_file
from scrip_actor.errors import StoreUnusable

__all__ = [
    "API_KEY",
    "AckLedger",
    "ServerProcess",
    "TrialResult",
    "all_pages",
    "balance_operations_trial",
    "budget_trial",
    "event_trial",
    "expect",
    "expiry_trial",
    "fund_burn_trial",
    "map_full_trial",
    "money_out_trial",
    "run_verify",
    "setup_program",
]

REPO = Path(__file__).resolve().parents[1]
API_KEY = "sk_reliability_test_key"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 10.0
PARTICIPANTS = 7
# Free pages past the end of data.mdb found before each (re)start: LMDB's unwritten loose pages, which the open check
# accepts and the server then extends over. Counted so a run shows how often a crash left such a store behind.
FREE_TAILS: list[int] = []


@dataclass
class ServerProcess:
    """``python -m scrip_actor serve --port 0`` on a data directory; stdout and stderr go to files."""

    data_dir: Path
    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    @classmethod
    def start(cls, data_dir: Path, env: dict[str, str] | None = None, *, log_name: str = "server") -> ServerProcess:
        """Start a server and wait (at most ``START_TIMEOUT_S``) until it prints the port it is listening on."""
        logs = data_dir.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stamp = time.monotonic_ns()
        stdout_path, stderr_path = logs / f"{log_name}-{stamp}.out", logs / f"{log_name}-{stamp}.err"
        _note_free_tail(data_dir)
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scrip_actor",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--data-dir",
                    str(data_dir),
                ],
                cwd=REPO,
                env=server_environment(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline_s:
            for line in stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("scrip: listening on http://"):
                    return cls(data_dir, process, int(line.rsplit(":", 1)[1]), stdout_path, stderr_path)
            if process.poll() is not None:
                break
            time.sleep(0.02)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)
        raise RuntimeError(f"server did not start (exit {process.returncode}):\n{stderr_path.read_text()[-3000:]}")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = API_KEY) -> httpx.AsyncClient:
        """An async client for this server, carrying ``key`` (none if None)."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=HTTP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a power cut for the process (not for the disk)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM and wait for the graceful shutdown; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("server did not stop within the grace period") from None

    def logs(self) -> str:
        """Everything the server printed so far (stdout, then stderr)."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")


def server_environment(extra: dict[str, str] | None) -> dict[str, str]:
    """The environment of a server: this one without SCRIP_* settings, plus a key, fsync on, a quick sweeper."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SCRIP_")}
    env.update(
        {
            "SCRIP_API_KEY": API_KEY,
            "SCRIP_STORAGE_SYNC": "true",
            "SCRIP_STORAGE_LMDB_MAP_SIZE_BYTES": str(1 << 30),
            "SCRIP_ENGINE_SWEEP_INTERVAL_S": "0.05",
            "SCRIP_SERVER_SHUTDOWN_GRACE_S": "5",
        }
    )
    env.update(extra or {})
    return env


# Tests set this to False to check the store in-process (the same ``verify`` function, without a ~1 s interpreter
# start-up per trial); ``python -m bench.crash`` always runs the real command.
VERIFY_WITH_CLI = True


def run_verify(data_dir: Path) -> tuple[int, str]:
    """``python -m scrip_actor verify --data-dir`` (or the same check in-process): (exit status, output)."""
    if not VERIFY_WITH_CLI:
        from scrip_actor.config import load_config
        from scrip_actor.verify import verify

        report = verify(str(data_dir), load_config(environ=server_environment(None)))
        return (0 if report.ok else 1), "\n".join(report.problems)
    done = subprocess.run(
        [sys.executable, "-m", "scrip_actor", "verify", "--data-dir", str(data_dir)],
        cwd=REPO,
        env=server_environment(None),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


async def expect(client: httpx.AsyncClient, method: str, path: str, status: int, **kwargs: Any) -> Any:
    """Send a request, assert its status, return its JSON body (None for 204)."""
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status, (method, path, response.status_code, response.text[:500])
    return None if status == 204 else response.json()


async def all_pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list (bounded at 10,000 pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        page = await expect(client, "GET", path, 200, params=query)
        items.extend(page["data"])
        if not page["pagination"]["has_more"]:
            return items
        cursor = page["pagination"]["next_cursor"]
    raise AssertionError(f"{path}: more than 10,000 pages")


async def setup_program(
    client: httpx.AsyncClient,
    *,
    inventory_mode: str = "SIMPLE",
    issuance: str = "UNLIMITED",
    scale: int = 0,
    credit: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """A program, an asset and (if ``credit`` is given) one rule ``true -> CREDIT``: (program id, asset id)."""
    program = await expect(client, "POST", "/v1/programs", 201, json={"name": "reliability"})
    symbol = f"R{random.randrange(10**9)}"
    asset = await expect(
        client,
        "POST",
        "/v1/assets",
        201,
        json={
            "program_id": program["id"],
            "name": "Points",
            "symbol": symbol,
            "inventory_mode": inventory_mode,
            "issuance_policy": issuance,
            "scale": scale,
        },
    )
    if credit is not None:
        action = {"type": "CREDIT", "asset_id": asset["id"], **credit}
        await expect(
            client,
            "POST",
            "/v1/rules",
            201,
            json={"program_id": program["id"], "name": "one per event", "condition": "true", "actions": [action]},
        )
    return program["id"], asset["id"]


@dataclass
class AckLedger:
    """What the clients were told: acknowledged keys (with ids), keys in flight at the crash, refusals."""

    program_id: str
    acked: dict[str, str] = field(default_factory=dict)  # idempotency key -> event id answered with 202
    uncertain: set[str] = field(default_factory=set)  # sent, no answer (the server died)
    refused: int = 0  # a definitive non-202 answer (429 overload): nothing stored
    unexpected: list[str] = field(default_factory=list)  # any other answer: a failure of the trial
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)

    def submission(self, key: str, number: int) -> dict[str, Any]:
        """The body of event ``key`` (remembered, so a resubmission is byte-for-byte the same payload)."""
        body = {
            "program_id": self.program_id,
            "external_id": f"user{number % PARTICIPANTS}",
            "idempotency_key": key,
            "event_data": {"n": number, "type": "purchase"},
        }
        self.payloads[key] = body
        return body


async def drive_events(
    client: httpx.AsyncClient,
    ledger: AckLedger,
    client_index: int,
    rng: random.Random,
    stop: trio.Event,
    *,
    pause_s: float = 0.0,
) -> None:
    """Send singles and batches (1-25 events) until ``stop`` is set or the server stops answering."""
    number = 0
    while not stop.is_set():
        size = 1 if rng.random() < 0.5 else rng.randint(2, 25)
        keys = [f"c{client_index}-{number + i}" for i in range(size)]
        bodies = [ledger.submission(key, number + i) for i, key in enumerate(keys)]
        number += size
        try:
            if size == 1:
                response = await client.post("/v1/events", json=bodies[0])
                _record_single(ledger, keys[0], response)
            else:
                response = await client.post("/v1/events/batch", json={"events": bodies})
                _record_batch(ledger, keys, response)
        except httpx.TransportError:
            ledger.uncertain.update(keys)
            return
        if pause_s:
            await trio.sleep(pause_s)


def _record_single(ledger: AckLedger, key: str, response: httpx.Response) -> None:
    if response.status_code == 202:
        ledger.acked[key] = response.json()["id"]
    elif response.status_code == 429 and "Retry-After" in response.headers:
        ledger.refused += 1
    elif response.status_code == 500:
        ledger.uncertain.add(key)  # a request caught mid-shutdown; unacknowledged
    else:
        ledger.unexpected.append(f"{key}: {response.status_code} {response.text[:200]}")


def _record_batch(ledger: AckLedger, keys: list[str], response: httpx.Response) -> None:
    if response.status_code != 202:
        if response.status_code == 429:
            ledger.refused += len(keys)
        elif response.status_code == 500:
            ledger.uncertain.update(keys)
        else:
            ledger.unexpected.append(f"batch: {response.status_code} {response.text[:200]}")
        return
    for item in response.json()["results"]:
        key = keys[item["index"]]
        if item["status"] == "accepted":
            ledger.acked[key] = item["event"]["id"]
        elif item["error"]["code"] == "too_many_requests":
            ledger.refused += 1
        else:
            ledger.unexpected.append(f"{key}: {item['error']}")


async def wait_processed(client: httpx.AsyncClient, program_id: str, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Every event of the program, once none is PENDING or PROCESSING any more."""
    with trio.fail_after(timeout_s):
        while True:
            events = await all_pages(client, "/v1/events", program_id=program_id)
            if all(event["status"] in ("COMPLETED", "FAILED") for event in events):
                return events
            await trio.sleep(0.1)


async def check_exactly_once(client: httpx.AsyncClient, ledger: AckLedger, *, check_balances: bool = True) -> int:
    """Every acknowledged event exists with its id and is COMPLETED once; nothing else exists. Returns the count.

    With ``check_balances`` the participants' balances must sum to one point per event (not so for lots that
    expire: :func:`_check_lots` checks those).
    """
    events = await wait_processed(client, ledger.program_id)
    by_key = {event["idempotency_key"]: event for event in events}
    assert len(by_key) == len(events), "two events share an idempotency key"
    lost = [key for key, event_id in ledger.acked.items() if by_key.get(key, {}).get("id") != event_id]
    assert not lost, f"{len(lost)} acknowledged events lost or changed id, e.g. {lost[:5]}"
    invented = set(by_key) - set(ledger.acked) - ledger.uncertain
    assert not invented, f"events nobody sent (or that were refused): {sorted(invented)[:5]}"
    failed = [event["id"] for event in events if event["status"] != "COMPLETED"]
    assert not failed, f"{len(failed)} events not COMPLETED, e.g. {failed[:3]}"
    entries = await all_pages(client, "/v1/journal-entries", program_id=ledger.program_id)
    entry_events = [entry["event_id"] for entry in entries if entry["action_type"] == "CREDIT"]
    assert len(entry_events) == len(set(entry_events)), "an event produced two CREDIT entries (applied twice)"
    assert set(entry_events) == {event["id"] for event in events}, "an event has no CREDIT entry"
    if not check_balances:
        return len(events)
    total = 0
    for participant in await all_pages(client, "/v1/participants", program_id=ledger.program_id):
        balances = await expect(client, "GET", f"/v1/participants/{participant['id']}/balances", 200)
        total += sum(int(balance["available"]) for balance in balances["data"])
    assert total == len(events), f"balances sum to {total}, expected one point per event ({len(events)})"
    return len(events)


async def check_counter_history(client: httpx.AsyncClient, ledger: AckLedger) -> None:
    """Each participant's ``events`` counter equals its event count, and its state history holds exactly one
    ``set`` per event, counting 1, 2, 3... in order, each naming a distinct event of that participant: no change
    lost from the history and none recorded twice across the crash."""
    events = await wait_processed(client, ledger.program_id)
    by_participant: dict[str, set[str]] = {}
    for event in events:
        by_participant.setdefault(event["participant_id"], set()).add(event["id"])
    for participant_id, event_ids in by_participant.items():
        participant = await expect(client, "GET", f"/v1/participants/{participant_id}", 200)
        assert participant["counters"].get("events") == str(len(event_ids)), (participant_id, participant["counters"])
        history = await all_pages(
            client, f"/v1/participants/{participant_id}/activity/state-history", key="events", limit=100
        )
        assert [change["new_value"] for change in history] == [str(n) for n in range(1, len(event_ids) + 1)]
        assert {change["event_id"] for change in history} == event_ids, "a change names another event"


async def check_resubmission(client: httpx.AsyncClient, ledger: AckLedger, rng: random.Random) -> None:
    """Acknowledged events sent again with their keys (singly, then as one batch) answer 202 and the original ids."""
    keys = sorted(ledger.acked)
    for key in rng.sample(keys, min(20, len(keys))):
        again = await expect(client, "POST", "/v1/events", 202, json=ledger.payloads[key])
        assert again["id"] == ledger.acked[key], (key, again)
    sample = rng.sample(keys, min(20, len(keys)))
    if sample:
        batch = await expect(
            client, "POST", "/v1/events/batch", 202, json={"events": [ledger.payloads[key] for key in sample]}
        )
        assert [item["event"]["id"] for item in batch["results"]] == [ledger.acked[key] for key in sample]


@dataclass
class TrialResult:
    """The figures of one trial."""

    kind: str
    acknowledged: int
    uncertain: int
    existing: int
    killed_after_s: float
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


async def _load_and_kill(
    server: ServerProcess, ledger: AckLedger, rng: random.Random, kill_after_s: float, clients: int
) -> None:
    """Run ``clients`` concurrent event clients; SIGKILL the server after ``kill_after_s``."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for index in range(clients):
            http = server.client()
            nursery.start_soon(_closing, http, drive_events(http, ledger, index, random.Random(rng.random()), stop))
        await trio.sleep(kill_after_s)
        server.kill()
        stop.set()


async def _closing(client: httpx.AsyncClient, work: Any) -> None:
    async with client:
        await work


async def event_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 0.3, kill_max_s: float = 1.5, clients: int = 4
) -> TrialResult:
    """One event trial (see the module docstring)."""
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as client:
        program_id, _ = await setup_program(client, credit={"amount": "1"})
        counter = {"type": "COUNTER", "key": "events", "value": "1"}
        rule = {"program_id": program_id, "name": "count", "condition": "true", "actions": [counter]}
        await expect(client, "POST", "/v1/rules", 201, json=rule)
    ledger = AckLedger(program_id)
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    await _load_and_kill(server, ledger, rng, kill_after_s, clients)
    assert not ledger.unexpected, ledger.unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    try:
        async with server.client() as client:
            existing = await check_exactly_once(client, ledger)
            await check_counter_history(client, ledger)
            await check_resubmission(client, ledger, rng)
    finally:
        status = server.stop()
    assert status == 0, f"clean stop exited {status}: {server.logs()[-2000:]}"
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult(
        "events", len(ledger.acked), len(ledger.uncertain), existing, kill_after_s, time.monotonic() - started_s
    )


async def _fund_burn_loop(
    client: httpx.AsyncClient, program_id: str, asset_id: str, rng: random.Random, state: dict[str, Any]
) -> None:
    """Fund or burn, one call at a time, until the server dies; at most one call is ever unanswered."""
    for _ in range(1_000_000):
        kind = "fund" if rng.random() < 0.6 else "burn"
        amount = rng.randint(1, 100)
        state["pending"] = (kind, amount)
        try:
            response = await client.post(
                f"/v1/programs/{program_id}/assets/{asset_id}/{kind}", json={"amount": str(amount)}
            )
        except httpx.TransportError:
            return
        state["pending"] = None
        if response.status_code == 200:
            state["net"] += amount if kind == "fund" else -amount
            state["entries"][response.json()["journal_entry_id"]] = (kind, amount)
        elif response.status_code == 422:  # a burn beyond the balance: refused, nothing changed
            state["refused"] += 1
        else:
            state["unexpected"].append(f"{kind} {amount}: {response.status_code} {response.text[:200]}")


async def fund_burn_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 0.3, kill_max_s: float = 1.2
) -> TrialResult:
    """Kill during a loop of fund/burn calls.

    After the restart, ``wallet == Σ acknowledged funds − Σ acknowledged burns + δ``, where δ is 0 or the one
    call that was in flight when the process died (+amount for a fund, −amount for a burn): that call's entry
    either committed (then it is in the journal, exactly once) or not (then there is no trace of it). Every
    acknowledged entry id must be in the journal; at most one other FUND/BURN entry may exist, and only if a
    call was in flight, with that call's kind and amount.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    state: dict[str, Any] = {"net": 0, "entries": {}, "pending": None, "refused": 0, "unexpected": []}
    async with server.client() as client:
        program_id, asset_id = await setup_program(client, issuance="PREFUNDED")
        kill_after_s = rng.uniform(kill_min_s, kill_max_s)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_fund_burn_loop, client, program_id, asset_id, rng, state)
            await trio.sleep(kill_after_s)
            server.kill()
    assert not state["unexpected"], state["unexpected"][:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    try:
        async with server.client() as client:
            delta = await _check_wallet(client, program_id, asset_id, state)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult(
        "fund_burn",
        len(state["entries"]),
        int(state["pending"] is not None),
        len(state["entries"]) + int(delta != 0),
        kill_after_s,
        time.monotonic() - started_s,
        {"in_flight_committed": delta != 0, "refused": state["refused"]},
    )


async def _check_wallet(client: httpx.AsyncClient, program_id: str, asset_id: str, state: dict[str, Any]) -> int:
    """Check the wallet against the acknowledged operations; returns δ (the in-flight call's effect, or 0)."""
    entries = await all_pages(client, "/v1/journal-entries", program_id=program_id)
    wallet_entries = {entry["id"]: entry for entry in entries if entry["action_type"] in ("FUND", "BURN")}
    missing = set(state["entries"]) - set(wallet_entries)
    assert not missing, f"acknowledged wallet operations lost: {sorted(missing)[:5]}"
    extra = [wallet_entries[entry_id] for entry_id in set(wallet_entries) - set(state["entries"])]
    assert len(extra) <= (1 if state["pending"] else 0), f"unexplained wallet entries: {extra}"
    delta = 0
    if extra:
        kind, amount = state["pending"]
        assert extra[0]["action_type"] == kind.upper(), (extra[0], state["pending"])
        delta = amount if kind == "fund" else -amount
    balances = await expect(client, "GET", f"/v1/programs/{program_id}/balance", 200, params={"asset_id": asset_id})
    available = int(balances["data"][0]["available"])
    assert available == state["net"] + delta, (available, state["net"], delta)
    return delta


async def expiry_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 1.2, kill_max_s: float = 2.2
) -> TrialResult:
    """Kill while the sweeper expires lots (LOT asset, every credit expires 1 s after its event).

    Events keep arriving during the whole run, so at the kill some lots have expired, some are being expired and
    some are still young. After the restart: every lot is EXPIRED with exactly one EXPIRATION entry (its
    ``reference_id``), or (checked at the first look) not yet EXPIRED and due after the restart; once the sweeper
    has caught up, every lot is EXPIRED, every balance is 0, and verify passes.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as client:
        program_id, asset_id = await setup_program(
            client, inventory_mode="LOT", credit={"amount": "1", "expires_at": "1s"}
        )
    ledger = AckLedger(program_id)
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    stop = trio.Event()
    async with server.client() as client, trio.open_nursery() as nursery:
        nursery.start_soon(drive_events, client, ledger, 0, rng, stop)
        await trio.sleep(kill_after_s)
        server.kill()
        stop.set()
    assert not ledger.unexpected, ledger.unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    try:
        async with server.client() as client:
            existing = await check_exactly_once(client, ledger, check_balances=False)
            lots = await _check_lots(client, program_id, asset_id, existing)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult(
        "expiry",
        len(ledger.acked),
        len(ledger.uncertain),
        existing,
        kill_after_s,
        time.monotonic() - started_s,
        {"lots": lots},
    )


async def _lots_and_expirations(
    client: httpx.AsyncClient, program_id: str, asset_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The EXPIRATION entries, then the lots, then the entries again.

    The sweeper runs while this reads, and the API has no snapshot across calls; a lot only moves forward
    (AVAILABLE to EXPIRED, with its entry in the same commit). So a lot read as not expired has no entry in the
    read before it, and a lot read as EXPIRED has its entry in the read after it: the checks use each read
    where it is exact.
    """

    async def expirations() -> list[dict[str, Any]]:
        entries = await all_pages(client, "/v1/journal-entries", asset_id=asset_id)
        return [entry for entry in entries if entry["action_type"] == "EXPIRATION"]

    before = await expirations()
    lots: list[dict[str, Any]] = []
    for participant in await all_pages(client, "/v1/participants", program_id=program_id):
        lots += await all_pages(client, f"/v1/participants/{participant['id']}/balances/lots", asset_id=asset_id)
    return lots, before, await expirations()


async def _check_lots(client: httpx.AsyncClient, program_id: str, asset_id: str, events: int) -> int:
    """The lot invariants after a restart (see :func:`expiry_trial`); returns the number of lots."""
    restarted_at = time.time()
    lots, before, after = await _lots_and_expirations(client, program_id, asset_id)
    assert len(lots) == events, f"{len(lots)} lots for {events} events"
    _check_expired_lots(lots, before, after, restarted_at)
    with trio.fail_after(30):
        while any(lot["status"] != "EXPIRED" for lot in lots):
            await trio.sleep(0.1)
            lots, before, after = await _lots_and_expirations(client, program_id, asset_id)
    _check_expired_lots(lots, before, after, restarted_at)
    for participant in await all_pages(client, "/v1/participants", program_id=program_id):
        balances = await expect(client, "GET", f"/v1/participants/{participant['id']}/balances", 200)
        assert all(int(balance["available"]) == 0 for balance in balances["data"]), balances
    return len(lots)


def _check_expired_lots(
    lots: list[dict[str, Any]], before: list[dict[str, Any]], after: list[dict[str, Any]], restarted_at: float
) -> None:
    """Each lot expired at most once; an EXPIRED lot has its entry (read after it), a live one none (read before)."""
    counts = _count_by_lot(after)
    assert all(count == 1 for count in counts.values()), "a lot expired twice"
    assert set(counts) <= {lot["id"] for lot in lots}, "an EXPIRATION entry names no lot"
    expired_before = _count_by_lot(before)
    for lot in lots:
        if lot["status"] == "EXPIRED":
            assert counts.get(lot["id"]) == 1 and int(lot["remaining"]) == 0, lot
        else:
            assert lot["id"] not in expired_before, f"lot has an EXPIRATION entry but is {lot['status']}"
            expires_s = _epoch_s(lot["expires_at"])
            assert expires_s > restarted_at - 60, lot  # due after the restart, or swept soon after it


def _count_by_lot(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["reference_id"]] = counts.get(entry["reference_id"], 0) + 1
    return counts


def _epoch_s(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# --- balance operations: adjust, hold, release with idempotency keys ----------------------------------------------


@dataclass
class OperationStream:
    """One client's operations on its own participant, one at a time, each with a unique idempotency key.

    ``available``/``held`` model the participant's LOT balance from the acknowledged operations alone (the client
    is the only one touching it, so a model refusal never happens); ``pending`` is the one call unanswered when
    the server died, if any.
    """

    participant_id: str
    available: int = 0
    held: int = 0
    acked: dict[str, tuple[str, str, dict[str, Any]]] = field(default_factory=dict)  # key -> (entry id, kind, body)
    pending: tuple[str, str, dict[str, Any]] | None = None  # (key, kind, body)
    unexpected: list[str] = field(default_factory=list)

    def apply(self, kind: str, amount: int) -> None:
        """The model's effect of an operation that took place."""
        if kind == "adjust":
            self.available += amount
        elif kind == "hold":
            self.available, self.held = self.available - amount, self.held + amount
        else:
            self.available, self.held = self.available + amount, self.held - amount


_OPERATION_ACTIONS = {"adjust": "ADJUST", "hold": "HOLD", "release": "RELEASE"}


def _next_operation(stream: OperationStream, rng: random.Random, program_id: str, asset_id: str, key: str) -> Any:
    """(kind, body): a release or a hold the model can cover, else an adjust CREDIT."""
    base = {"program_id": program_id, "asset_id": asset_id, "description": "crash trial", "idempotency_key": key}
    draw = rng.random()
    if stream.held and draw < 0.3:
        return "release", {**base, "amount": str(rng.randint(1, stream.held))}
    if stream.available and draw < 0.7:
        return "hold", {**base, "amount": str(rng.randint(1, stream.available)), "reference_id": f"ref-{key}"}
    return "adjust", {**base, "type": "CREDIT", "amount": str(rng.randint(1, 50))}


async def _operation_loop(
    client: httpx.AsyncClient, stream: OperationStream, program_id: str, asset_id: str, rng: random.Random
) -> None:
    """Adjust, hold, release until the server dies; only a 200 counts as acknowledged."""
    for number in range(1_000_000):
        key = f"{stream.participant_id}-{number}"
        kind, body = _next_operation(stream, rng, program_id, asset_id, key)
        stream.pending = (key, kind, body)
        try:
            response = await client.post(f"/v1/participants/{stream.participant_id}/balances/{kind}", json=body)
        except httpx.TransportError:
            return
        stream.pending = None
        if response.status_code != 200:
            stream.unexpected.append(f"{kind} {body}: {response.status_code} {response.text[:200]}")
            return
        stream.acked[key] = (response.json()["journal_entry_id"], kind, body)
        stream.apply(kind, int(body["amount"]))


async def balance_operations_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 0.3, kill_max_s: float = 1.2, clients: int = 6
) -> TrialResult:
    """Kill during streams of adjust/hold/release calls, each with its own idempotency key (a LOT asset).

    After the restart, per participant: every acknowledged operation's entry exists, and re-sending it with its key
    answers the same ``journal_entry_id`` without changing the balance; the one call in flight at the kill exists
    at most once — re-sending it answers its entry if it committed, or applies it now, once (a second re-send
    answers the same); the balances are the model of what took place and the sums of the participant's postings;
    and ``scrip verify`` passes after a clean stop.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as client:
        program_id, asset_id = await setup_program(client, inventory_mode="LOT")
        streams = []
        for index in range(clients):
            created = await expect(client, "POST", "/v1/participants", 201, json={"external_id": f"op{index}"})
            streams.append(OperationStream(created["id"]))
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    async with trio.open_nursery() as nursery:
        for stream in streams:
            http = server.client()
            seeded = random.Random(rng.random())
            nursery.start_soon(_closing, http, _operation_loop(http, stream, program_id, asset_id, seeded))
        await trio.sleep(kill_after_s)
        server.kill()
    unexpected = [problem for stream in streams for problem in stream.unexpected]
    assert not unexpected, unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    committed = 0
    try:
        async with server.client() as client:
            for stream in streams:
                committed += await _check_operations(client, stream, asset_id, rng)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    acknowledged = sum(len(stream.acked) for stream in streams)
    in_flight = sum(stream.pending is not None for stream in streams)
    return TrialResult(
        "balance_operations",
        acknowledged,
        in_flight,
        acknowledged + committed,
        kill_after_s,
        time.monotonic() - started_s,
        {"in_flight_committed": committed},
    )


async def _operation_entries(client: httpx.AsyncClient, participant_id: str) -> dict[str, dict[str, Any]]:
    entries = await all_pages(client, "/v1/journal-entries", participant_id=participant_id)
    return {entry["id"]: entry for entry in entries if entry["action_type"] in _OPERATION_ACTIONS.values()}


async def _check_operations(
    client: httpx.AsyncClient, stream: OperationStream, asset_id: str, rng: random.Random
) -> int:
    """The promises of :func:`balance_operations_trial` for one stream; returns 1 if its in-flight call committed."""
    entries = await _operation_entries(client, stream.participant_id)
    acked_ids = {entry_id for entry_id, _, _ in stream.acked.values()}
    missing = acked_ids - set(entries)
    assert not missing, f"acknowledged operations lost: {sorted(missing)[:5]}"
    extra = [entries[entry_id] for entry_id in set(entries) - acked_ids]
    assert len(extra) <= (1 if stream.pending else 0), f"operations nobody acknowledged or sent: {extra}"
    for entry_id, kind, body in stream.acked.values():
        _check_operation_entry(entries[entry_id], stream.participant_id, kind, int(body["amount"]))
    if extra:
        assert stream.pending is not None
        _, kind, body = stream.pending
        _check_operation_entry(extra[0], stream.participant_id, kind, int(body["amount"]))
        stream.apply(kind, int(body["amount"]))
    await _check_balance(client, stream, asset_id)
    path = f"/v1/participants/{stream.participant_id}/balances/"
    for key in rng.sample(sorted(stream.acked), min(30, len(stream.acked))):
        entry_id, kind, body = stream.acked[key]
        again = await expect(client, "POST", path + kind, 200, json=body)
        assert again["journal_entry_id"] == entry_id, (key, again, entry_id)
    await _check_balance(client, stream, asset_id)  # the replays changed nothing
    if stream.pending is not None:
        key, kind, body = stream.pending
        resent = await expect(client, "POST", path + kind, 200, json=body)
        if extra:
            assert resent["journal_entry_id"] == extra[0]["id"], (key, resent, extra[0])
        else:
            stream.apply(kind, int(body["amount"]))  # it never committed: now it took place, once
        twice = await expect(client, "POST", path + kind, 200, json=body)
        assert twice["journal_entry_id"] == resent["journal_entry_id"], (key, twice, resent)
        await _check_balance(client, stream, asset_id)
        assert len(await _operation_entries(client, stream.participant_id)) == len(stream.acked) + 1
    return len(extra)


def _check_operation_entry(entry: dict[str, Any], participant_id: str, kind: str, amount: int) -> None:
    """The entry of an operation: its action type, and the participant's postings for its amount."""
    assert entry["action_type"] == _OPERATION_ACTIONS[kind], (entry, kind)
    mine = sorted((p["bucket"], int(p["amount"])) for p in entry["postings"] if p["entity_id"] == participant_id)
    wanted = {
        "adjust": [("AVAILABLE", amount)],
        "hold": [("AVAILABLE", -amount), ("HELD", amount)],
        "release": [("AVAILABLE", amount), ("HELD", -amount)],
    }[kind]
    assert mine == wanted, (entry, kind, amount)


async def _check_balance(client: httpx.AsyncClient, stream: OperationStream, asset_id: str) -> None:
    """The participant's balance is the model's, and the sum of its postings, bucket by bucket."""
    shown, summed = await _balance_shown_and_summed(client, stream.participant_id, asset_id)
    assert shown == summed, (shown, summed)
    assert shown == (stream.available, stream.held, 0), (shown, stream.available, stream.held)


async def _balance_shown_and_summed(
    client: httpx.AsyncClient, participant_id: str, asset_id: str
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(available, held, deferred) as the balance shows them, and as the sums of the participant's postings."""
    balances = await expect(
        client, "GET", f"/v1/participants/{participant_id}/balances", 200, params={"asset_id": asset_id}
    )
    [balance] = balances["data"]
    shown = (int(balance["available"]), int(balance["held"]), int(balance["deferred"]))
    sums = {"AVAILABLE": 0, "HELD": 0, "DEFERRED": 0}
    for entry in await all_pages(client, "/v1/journal-entries", participant_id=participant_id):
        for posting in entry["postings"]:
            if posting["entity_id"] == participant_id and posting["asset_id"] == asset_id:
                sums[posting["bucket"]] += int(posting["amount"])
    return shown, (sums["AVAILABLE"], sums["HELD"], sums["DEFERRED"])


# --- money out: redemptions, partial reversals and transfers with idempotency keys --------------------------------

_MONEY_ACTIONS = {"adjust": "ADJUST", "redeem": "REDEMPTION", "reverse": "REDEMPTION_REVERSAL", "transfer": "TRANSFER"}
# A fresh key answers 201, except adjust, which answers 200 either way (docs/money-out.md).
_MONEY_CREATED = {"adjust": 200, "redeem": 201, "reverse": 201, "transfer": 201}
MONEY_OPENING_CREDIT = 200  # each participant's first call: an acknowledged adjust before the kill timer starts


@dataclass
class MoneyCall:
    """One call of a money-out client: what it sent, what it does to AVAILABLE, and (once answered) its entry."""

    key: str
    kind: str  # adjust, redeem, reverse, transfer
    owner: str  # the participant whose client sent it: the one credited, the one spending, or the source
    path: str
    body: dict[str, Any]
    effects: dict[str, int]  # participant id -> change of its AVAILABLE
    redemption_id: str | None = None  # a reversal's target; a redemption's own id once answered (or found)
    entry_id: str | None = None


@dataclass
class MoneyClient:
    """One client of :func:`money_out_trial`, the only one that spends from its participant.

    Others may transfer value *in* at any moment, never out, so ``floor`` — AVAILABLE from this client's
    acknowledged calls alone — is a lower bound of the real balance: a call sized within it is never refused.
    ``unreversed`` holds, per acknowledged redemption, what its acknowledged reversals left to reverse.
    """

    participant_id: str
    others: list[str]
    floor: int = 0
    acked: list[MoneyCall] = field(default_factory=list)
    pending: MoneyCall | None = None  # the one call unanswered when the server died, if any
    unreversed: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)

    def acknowledge(self, call: MoneyCall, answer: dict[str, Any]) -> None:
        """A 2xx arrived: the call took place, with the entry (and for a redemption, the id) it was answered."""
        call.entry_id = answer["journal_entry_id"]
        if call.kind == "redeem":
            call.redemption_id = answer["id"]
            self.unreversed[answer["id"]] = int(call.body["amount"])
        elif call.kind == "reverse":
            assert call.redemption_id is not None
            self.unreversed[call.redemption_id] -= int(call.body["amount"])
            if not self.unreversed[call.redemption_id]:
                del self.unreversed[call.redemption_id]
        self.floor += call.effects[self.participant_id]
        self.acked.append(call)


def _money_call(client: MoneyClient, kind: str, key: str, body: dict[str, Any], **fields: Any) -> MoneyCall:
    me = client.participant_id
    path = {
        "adjust": f"/v1/participants/{me}/balances/adjust",
        "redeem": f"/v1/participants/{me}/redemptions",
        "reverse": f"/v1/redemptions/{fields.get('redemption_id')}/reverse",
        "transfer": "/v1/transfers",
    }[kind]
    return MoneyCall(key, kind, me, path, {**body, "idempotency_key": key}, **fields)


def _next_money_call(client: MoneyClient, rng: random.Random, program_id: str, asset_id: str, key: str) -> MoneyCall:
    """A partial reversal of an acknowledged redemption, a redemption or a transfer within ``floor``, or a credit."""
    me = client.participant_id
    base = {"program_id": program_id, "asset_id": asset_id, "description": "crash trial"}
    draw = rng.random()
    if client.unreversed and draw < 0.3:
        target = rng.choice(sorted(client.unreversed))
        amount = rng.randint(1, client.unreversed[target])
        body = {"reason": "crash trial", "amount": str(amount)}
        return _money_call(client, "reverse", key, body, effects={me: amount}, redemption_id=target)
    if client.floor and draw < 0.6:
        amount = rng.randint(1, min(client.floor, 40))
        return _money_call(client, "redeem", key, {**base, "amount": str(amount)}, effects={me: -amount})
    if client.floor and draw < 0.9:
        recipients = rng.sample(client.others, rng.randint(1, min(3, client.floor, len(client.others))))
        share_max = min(20, client.floor // len(recipients))
        amounts = {recipient: rng.randint(1, share_max) for recipient in recipients}
        body = {
            **base,
            "source_participant_id": me,
            "recipients": [{"participant_id": who, "amount": str(amount)} for who, amount in amounts.items()],
        }
        return _money_call(client, "transfer", key, body, effects={me: -sum(amounts.values()), **amounts})
    amount = rng.randint(1, 50)
    return _money_call(client, "adjust", key, {**base, "type": "CREDIT", "amount": str(amount)}, effects={me: amount})


async def _send_money_call(http: httpx.AsyncClient, client: MoneyClient, call: MoneyCall) -> bool:
    """Send one call; True once it is acknowledged. False (and ``pending`` set) if the server died first."""
    client.pending = call
    try:
        response = await http.post(call.path, json=call.body)
    except httpx.TransportError:
        return False
    client.pending = None
    if response.status_code != _MONEY_CREATED[call.kind]:  # every key is fresh, and every call sized to succeed
        client.unexpected.append(f"{call.kind} {call.body}: {response.status_code} {response.text[:200]}")
        return False
    client.acknowledge(call, response.json())
    return True


async def _money_out_loop(
    http: httpx.AsyncClient, client: MoneyClient, program_id: str, asset_id: str, rng: random.Random
) -> None:
    """Reverse, redeem, transfer, credit — one call at a time — until the server dies."""
    for number in range(1, 1_000_000):
        call = _next_money_call(client, rng, program_id, asset_id, f"{client.participant_id}-{number}")
        if not await _send_money_call(http, client, call):
            return


async def money_out_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 0.3, kill_max_s: float = 1.2, clients: int = 6
) -> TrialResult:
    """Kill during streams of redemptions, partial reversals and transfers, each with its own idempotency key.

    Each client spends from its own participant (a LOT asset): it redeems, partly reverses its acknowledged
    redemptions, transfers to 1-3 of the other participants, and now and then credits itself. Transfers make the
    participants' balances depend on each other, so the checks after the restart are over all of them at once:

    * every acknowledged call's entry exists once, with its action type, its redemption as ``reference_id``
      (redemptions and reversals) and its postings (a transfer: one entry, the source −total, each recipient
      +its amount); any other entry is the one call in flight of the client that owns it, matching that call;
    * each redemption's ``reversed_amount`` is the sum of its reversals that took place, within its amount, and
      its ``status`` follows;
    * every balance is what the calls that took place made it, and the sum of the participant's postings;
    * re-sending acknowledged calls answers 200 with the same ``journal_entry_id`` and changes no balance;
      re-sending an in-flight call answers its entry if it committed, or applies it now, once;
    * ``scrip verify`` passes after a clean stop.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as http:
        program_id, asset_id = await setup_program(http, inventory_mode="LOT")
        ids = [
            (await expect(http, "POST", "/v1/participants", 201, json={"external_id": f"money{index}"}))["id"]
            for index in range(clients)
        ]
        money_clients = [MoneyClient(me, [other for other in ids if other != me]) for me in ids]
        for client in money_clients:
            body = {"program_id": program_id, "asset_id": asset_id, "description": "opening", "type": "CREDIT"}
            body["amount"] = str(MONEY_OPENING_CREDIT)
            effects = {client.participant_id: MONEY_OPENING_CREDIT}
            call = _money_call(client, "adjust", f"{client.participant_id}-0", body, effects=effects)
            assert await _send_money_call(http, client, call), client.unexpected
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    async with trio.open_nursery() as nursery:
        for client in money_clients:
            http = server.client()
            seeded = random.Random(rng.random())
            nursery.start_soon(_closing, http, _money_out_loop(http, client, program_id, asset_id, seeded))
        await trio.sleep(kill_after_s)
        server.kill()
    unexpected = [problem for client in money_clients for problem in client.unexpected]
    assert not unexpected, unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    try:
        async with server.client() as http:
            committed = await _check_money_out(http, money_clients, asset_id, rng)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    acked = [call for client in money_clients for call in client.acked]
    in_flight = sum(client.pending is not None for client in money_clients)
    by_kind = {kind: sum(call.kind == kind for call in acked) for kind in _MONEY_ACTIONS}
    return TrialResult(
        "money_out",
        len(acked),
        in_flight,
        len(acked) + committed,
        kill_after_s,
        time.monotonic() - started_s,
        {"in_flight_committed": committed, "acknowledged_by_kind": by_kind},
    )


async def _check_money_out(
    http: httpx.AsyncClient, clients: list[MoneyClient], asset_id: str, rng: random.Random
) -> int:
    """The promises of :func:`money_out_trial`; returns how many in-flight calls had committed."""
    participant_ids = [client.participant_id for client in clients]
    acked = [call for client in clients for call in client.acked]
    pending = [client.pending for client in clients if client.pending is not None]
    entries = await _money_entries(http, asset_id)
    missing = [call for call in acked if call.entry_id not in entries]
    assert not missing, f"acknowledged calls lost: {missing[:3]}"
    committed = _match_in_flight(entries, acked, pending, participant_ids)
    for call in acked + committed:
        assert call.entry_id is not None
        _check_money_entry(entries[call.entry_id], call, participant_ids)
    await _check_redemptions(http, acked + committed)
    await _check_money_balances(http, participant_ids, asset_id, acked + committed)
    for call in rng.sample(acked, min(30 * len(clients), len(acked))):  # as many per client as the other trial
        again = await expect(http, "POST", call.path, 200, json=call.body)
        assert again["journal_entry_id"] == call.entry_id, (call, again)
        assert call.kind != "redeem" or again["id"] == call.redemption_id, (call, again)
    await _check_money_balances(http, participant_ids, asset_id, acked + committed)  # the replays changed nothing
    committed_keys = {call.key for call in committed}
    for call in pending:
        await _resend_in_flight(http, call, call.key in committed_keys, participant_ids)
    assert len(await _money_entries(http, asset_id)) == len(acked) + len(pending), "a re-send applied a call twice"
    await _check_redemptions(http, acked + pending)
    await _check_money_balances(http, participant_ids, asset_id, acked + pending)
    return len(committed)


async def _money_entries(http: httpx.AsyncClient, asset_id: str) -> dict[str, dict[str, Any]]:
    """The asset's entries of the money-out kinds, by id (each id listed once)."""
    listed = await all_pages(http, "/v1/journal-entries", asset_id=asset_id)
    entries = {entry["id"]: entry for entry in listed if entry["action_type"] in _MONEY_ACTIONS.values()}
    assert len(entries) == sum(entry["action_type"] in _MONEY_ACTIONS.values() for entry in listed), "an id twice"
    return entries


def _match_in_flight(
    entries: dict[str, dict[str, Any]], acked: list[MoneyCall], pending: list[MoneyCall], participant_ids: list[str]
) -> list[MoneyCall]:
    """The in-flight calls that committed: each entry nobody acknowledged must be one, found by owner and kind.

    A client has at most one call in flight, so (owner, action type) names it: the participant spending (a
    redemption, a transfer's source) or credited (a reversal, an adjust). Found calls get their entry id.
    """
    acked_ids = {call.entry_id for call in acked}
    by_owner = {(call.owner, _MONEY_ACTIONS[call.kind]): call for call in pending}
    committed: list[MoneyCall] = []
    for entry_id, entry in entries.items():
        if entry_id in acked_ids:
            continue
        deltas = _participant_deltas(entry, participant_ids)
        spenders = [who for who, delta in deltas.items() if delta < 0]
        owner = spenders[0] if spenders else next(iter(deltas), None)
        call = by_owner.pop((owner, entry["action_type"]), None)
        assert call is not None, f"an entry nobody acknowledged, or a second one of an in-flight call: {entry}"
        call.entry_id = entry_id
        if call.kind == "redeem":
            call.redemption_id = entry["reference_id"]
        committed.append(call)
    return committed


def _participant_deltas(entry: dict[str, Any], participant_ids: list[str]) -> dict[str, int]:
    """What the entry does to each trial participant's AVAILABLE (asserting it touches no other bucket of theirs)."""
    deltas: dict[str, int] = {}
    for posting in entry["postings"]:
        if posting["entity_id"] in participant_ids:
            assert posting["bucket"] == "AVAILABLE", (entry, posting)
            deltas[posting["entity_id"]] = deltas.get(posting["entity_id"], 0) + int(posting["amount"])
    return deltas


def _check_money_entry(entry: dict[str, Any], call: MoneyCall, participant_ids: list[str]) -> None:
    """The entry of a call: its action type, its redemption (if it has one), and its postings."""
    assert entry["action_type"] == _MONEY_ACTIONS[call.kind], (entry, call)
    if call.kind in ("redeem", "reverse"):
        assert entry["reference_id"] == call.redemption_id, (entry, call)
    assert _participant_deltas(entry, participant_ids) == call.effects, (entry, call)


async def _check_redemptions(http: httpx.AsyncClient, calls: list[MoneyCall]) -> None:
    """Each redemption shows its amount, the sum of its reversals that took place (never more) and its status."""
    reversed_by: dict[str | None, int] = {}
    for call in calls:
        if call.kind == "reverse":
            reversed_by[call.redemption_id] = reversed_by.get(call.redemption_id, 0) + int(call.body["amount"])
    for call in calls:
        if call.kind != "redeem":
            continue
        shown = await expect(http, "GET", f"/v1/redemptions/{call.redemption_id}", 200)
        amount, reversed_amount = int(shown["amount"]), int(shown["reversed_amount"])
        assert amount == int(call.body["amount"]), (shown, call)
        assert reversed_amount == reversed_by.get(call.redemption_id, 0), (shown, reversed_by.get(call.redemption_id))
        assert reversed_amount <= amount, shown
        status = (
            "COMPLETED"
            if not reversed_amount
            else "FULLY_REVERSED"
            if reversed_amount == amount
            else "PARTIALLY_REVERSED"
        )
        assert shown["status"] == status, shown


async def _check_money_balances(
    http: httpx.AsyncClient, participant_ids: list[str], asset_id: str, calls: list[MoneyCall]
) -> None:
    """Every balance is what ``calls`` made it, and the sum of the participant's postings."""
    expected = dict.fromkeys(participant_ids, 0)
    for call in calls:
        for who, delta in call.effects.items():
            expected[who] += delta
    for participant_id in participant_ids:
        shown, summed = await _balance_shown_and_summed(http, participant_id, asset_id)
        assert shown == summed, (participant_id, shown, summed)
        assert shown == (expected[participant_id], 0, 0), (participant_id, shown, expected[participant_id])


async def _resend_in_flight(
    http: httpx.AsyncClient, call: MoneyCall, committed: bool, participant_ids: list[str]
) -> None:
    """Re-send the call in flight at the kill: its entry if it committed, else it takes place now; then once more."""
    resent = await expect(http, "POST", call.path, 200 if committed else _MONEY_CREATED[call.kind], json=call.body)
    if committed:
        assert resent["journal_entry_id"] == call.entry_id, (call, resent)
    else:
        call.entry_id = resent["journal_entry_id"]
        call.redemption_id = resent["id"] if call.kind == "redeem" else call.redemption_id
        entry = await expect(http, "GET", f"/v1/journal-entries/{call.entry_id}", 200)
        _check_money_entry(entry, call, participant_ids)
    twice = await expect(http, "POST", call.path, 200, json=call.body)
    assert twice["journal_entry_id"] == call.entry_id, (call, twice)


async def map_full_trial(workdir: Path, rng: random.Random, *, map_size_bytes: int = 1 << 20) -> TrialResult:
    """A store too small for the load (an LMDB map that fills up): the server must stop with a clear message.

    Fail-stop is the promise: when a commit fails the writer raises and the process exits non-zero, within a
    bounded time, saying why; no request is acknowledged that was not committed. After a restart with a bigger
    map every acknowledged event is there, processed exactly once, and verify passes.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    small = {"SCRIP_STORAGE_LMDB_MAP_SIZE_BYTES": str(map_size_bytes)}
    server = ServerProcess.start(data_dir, small)
    async with server.client() as client:
        program_id, _ = await setup_program(client, credit={"amount": "1"})
    ledger = AckLedger(program_id)
    stop = trio.Event()
    with trio.move_on_after(60):
        async with trio.open_nursery() as nursery:
            for index in range(2):
                http = server.client()
                nursery.start_soon(_closing, http, drive_events(http, ledger, index, random.Random(rng.random()), stop))
            while server.process.poll() is None:
                await trio.sleep(0.05)
            stop.set()
    exited = server.process.poll()
    logs = server.logs()
    assert exited is not None, "the server neither stopped nor refused: it is still running with a full map"
    assert exited == 3, f"a failed commit must stop the server with status 3, got {exited}:\n{logs[-2000:]}"
    assert "scrip: stopped: the store could not commit" in logs and "MDB_MAP_FULL" in logs, logs[-2000:]
    assert not ledger.unexpected, ledger.unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="bigger-map")
    try:
        async with server.client() as client:
            existing = await check_exactly_once(client, ledger)
    finally:
        assert server.stop() == 0
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    message = next(line for line in logs.splitlines() if line.startswith("scrip: stopped:"))
    return TrialResult(
        "map_full",
        len(ledger.acked),
        len(ledger.uncertain),
        existing,
        0.0,
        time.monotonic() - started_s,
        {"exit_status": exited, "message": message},
    )


async def _tier_boundary_trial(workdir: Path, rng: random.Random) -> TrialResult:
    from bench.crash_tiers import tier_boundary_trial  # it builds on this module: imported on use

    return await tier_boundary_trial(workdir, rng)


BUDGET_LIMIT = 5  # points per period: far below what the clients ask for, so every period is used up
BUDGET_PERIOD = timedelta(seconds=1)


async def budget_trial(
    workdir: Path, rng: random.Random, *, kill_min_s: float = 0.6, kill_max_s: float = 1.6, clients: int = 4
) -> TrialResult:
    """Kill across budget resets: a rule credits 1 per event under a budget of 5 per second (INTERVAL "1s").

    The clients ask for far more than 5 a second, so every period is used up and most matches are skipped
    (BUDGET_EXCEEDED); the kill lands at a random moment, often between a period's last credit and the next
    period's first, and the restart (over a second) makes the stored period stale. After it: every acknowledged
    event exists once and is COMPLETED; an event MATCHED has exactly one CREDIT entry, a SKIPPED one none; no
    period of the schedule's grid (its start is ``next_reset_at`` less one period) got more than 5 credits, before
    the kill or after; the balances sum to the credits; a reset by hand answered just before a second SIGKILL is
    kept (consumed 0, the grid it started); and verify recounts every budget from the journal.
    """
    started_s = time.monotonic()
    data_dir = workdir / "data"
    server = ServerProcess.start(data_dir)
    async with server.client() as client:
        program_id, asset_id = await setup_program(client)
        rule = await expect(
            client,
            "POST",
            "/v1/rules",
            201,
            json={
                "program_id": program_id,
                "name": "budgeted",
                "condition": "true",
                "actions": [{"type": "CREDIT", "asset_id": asset_id, "amount": "1"}],
                "budgets": [
                    {"asset_id": asset_id, "limit": str(BUDGET_LIMIT), "schedule_type": "INTERVAL", "interval": "1s"}
                ],
            },
        )
    grid_start = datetime.fromisoformat(rule["budgets"][0]["next_reset_at"]) - BUDGET_PERIOD
    ledger = AckLedger(program_id)
    kill_after_s = rng.uniform(kill_min_s, kill_max_s)
    await _load_and_kill(server, ledger, rng, kill_after_s, clients)
    assert not ledger.unexpected, ledger.unexpected[:5]
    server = ServerProcess.start(data_dir, log_name="restarted")
    async with server.client() as client:
        burst = [ledger.submission(f"after-{n}", n) for n in range(3 * BUDGET_LIMIT)]  # a stale period's first touch
        accepted = await expect(client, "POST", "/v1/events/batch", 202, json={"events": burst})
        ledger.acked.update(
            (body["idempotency_key"], item["event"]["id"])
            for body, item in zip(burst, accepted["results"], strict=True)
        )
        credits, existing = await _check_budgeted_events(client, ledger, asset_id, grid_start)
        answered = await expect(
            client, "POST", f"/v1/rules/{rule['id']}/reset-budget", 200, params={"asset_id": asset_id}
        )
    server.kill()  # right after the answer: a reset answered is durable
    server = ServerProcess.start(data_dir, log_name="after-reset")
    try:
        async with server.client() as client:
            shown = (await expect(client, "GET", f"/v1/rules/{rule['id']}", 200))["budgets"][0]
    finally:
        assert server.stop() == 0
    assert shown["consumed"] == "0", shown
    moved = datetime.fromisoformat(shown["next_reset_at"]) - datetime.fromisoformat(answered["next_reset_at"])
    assert moved % BUDGET_PERIOD == timedelta(0), (answered, shown)  # the grid the reset by hand began
    verified, output = run_verify(data_dir)
    assert verified == 0, output
    return TrialResult(
        "budget",
        len(ledger.acked),
        len(ledger.uncertain),
        existing,
        kill_after_s,
        time.monotonic() - started_s,
        {"credits": credits},
    )


async def _check_budgeted_events(
    client: httpx.AsyncClient, ledger: AckLedger, asset_id: str, grid_start: datetime
) -> tuple[int, int]:
    """Exactly once, and no period of the grid over the budget (see :func:`budget_trial`): (credits, events)."""
    events = await wait_processed(client, ledger.program_id)
    by_key = {event["idempotency_key"]: event for event in events}
    lost = [key for key, event_id in ledger.acked.items() if by_key.get(key, {}).get("id") != event_id]
    assert not lost, f"{len(lost)} acknowledged events lost or changed id, e.g. {lost[:5]}"
    invented = set(by_key) - set(ledger.acked) - ledger.uncertain
    assert not invented, f"events nobody sent: {sorted(invented)[:5]}"
    entries = await all_pages(client, "/v1/journal-entries", program_id=ledger.program_id)
    credited_events = [entry["event_id"] for entry in entries if entry["action_type"] == "CREDIT"]
    assert len(credited_events) == len(set(credited_events)), "an event was credited twice"
    per_period: dict[int, int] = {}
    for event in events:
        assert event["status"] == "COMPLETED", event
        (evaluation,) = event["rule_evaluations"]
        matched = evaluation["outcome"] == "MATCHED"
        assert matched or evaluation["reason"] == "BUDGET_EXCEEDED", evaluation
        assert matched == (event["id"] in credited_events), event
        if matched:  # the period is the wall clock's at processing, on the budget's grid
            period = (datetime.fromisoformat(event["processed_at"]) - grid_start) // BUDGET_PERIOD
            per_period[period] = per_period.get(period, 0) + 1
    over = {period: count for period, count in per_period.items() if count > BUDGET_LIMIT}
    assert not over, f"periods over the budget of {BUDGET_LIMIT}: {over}"
    total = 0
    for participant in await all_pages(client, "/v1/participants", program_id=ledger.program_id):
        balances = await expect(client, "GET", f"/v1/participants/{participant['id']}/balances", 200)
        total += sum(int(balance["available"]) for balance in balances["data"] if balance["asset_id"] == asset_id)
    assert total == len(credited_events), f"balances sum to {total}, the journal credited {len(credited_events)}"
    assert len(per_period) >= 2, "the trial must cross a reset"
    return total, len(events)


TRIALS: dict[str, Callable[..., Any]] = {
    "events": event_trial,
    "fund_burn": fund_burn_trial,
    "expiry": expiry_trial,
    "balance_operations": balance_operations_trial,
    "money_out": money_out_trial,
    "map_full": map_full_trial,
    "tier_boundary": _tier_boundary_trial,  # bench/crash_tiers.py
    "budget": budget_trial,
}


def _note_free_tail(data_dir: Path) -> None:
    """Count a data file that ends before its last page, every missing page free (read-only: nothing changes)."""
    try:
        facts = check_data_file(data_dir, map_size_bytes=None)
    except StoreUnusable:
        return  # the server refuses it and says why; the trial fails there
    if facts is not None and facts.free_tail_pages:
        FREE_TAILS.append(facts.free_tail_pages)


async def run_trials(trials: int, seed: int, kinds: list[str]) -> dict[str, Any]:
    """``trials`` event trials plus one of each other kind per 5 event trials; the summary as a dict."""
    rng = random.Random(seed)
    started_s = time.monotonic()
    results: list[TrialResult] = []
    plan = ["events"] * trials if "events" in kinds else []
    for kind in kinds:
        if kind != "events":
            plan += [kind] * max(1, trials // 5)
    for index, kind in enumerate(plan):
        with tempfile.TemporaryDirectory(prefix=f"scrip-crash-{kind}-") as workdir:
            result = await TRIALS[kind](Path(workdir), random.Random(rng.random()))
        results.append(result)
        print(
            f"trial {index + 1}/{len(plan)} {kind}: acked {result.acknowledged}, uncertain {result.uncertain}, "
            f"existing {result.existing}, killed after {result.killed_after_s:.2f}s, {result.seconds:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    by_kind = {kind: [r for r in results if r.kind == kind] for kind in dict.fromkeys(plan)}
    return {
        "trials": {kind: len(items) for kind, items in by_kind.items()},
        "acknowledged": {kind: sum(r.acknowledged for r in items) for kind, items in by_kind.items()},
        "uncertain_at_kill": {kind: sum(r.uncertain for r in items) for kind, items in by_kind.items()},
        "lost": 0,
        "applied_twice": 0,
        "verify_failures": 0,
        "restarts_with_free_tail": len(FREE_TAILS),
        "free_tail_pages_max": max(FREE_TAILS, default=0),
        "seconds": round(time.monotonic() - started_s, 1),
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.crash --trials 20``: print one JSON summary line; any violated promise raises."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=20, help="event trials (other kinds: trials // 5 each)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--kinds", default="events,fund_burn,expiry,balance_operations,money_out,map_full,tier_boundary,budget"
    )
    args = parser.parse_args(argv)
    summary = trio.run(run_trials, args.trials, args.seed, args.kinds.split(","))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
