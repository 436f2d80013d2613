"""Golden scenarios: what a user of the embedded API sees, captured once, reproduced exactly by later engines.

Each scenario drives ``open_engine`` and the Engine methods on a ManualClock and records, step by step, the events
(status, error, rule evaluations, journal entry ids, participant), journal entries (action, rule, postings),
participants (balances, tags, counters, attributes), lots, wallet balances and ``verify()``. The record is compared
with ``tests/integration/golden/<scenario>.json`` (pretty-printed, sorted keys).

Generated ids are random (uuid4, and event/entry ids that embed a per-store random prefix), so before comparing
every UUID-shaped text is replaced by a placeholder: programs, assets and rules by their role (``<rule:dining>``),
everything else by ``<id:N>`` in order of first appearance in the file. Amounts, statuses, times (from the
ManualClock) and ordering are kept exactly. Hashes (which cover the random ids) and the LMDB transaction id are
left out.

Regenerate the files after an intended change of behaviour (and review the diff):

    SCRIP_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/integration/test_golden_scenarios.py

Without that variable a mismatch fails with a unified diff of the JSON.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from scrip_actor import (
    Asset,
    CounterAction,
    CreditAction,
    DebitAction,
    Engine,
    EventSubmit,
    InsufficientFunds,
    ParticipantCreate,
    Program,
    SetAttributeAction,
    TagAction,
    Target,
    open_engine,
)
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SCRIP_GOLDEN_UPDATE") == "1"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PAGE_MAX = 200  # a page of a listing; scenarios stay far below it, paging is only there to be complete
_PAGES_MAX = 50  # a scenario with more journal entries than this many pages is a runaway


# ==============================================================================================================
# recording
# ==============================================================================================================


def _event_view(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "sequence": event.sequence,
        "external_id": event.external_id,
        "idempotency_key": event.idempotency_key,
        "event_data": event.event_data,
        "event_timestamp": event.event_timestamp,
        "status": event.status,
        "participant_id": event.participant_id,
        "error_message": event.error_message,
        "rule_evaluations": event.rule_evaluations,
        "journal_entry_ids": event.journal_entry_ids,
        "created_at": event.created_at,
        "processed_at": event.processed_at,
        "attempts": event.attempts,
    }


def _entry_view(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "sequence": entry.sequence,
        "action_type": entry.action_type,
        "program_id": entry.program_id,
        "event_id": entry.event_id,
        "rule_id": entry.rule_id,
        "reference_id": entry.reference_id,
        "description": entry.description,
        "created_at": entry.created_at,
        "postings": entry.postings,
    }


def _verify_view(report: Any) -> dict[str, Any]:
    view = msgspec.to_builtins(report)
    del view["snapshot_txn_id"]  # how many LMDB write transactions ran depends on batching, not on behaviour
    return view


async def _journal(engine: Engine, **filters: Any) -> list[dict[str, Any]]:
    """Every journal entry (matching ``filters``), oldest first."""
    entries: list[Any] = []
    cursor: str | None = None
    for _ in range(_PAGES_MAX):
        page = await engine.list_journal_entries(limit=_PAGE_MAX, cursor=cursor, **filters)
        entries.extend(page.data)
        if not page.has_more:
            return [_entry_view(entry) for entry in reversed(entries)]
        cursor = page.next_cursor
    raise AssertionError("more journal entries than a golden scenario should ever write")


class Recorder:
    """The observations of one scenario, in the order they were made."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.steps: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}

    def name(self, identifier: str, label: str) -> None:
        assert identifier not in self.names, identifier
        assert label not in self.names.values(), label
        self.names[identifier] = f"<{label}>"

    def note(self, step: str, **observed: Any) -> None:
        self.steps.append({"step": step, **observed})

    async def event(self, step: str, event: Any) -> None:
        self.note(step, event=_event_view(event))

    async def participant(self, step: str, external_id: str, *, lots_of: Asset | None = None) -> None:
        participant = await self.engine.get_participant_by_external_id(external_id)
        observed: dict[str, Any] = {"participant": participant}
        if lots_of is not None:
            observed["lots"] = await self.engine.lots(participant.id, lots_of.id)
        self.note(step, **observed)

    async def state(self, step: str, program: Program, *, lots_of: Asset | None = None) -> None:
        """Everything the program's users can see: participants (by external id), lots, wallets, journal, verify."""
        await self.engine.wait_idle()
        self.note(step, **(await _program_state(self.engine, program, lots_of=lots_of)))


