"""Benchmark: the real HTTP server against the bare framework, on 127.0.0.1, bounded in time.

Run ``python -m bench.http`` (``--quick`` for a short run, ``--json`` for machines). What it does:

1. Starts ``scrip serve`` in a subprocess on a free loopback port, on a temporary data directory, with
   ``SCRIP_API_KEY`` set and fsync ON (the default settings: every 202 is durable). Creates one program with a
   SIMPLE and a funded LOT asset and the 10 mixed rules of ``bench.embedded`` over the API.
2. Starts ``bench.http_bare`` in another subprocess: Quart-Trio on Hypercorn's trio worker with the same Hypercorn
   settings, decoding the same JSON into the same type and answering 202: the framework's ceiling.
3. Drives each with a load generator in its own process: ``wrk`` (Debian's package) with a Lua script that
   gives every request a unique idempotency key, or, without wrk, a Python client with keep-alive connections
   (``--loader python``). Phases, one after another, each ``--duration-s`` long:

   - ``framework``: single-event POSTs to the bare app;
   - ``single``: single-event POSTs to ``/v1/events`` (each answered once durable);
   - ``batch``: POSTs of ``--batch-size`` events to ``/v1/events/batch``.

Output keys: ``single_rps``, ``framework_rps``, ``single_ratio`` (single / framework), ``batch_events_per_s``,
``p99_ms`` (single-event POSTs), plus per-phase details. Only 2xx answers count towards a rate; non-2xx answers
(429 under overload) are reported per phase. ``--profile-dir`` records py-spy raw profiles of the server
during the single and batch phases (needs ``py-spy`` on PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.embedded import RULES, make_event_data

API_KEY = "bench-http-key"
PARTICIPANTS = 10_000
PAYLOADS = 500  # distinct event_data bodies the load generator cycles through


@dataclass(frozen=True)
class Settings:
    """One run's knobs."""

    duration_s: float = 15.0
    connections: int = 64
    batch_connections: int = 8
    batch_size: int = 100
    loader: str = "auto"
    profile_dir: str | None = None
    profile_s: int = 10


@dataclass
class Phase:
    """What a load generator measured against one endpoint."""

    name: str
    requests_ok: int
    requests_other: int
    errors: int
    duration_s: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        """2xx answers per second."""
        return self.requests_ok / self.duration_s if self.duration_s else 0.0


# --- the servers --------------------------------------------------------------------------------------------


