"""Acceptance 6: nothing accepted is lost, nothing is applied twice — across a clean close and a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from scrip_actor import CreditAction, EventSubmit, SetAttributeAction, open_engine, verify
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule

REPO = Path(__file__).resolve().parents[2]


async def test_close_without_waiting_then_reopen_processes_each_event_once(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    count = 300
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine)
        await rule(engine, program, "true", [CreditAction(asset_id=asset.id, amount="1")])
        results = await engine.submit_batch(
            [
                EventSubmit(
                    program_id=program.id, external_id=f"user{n % 5}", idempotency_key=f"k{n}", event_data={"n": n}
                )
                for n in range(count)
            ]
        )
        assert all(not isinstance(r, Exception) for r in results)
        # Leave at once: most events are still waiting in their mailboxes.
    async with open_engine(config=config, clock=clock) as engine:
        await engine.wait_idle()
        statuses = [(await engine.get_event(r.id)).status for r in results]  # type: ignore[union-attr]
        assert statuses == ["COMPLETED"] * count
        total = 0
        for n in range(5):
            participant = await engine.get_participant_by_external_id(f"user{n}")
            total += int(participant.balances[0].available.split(".")[0])
        assert total == count
        report = await engine.verify()
        assert report.ok, report.problems
        assert report.journal_entries == count


async def _run_until_killed(data_dir: Path, acks_min: int) -> tuple[str, set[str]]:
    # A plain Popen on purpose: the test reads the worker's stdout line by line from a thread and must SIGKILL it.
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "tests.integration.crash_worker", str(data_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acked: set[str] = set()
    program_id = ""
    try:
        with trio.fail_after(60):
            while len(acked) < acks_min:
                line = await trio.to_thread.run_sync(process.stdout.readline)
                if not line:
                    raise AssertionError(f"worker exited early: {process.stderr.read() if process.stderr else ''}")
                if line.startswith("READY"):
                    program_id = line.split()[1]
                elif line.startswith("ACK"):
                    acked.add(line.split()[1])
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        if process.stderr:
            process.stderr.close()
    return program_id, acked


async def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    program_id, acked = await _run_until_killed(data_dir, acks_min=400)
    assert program_id
    assert len(acked) >= 400
    config = small_config(data_dir)
    async with open_engine(config=config) as engine:
        await engine.wait_idle()
        page = await engine.list_events(program_id=program_id, limit=200)
        events = list(page.data)
        while page.has_more:
            page = await engine.list_events(program_id=program_id, limit=200, cursor=page.next_cursor)
            events.extend(page.data)
        keys = {event.idempotency_key for event in events}
        assert acked <= keys, f"lost {len(acked - keys)} acknowledged events"
        assert all(event.status == "COMPLETED" for event in events)
        credited = 0
        for n in range(7):
            try:
                participant = await engine.get_participant_by_external_id(f"user{n}")
            except Exception:
                continue
            credited += int(participant.balances[0].available)
        assert credited == len(events), "an event was applied twice or not at all"
        # Resubmitting an acknowledged event returns the original.
        some_key = sorted(acked)[0]
        original = next(e for e in events if e.idempotency_key == some_key)
        again = await engine.submit(
            EventSubmit(
                program_id=program_id, external_id=original.external_id, idempotency_key=some_key, event_data={"n": 1}
            )
        )
        assert again.id == original.id
    report = verify(str(data_dir), config)
    assert report.ok, report.problems


async def test_a_retry_queued_at_shutdown_is_processed_once_after_reopening(tmp_path: Path, clock: ManualClock) -> None:
    config = small_config(tmp_path / "data")
    async with open_engine(config=config, clock=clock) as engine:
        program, asset = await program_with_asset(engine, policy="PREFUNDED")
        await rule(
            engine,
            program,
            "true",
            [CreditAction(asset_id=asset.id, amount="1"), SetAttributeAction(key="last", value_expression="event.n")],
        )
        first = await engine.submit(
            EventSubmit(program_id=program.id, external_id="u", idempotency_key="k1", event_data={"n": "retry"})
        )
        await engine.wait_idle()
        assert (await engine.get_event(first.id)).status == "FAILED"  # the wallet was empty
        await engine.fund(program.id, asset.id, "50")
        # From here on nothing reaches a mailbox: the records become durable, but processing never starts, as if
        # the process died right after acknowledging them.
        engine._registry.deliver = lambda key, message: None  # type: ignore[union-attr, method-assign]
        ahead = [
            await engine.submit(
                EventSubmit(
                    program_id=program.id, external_id="u", idempotency_key=f"ahead{n}", event_data={"n": f"ahead{n}"}
                )
            )
            for n in range(5)
        ]
        await engine.retry_event(first.id)
    async with open_engine(config=config, clock=clock) as engine:
        assert engine.statistics().events_inflight == 6  # the five and the retry, re-delivered from the inbox
        await engine.wait_idle()
        retried = await engine.get_event(first.id)
        assert retried.status == "COMPLETED"
        assert retried.attempts == 2
        processed = [await engine.get_event(event.id) for event in ahead]
        assert [event.status for event in processed] == ["COMPLETED"] * 5
        participant = await engine.get_participant_by_external_id("u")
        assert participant.attributes == {"last": "retry"}  # replayed in inbox order: the retry came last
        assert participant.balances[0].available == "6.00"  # each event credited exactly once
        [wallet] = await engine.wallet_balances(program.id)
        assert wallet.available == "44.00"
        report = await engine.verify()
        assert report.ok, report.problems
        assert report.events_pending == 0