async def _program_state(engine: Engine, program: Program, *, lots_of: Asset | None = None) -> dict[str, Any]:
    page = await engine.list_participants(program_id=program.id, limit=_PAGE_MAX)
    assert not page.has_more
    # Store order is id order, and ids are random: sort by what the user chose.
    participants = sorted(page.data, key=lambda p: p.external_id)
    state: dict[str, Any] = {"participants": participants}
    if lots_of is not None:
        state["lots"] = {p.external_id: await engine.lots(p.id, lots_of.id) for p in participants}
    state["wallets"] = await engine.wallet_balances(program.id)
    state["journal"] = await _journal(engine)
    state["verify"] = _verify_view(await engine.verify())
    return state


def _stable(steps: list[dict[str, Any]], names: dict[str, str]) -> str:
    """The record as sorted, indented JSON with every generated id replaced by a stable placeholder."""
    plain = msgspec.to_builtins(steps)
    assigned = dict(names)

    def placeholder(match: re.Match[str]) -> str:
        identifier = match.group(0).lower()
        if identifier not in assigned:
            assigned[identifier] = f"<id:{len(assigned) - len(names) + 1}>"
        return assigned[identifier]

    def walk(value: Any) -> Any:
        # Keys in sorted order, as json.dumps(sort_keys=True) writes them: numbering follows the file's reading order.
        if isinstance(value, dict):
            return {walk(key): walk(value[key]) for key in sorted(value)}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            return _UUID.sub(placeholder, value)
        return value

    return json.dumps(walk(plain), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _check_golden(scenario: str, text: str) -> None:
    path = GOLDEN_DIR / f"{scenario}.json"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with SCRIP_GOLDEN_UPDATE=1 (see this module's docstring)")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"golden/{scenario}.json",
            tofile="this run",
            n=3,
        )
        pytest.fail(f"scenario {scenario!r} differs from its golden file:\n{''.join(diff)}", pytrace=False)


async def _setup(recorder: Recorder, **asset: Any) -> tuple[Program, Asset]:
    program, created = await program_with_asset(recorder.engine, **asset)
    recorder.name(program.id, "program")
    recorder.name(created.id, f"asset:{created.symbol}")
    return program, created


async def _rule(recorder: Recorder, program: Program, label: str, condition: str, actions: list[Any], **kw: Any) -> Any:
    created = await rule(recorder.engine, program, condition, actions, name=label, **kw)
    recorder.name(created.id, f"rule:{label}")
    return created


# ==============================================================================================================
# scenarios
# ==============================================================================================================


async def _new_participant(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder)
    await _rule(
        recorder, program, "welcome", "true", [CreditAction(asset_id=asset.id, amount="10"), TagAction(tag="New")]
    )
    submitted = await engine.submit(
        EventSubmit(program_id=program.id, external_id="alice", idempotency_key="first", event_data={"type": "signup"})
    )
    await recorder.event("submitted (not yet processed)", submitted)
    await engine.wait_idle()
    await recorder.event("first event processed: alice created by it", await engine.get_event(submitted.id))
    await recorder.participant("alice after her first event", "alice")
    clock.advance(timedelta(minutes=5))
    again = await send(engine, program, "alice", {"type": "visit"}, key="second", at=clock.now)
    await recorder.event("second event reuses alice", again)
    replay = await engine.submit(
        EventSubmit(program_id=program.id, external_id="alice", idempotency_key="first", event_data={"type": "signup"})
    )
    await recorder.event("the first key again: the original event, not a new one", replay)
    await recorder.state("final", program)


async def _lot_expiry_and_vesting(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder, mode="LOT", scale=0)
    expiring = CreditAction(asset_id=asset.id, amount="100", expires_at="720h")
    await _rule(recorder, program, "expiring", "event.type == 'expiring'", [expiring])
    await _rule(recorder, program, "forever", "event.type == 'forever'", [CreditAction(asset_id=asset.id, amount="50")])
    await _rule(
        recorder, program, "spend", "event.type == 'spend'", [DebitAction(asset_id=asset.id, amount="event.points")]
    )
    vesting = CreditAction(asset_id=asset.id, amount="7", matures_at="48h")
    await _rule(recorder, program, "vesting", "event.type == 'vesting'", [vesting])
    start = clock.now
    await recorder.event(
        "100 expiring in 30 days", await send(engine, program, "u", {"type": "expiring"}, key="k1", at=start)
    )
    clock.advance(timedelta(days=1))
    await recorder.event(
        "50 that never expire", await send(engine, program, "u", {"type": "forever"}, key="k2", at=clock.now)
    )
    spend = await send(engine, program, "u", {"type": "spend", "points": 30}, key="k3", at=clock.now)
    await recorder.event("spend 30: FIFO from the oldest lot", spend)
    await recorder.event(
        "7 vesting in 2 days", await send(engine, program, "u", {"type": "vesting"}, key="k4", at=clock.now)
    )
    too_much = await send(engine, program, "u", {"type": "spend", "points": 121}, key="k5", at=clock.now)
    await recorder.event("spend 121 of 120 available (7 deferred): FAILED", too_much)
    await recorder.participant("before any sweep", "u", lots_of=asset)
    clock.advance(timedelta(days=2, seconds=1))
    engine.sweep_due()
    await recorder.state("after the sweep at day 3: the vesting lot matured", program, lots_of=asset)
    clock.now = start + timedelta(days=30, seconds=1)
    engine.sweep_due()
    await recorder.state("after the sweep at day 30: the first lot's 70 expired", program, lots_of=asset)


async def _target_credit(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder)
    referral = [
        CreditAction(asset_id=asset.id, amount="25", target=Target(external_id="event.referrer_id")),
        CreditAction(asset_id=asset.id, amount="5"),
        TagAction(tag="referred"),
        CounterAction(key="referrals", value="1", target=Target(external_id="event.referrer_id")),
    ]
    await _rule(recorder, program, "referral", "event.type == 'referral'", referral)
    event = await send(engine, program, "newbie", {"type": "referral", "referrer_id": "friend"}, key="k1", at=clock.now)
    await recorder.event("newbie refers friend, who does not exist yet", event)
    await recorder.participant("friend, created on the fly", "friend")
    clock.advance(timedelta(hours=1))
    second = await send(engine, program, "other", {"type": "referral", "referrer_id": "friend"}, key="k2", at=clock.now)
    await recorder.event("a second referral to the existing friend", second)
    await recorder.state("final", program)


async def _prefunded_retry(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder, policy="PREFUNDED")
    await _rule(recorder, program, "reward", "true", [CreditAction(asset_id=asset.id, amount="10")])
    failed = await send(engine, program, "u1", {"n": 1}, key="k1", at=clock.now)
    await recorder.event("empty wallet: FAILED", failed)
    recorder.note("wallets while empty", wallets=await engine.wallet_balances(program.id))
    clock.advance(timedelta(minutes=1))
    recorder.note("fund 4 (still short)", result=await engine.fund(program.id, asset.id, "4", "first funding"))
    await recorder.event("retry queued", await engine.retry_event(failed.id))
    await engine.wait_idle()
    await recorder.event("retry with a low wallet: FAILED again", await engine.get_event(failed.id))
    clock.advance(timedelta(minutes=1))
    recorder.note("fund 20 more", result=await engine.fund(program.id, asset.id, "20", "top-up"))
    await engine.retry_event(failed.id)
    await engine.wait_idle()
    await recorder.event("second retry: COMPLETED", await engine.get_event(failed.id))
    await recorder.state("final", program)


async def _stop_after_match(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder)
    await _rule(recorder, program, "catch-all", "true", [CreditAction(asset_id=asset.id, amount="1")], order=1000)
    dining = [CreditAction(asset_id=asset.id, amount="5")]
    await _rule(recorder, program, "dining", "event.mcc == 'dining'", dining, order=100, stop_after_match=True)
    await _rule(recorder, program, "big", "event.amount > 10.0", [TagAction(tag="Big")], order=50)
    await recorder.event(
        "dining 20: big, dining, catch-all STOPPED",
        await send(engine, program, "u", {"mcc": "dining", "amount": 20}, key="k1", at=clock.now),
    )
    await recorder.event(
        "fuel 1: only catch-all", await send(engine, program, "u", {"mcc": "fuel", "amount": 1}, key="k2", at=clock.now)
    )
    await recorder.event(
        "dining 3: dining stops catch-all",
        await send(engine, program, "u", {"mcc": "dining", "amount": 3}, key="k3", at=clock.now),
    )
    await recorder.state("final", program)


async def _counters_and_attributes(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, _ = await _setup(recorder)
    actions = [
        CounterAction(key="purchase_count", value="1"),
        CounterAction(key="lifetime_spend", value="event.amount"),
        SetAttributeAction(key="last_store", value_expression="event.store"),
        SetAttributeAction(key="segment", value="shopper"),
    ]
    await _rule(recorder, program, "purchase", "event.type == 'purchase'", actions)
    await _rule(recorder, program, "vip", "participant.counters.purchase_count >= 1.0", [TagAction(tag="vip")])
    await recorder.event(
        "first purchase",
        await send(
            engine, program, "u", {"type": "purchase", "amount": 10.25, "store": "berlin"}, key="k1", at=clock.now
        ),
    )
    await recorder.participant("after one purchase", "u")
    await recorder.event(
        "second purchase: vip sees the counter as processing began",
        await send(engine, program, "u", {"type": "purchase", "amount": 4, "store": "paris"}, key="k2", at=clock.now),
    )
    await recorder.state("final", program)


async def _debit_insufficient(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder)
    await _rule(recorder, program, "earn", "event.type == 'earn'", [CreditAction(asset_id=asset.id, amount="10")])
    spend = [
        TagAction(tag="spender"),
        CounterAction(key="spends", value="1"),
        DebitAction(asset_id=asset.id, amount="event.points"),
    ]
    await _rule(recorder, program, "spend", "event.type == 'spend'", spend)
    await recorder.event("earn 10", await send(engine, program, "u", {"type": "earn"}, key="k1", at=clock.now))
    await recorder.event(
        "spend 50 of 10: FAILED, nothing applied",
        await send(engine, program, "u", {"type": "spend", "points": 50}, key="k2", at=clock.now),
    )
    await recorder.participant("unchanged by the failed debit", "u")
    await recorder.event(
        "spend 4: COMPLETED", await send(engine, program, "u", {"type": "spend", "points": 4}, key="k3", at=clock.now)
    )
    await recorder.state("final", program)


async def _rule_skips(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder, unknown="REJECT")
    window = {"active_from": clock.now + timedelta(days=1), "active_to": clock.now + timedelta(days=2)}
    await _rule(recorder, program, "windowed", "true", [CreditAction(asset_id=asset.id, amount="1")], order=1, **window)
    await _rule(
        recorder, program, "broken", "event.missing > 1.0", [CreditAction(asset_id=asset.id, amount="2")], order=2
    )
    await _rule(
        recorder, program, "cashback", "true", [CreditAction(asset_id=asset.id, amount="event.amount * 0.015")], order=3
    )
    await recorder.event(
        "unknown participant under REJECT: FAILED",
        await send(engine, program, "stranger", {"amount": 100}, key="k0", at=clock.now),
    )
    known, _ = await engine.create_participant(
        ParticipantCreate(external_id="known", tags=["Gold"], attributes={"tier": "gold"})
    )
    recorder.note("participant created through the API", participant=known)
    await recorder.event(
        "before the window; condition error skips broken",
        await send(engine, program, "known", {"amount": 100}, key="k1", at=clock.now),
    )
    await recorder.event(
        "inside the window",
        await send(engine, program, "known", {"amount": 200}, key="k2", at=clock.now + timedelta(days=1, hours=1)),
    )
    await recorder.event(
        "cashback with too many decimals: FAILED",
        await send(engine, program, "known", {"amount": 10.1}, key="k3", at=clock.now),
    )
    await recorder.state("final", program)


async def _wallet_operations(recorder: Recorder, clock: ManualClock) -> None:
    engine = recorder.engine
    program, asset = await _setup(recorder, policy="PREFUNDED")
    recorder.note("fund 3.50", result=await engine.fund(program.id, asset.id, "3.50", "initial"))
    clock.advance(timedelta(seconds=30))
    recorder.note("burn 1.25", result=await engine.burn(program.id, asset.id, "1.25", "cleanup"))
    with pytest.raises(InsufficientFunds) as error:
        await engine.burn(program.id, asset.id, "2.26")
    recorder.note("burn 2.26 of 2.25", error={"code": error.value.code, "message": str(error.value)})
    await recorder.state("final", program)


# The batch of the restart scenario: four members earn, spend (some beyond their balance) and refer each other in
# every 12th event, between events no rule matches. The engine is closed while most of the batch still waits in
# its mailboxes (see _run_batch); the rule-free events keep the golden file short.
_BATCH_SIZE = 600
_BATCH_STRIDE = 12


def _batch(program: Program) -> list[EventSubmit]:
    requests = []
    for n in range(_BATCH_SIZE):
        member = f"member{n % 4}"
        data: dict[str, Any] = {"type": "noop", "n": n}
        if n % _BATCH_STRIDE == _BATCH_STRIDE - 1:
            i = n // _BATCH_STRIDE
            if i % 5 == 4:
                data = {"type": "spend", "points": 3 + i % 7}
            elif i % 7 == 6:
                data = {"type": "referral", "referrer_id": f"member{(i + 1) % 4}"}
            else:
                data = {"type": "earn", "amount": i}
        requests.append(
            EventSubmit(program_id=program.id, external_id=member, idempotency_key=f"b{n}", event_data=data)
        )
    return requests


async def _batch_rules(recorder: Recorder) -> Program:
    program, asset = await _setup(recorder)
    earn = [CreditAction(asset_id=asset.id, amount="2"), CounterAction(key="earned", value="event.amount")]
    await _rule(recorder, program, "earn", "event.type == 'earn'", earn)
    spend = [DebitAction(asset_id=asset.id, amount="event.points")]
    await _rule(recorder, program, "spend", "event.type == 'spend'", spend)
    refer = [CreditAction(asset_id=asset.id, amount="3", target=Target(external_id="event.referrer_id"))]
    await _rule(recorder, program, "referral", "event.type == 'referral'", refer)
    last = [SetAttributeAction(key="last_type", value_expression="event.type")]
    await _rule(recorder, program, "last", "event.type != 'noop'", last)
    return program


async def _batch_outcome(recorder: Recorder, program: Program, submitted: list[Any]) -> None:
    engine = recorder.engine
    await engine.wait_idle()
    quiet = []
    for result in submitted:
        assert not isinstance(result, Exception), result
        event = await engine.get_event(result.id)
        if event.event_data["type"] == "noop":
            assert event.journal_entry_ids == []
            evaluations = ",".join(e.status for e in event.rule_evaluations)
            quiet.append(f"{event.idempotency_key} {event.external_id} {event.status} {evaluations}")
        else:
            await recorder.event(f"outcome of {event.idempotency_key}", event)
    recorder.note("outcomes of the events no rule matched", events=quiet)
    await recorder.state("final", program)


async def _run_batch(data_dir: Path, clock: ManualClock, *, interrupted: bool) -> tuple[str, int]:
    """The batch scenario in ``data_dir``: its record, and how many events were still queued on reopening.

    ``interrupted``: the engine is closed right after submit_batch and reopened.
    """
    config = small_config(data_dir)
    async with open_engine(config=config, clock=clock) as engine:
        recorder = Recorder(engine)
        program = await _batch_rules(recorder)
        if not interrupted:
            submitted = await engine.submit_batch(_batch(program))
            recorder.note("submitted", events=len(submitted))
            await _batch_outcome(recorder, program, submitted)
            return _stable(recorder.steps, recorder.names), 0
        async with trio.open_nursery() as nursery:
            # The whole batch is admitted in one synchronous go; the dispatcher runs 32 steps per checkpoint, so
            # after three checkpoints most of it still waits in its mailbox. Then the engine closes (committing
            # what was appended, the inbox records included) before the client ever sees its acknowledgement.
            nursery.start_soon(engine.submit_batch, _batch(program))
            for _ in range(3):
                await trio.lowlevel.checkpoint()
            assert engine.statistics().events_accepted >= _BATCH_SIZE
            nursery.cancel_scope.cancel()
    async with open_engine(config=config, clock=clock) as engine:
        queued = engine.statistics().events_inflight
        recorder.engine = engine
        submitted = await engine.submit_batch(_batch(program))  # the client's retry: the original events
        recorder.note("submitted", events=len(submitted))
        await _batch_outcome(recorder, program, submitted)
    return _stable(recorder.steps, recorder.names), queued


# ==============================================================================================================
# tests
# ==============================================================================================================

Scenario = Callable[[Recorder, ManualClock], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "new_participant": _new_participant,
    "lot_expiry_and_vesting": _lot_expiry_and_vesting,
    "target_credit_to_referrer": _target_credit,
    "prefunded_failure_fund_retry": _prefunded_retry,
    "stop_after_match_chain": _stop_after_match,
    "counters_and_attributes": _counters_and_attributes,
    "debit_insufficient_balance": _debit_insufficient,
    "rule_skips_and_rejections": _rule_skips,
    "wallet_fund_and_burn": _wallet_operations,
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_scenario_matches_its_golden_file(scenario: str, tmp_path: Path, clock: ManualClock) -> None:
    async with open_engine(config=small_config(tmp_path / "data"), clock=clock) as engine:
        recorder = Recorder(engine)
        await SCENARIOS[scenario](recorder, clock)
        await engine.wait_idle()
        report = await engine.verify()
        assert report.ok, report.problems
    _check_golden(scenario, _stable(recorder.steps, recorder.names))


async def test_restart_mid_batch_ends_as_an_uninterrupted_run_and_matches_its_golden_file(
    tmp_path: Path, clock: ManualClock
) -> None:
    start = clock.now  # every run gets its own clock from the same start
    interrupted, queued = await _run_batch(tmp_path / "interrupted", ManualClock(start), interrupted=True)
    assert 0 < queued < _BATCH_SIZE, f"{queued} events queued on reopening: the close never cut the batch"
    uninterrupted, _ = await _run_batch(tmp_path / "uninterrupted", ManualClock(start), interrupted=False)
    assert interrupted == uninterrupted
    _check_golden("restart_mid_batch", interrupted)