@contextmanager
def _process(
    argv: list[str], env: dict[str, str], log_path: Path, marker: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``argv``; yield (process, base URL) once it prints ``marker ... http://host:port``; stop it after."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert process.stdout is not None
            deadline = time.monotonic() + 60
            for line in process.stdout:
                if marker in line:
                    yield process, "http://" + line.strip().rsplit("http://", 1)[1]
                    break
                if time.monotonic() > deadline:
                    break
            else:
                raise RuntimeError(f"{argv[2]} exited before listening; see {log_path}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
                process.kill()
                process.wait()


def _setup_program(client: httpx.Client) -> str:
    """Program, assets (PTS SIMPLE, CASH LOT prefunded) and the 10 rules of bench.embedded; the program id."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    program = post("/v1/programs", {"name": "Bench rewards"})["id"]
    asset = {"program_id": program, "scale": 2}
    pts = post(
        "/v1/assets",
        {**asset, "name": "Points", "symbol": "PTS", "inventory_mode": "SIMPLE", "issuance_policy": "UNLIMITED"},
    )["id"]
    cash = post(
        "/v1/assets",
        {**asset, "name": "Cashback", "symbol": "CASH", "inventory_mode": "LOT", "issuance_policy": "PREFUNDED"},
    )["id"]
    post(f"/v1/programs/{program}/assets/{cash}/fund", {"amount": "1000000000"})
    for order, (name, condition, actions, stop) in enumerate(RULES, start=1):
        post(
            "/v1/rules",
            {
                "program_id": program,
                "name": name,
                "condition": condition,
                "order": order,
                "stop_after_match": stop,
                "actions": msgspec.to_builtins(actions(pts, cash)),
            },
        )
    return program


# --- load generators ----------------------------------------------------------------------------------------


def _payloads() -> list[str]:
    """Distinct realistic event_data bodies, as JSON text."""
    rng = random.Random(7)
    return [json.dumps(make_event_data(rng), separators=(",", ":")) for _ in range(PAYLOADS)]


_WRK_SCRIPT = r"""
local program = "%(program)s"
local run = "%(run)s"
local batch = %(batch)d
local participants = %(participants)d
local payloads = { %(payloads)s }
local counter = 0
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
local function event()
  counter = counter + 1
  local data = payloads[(counter %% #payloads) + 1]
  return '{"program_id":"' .. program .. '","external_id":"member-' .. math.random(0, participants - 1) ..
    '","idempotency_key":"' .. run .. '-' .. tid .. '-' .. counter .. '","event_data":' .. data .. '}'
end
function request()
  if batch == 0 then
    return wrk.format("POST", "/v1/events", nil, event())
  end
  local items = {}
  for i = 1, batch do items[i] = event() end
  return wrk.format("POST", "/v1/events/batch", nil, '{"events":[' .. table.concat(items, ",") .. ']}')
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(url: str, name: str, program: str, batch: int, connections: int, settings: Settings, work: Path) -> Phase:
    """One phase with wrk: a Lua script builds each body, with a unique idempotency key per event."""
    script = work / f"{name}.lua"
    payloads = ", ".join("[[" + payload + "]]" for payload in _payloads())
    script.write_text(
        _WRK_SCRIPT
        % {
            "program": program,
            "run": f"{name}{int(time.time())}",
            "batch": batch,
            "participants": PARTICIPANTS,
            "payloads": payloads,
        }
    )
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(settings.duration_s)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Bearer {API_KEY}",
        url,
    ]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=settings.duration_s + 60, check=True).stdout
    line = next(text for text in output.splitlines() if text.startswith("WRK_JSON "))
    found = json.loads(line.removeprefix("WRK_JSON "))
    return Phase(
        name=name,
        requests_ok=found["requests"] - found["status_errors"],
        requests_other=found["status_errors"],
        errors=found["socket_errors"],
        duration_s=found["duration_us"] / 1e6,
        p50_ms=found["p50_us"] / 1000,
        p99_ms=found["p99_us"] / 1000,
    )


def _python_loader(url: str, name: str, program: str, batch: int, connections: int, settings: Settings) -> Phase:
    """One phase with the Python client (``bench.http_load``) in its own process."""
    argv = [
        sys.executable,
        "-m",
        "bench.http_load",
        "--url",
        url,
        "--program",
        program,
        "--batch",
        str(batch),
        "--connections",
        str(connections),
        "--duration-s",
        str(settings.duration_s),
        "--key",
        API_KEY,
        "--participants",
        str(PARTICIPANTS),
        "--run",
        f"{name}{int(time.time())}",
    ]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=settings.duration_s + 60, check=True).stdout
    found = json.loads(output.strip().splitlines()[-1])
    return Phase(name=name, **found)


def _load(url: str, name: str, program: str, batch: int, connections: int, settings: Settings, work: Path) -> Phase:
    if _use_wrk(settings):
        return _wrk(url, name, program, batch, connections, settings, work)
    return _python_loader(url, name, program, batch, connections, settings)


def _use_wrk(settings: Settings) -> bool:
    return settings.loader == "wrk" or (settings.loader == "auto" and shutil.which("wrk") is not None)


@contextmanager
def _profiled(pid: int, name: str, settings: Settings) -> Iterator[None]:
    """Record a py-spy raw profile of ``pid`` while the block runs (when --profile-dir is given)."""
    if settings.profile_dir is None:
        yield
        return
    out = Path(settings.profile_dir) / f"server-{name}.txt"
    argv = [
        "py-spy",
        "record",
        "-p",
        str(pid),
        "-f",
        "raw",
        "-d",
        str(settings.profile_s),
        "-o",
        str(out),
        "--nonblocking",
    ]
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(timeout=settings.profile_s + 60)


# --- the run ------------------------------------------------------------------------------------------------


def _server_counts(client: httpx.Client) -> dict[str, float]:
    """A few engine counters from the server's own /metrics after the run."""
    text = client.get("/metrics").text
    wanted = (
        "scrip_engine_events_accepted_total",
        "scrip_engine_events_completed_total",
        "scrip_engine_events_failed_total",
        "scrip_engine_writer_batch_records_peak",
    )
    counts = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            counts[name.removeprefix("scrip_engine_")] = float(value)
    return counts


def run(settings: Settings) -> dict[str, Any]:
    """Both servers, three phases; the result dictionary."""
    with tempfile.TemporaryDirectory(prefix="scrip-bench-http-") as temp:
        work = Path(temp)
        env = {**os.environ, "SCRIP_API_KEY": API_KEY, "SCRIP_STORAGE_SYNC": "true"}
        server_argv = [
            sys.executable,
            "-m",
            "scrip_actor",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(work / "data"),
        ]
        bare_argv = [sys.executable, "-m", "bench.http_bare", "--host", "127.0.0.1", "--port", "0"]
        with (
            _process(server_argv, env, work / "server.log", "listening on") as (server, url),
            _process(bare_argv, env, work / "bare.log", "listening on") as (_, bare_url),
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as client,
        ):
            program = _setup_program(client)
            framework = _load(bare_url, "framework", program, 0, settings.connections, settings, work)
            with _profiled(server.pid, "single", settings):
                single = _load(url, "single", program, 0, settings.connections, settings, work)
            with _profiled(server.pid, "batch", settings):
                batch = _load(url, "batch", program, settings.batch_size, settings.batch_connections, settings, work)
            time.sleep(1.0)
            counts = _server_counts(client)
    return _result(settings, framework, single, batch, counts)


def _result(
    settings: Settings, framework: Phase, single: Phase, batch: Phase, counts: dict[str, float]
) -> dict[str, Any]:
    return {
        "single_rps": round(single.rps, 1),
        "framework_rps": round(framework.rps, 1),
        "single_ratio": round(single.rps / framework.rps, 3) if framework.rps else None,
        "batch_events_per_s": round(batch.rps * settings.batch_size, 1),
        "p99_ms": round(single.p99_ms, 2),
        "phases": {phase.name: {**asdict(phase), "rps": round(phase.rps, 1)} for phase in (framework, single, batch)},
        "server": counts,
        "settings": {**asdict(settings), "loader": "wrk" if _use_wrk(settings) else "python"},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
    }


def _print_human(result: dict[str, Any]) -> None:
    print(f"framework (bare quart-trio, decode only): {result['framework_rps']:>9,.0f} req/s")
    print(
        f"single-event POST /v1/events:             {result['single_rps']:>9,.0f} req/s   "
        f"ratio {result['single_ratio']:.2f} (target >= 0.85)   p99 {result['p99_ms']:.1f} ms"
    )
    print(
        f"batch POST /v1/events/batch:              {result['batch_events_per_s']:>9,.0f} events/s (target >= 25,000)"
    )
    for name, phase in result["phases"].items():
        print(
            f"  {name:<9} ok {phase['requests_ok']:>8,}  non-2xx {phase['requests_other']:>6,}  socket errors "
            f"{phase['errors']:>4}  p50 {phase['p50_ms']:.1f} ms  p99 {phase['p99_ms']:.1f} ms"
        )
    print(f"  server: {result['server']}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s phases (about 30 s in all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--duration-s", type=float, default=None, help="seconds per phase (default 15; 5 with --quick)")
    parser.add_argument("--connections", type=int, default=Settings.connections, help="keep-alive connections, single")
    parser.add_argument("--batch-connections", type=int, default=Settings.batch_connections)
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--profile-dir", default=None, help="write py-spy raw profiles of the server here")
    args = parser.parse_args(argv)
    duration_s = args.duration_s if args.duration_s is not None else (5.0 if args.quick else 15.0)
    settings = Settings(
        duration_s=duration_s,
        connections=args.connections,
        batch_connections=args.batch_connections,
        batch_size=args.batch_size,
        loader=args.loader,
        profile_dir=args.profile_dir,
        profile_s=max(1, int(duration_s) - 2),
    )
    result = run(settings)
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
