"""Webhooks through the Engine API with a manual clock: every §8.1 type the engine produces reaches a receiver,
retries wait out their backoff on the engine's clock, finished outbox records are pruned after the retention, and
``verify`` checks the webhook databases (docs/webhooks.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
import trio
from cryptography.fernet import Fernet

from scrip_actor import Engine, open_engine
from scrip_actor.config import WebhookSettings
from scrip_actor.errors import NotFound
from scrip_actor.model import (
    BalanceAdjust,
    BalanceOperation,
    CreditAction,
    RedemptionCreate,
    ReversalCreate,
    TransferCreate,
    TransferRecipient,
)
from scrip_actor.tiers import TierCreate, TierStateSet
from scrip_actor.webhooks import WebhookEndpointCreate
from tests.conftest import ManualClock, small_config
from tests.helpers import program_with_asset, rule, send
from tests.webhook_receiver import Receiver, receiving


def _config(tmp_path: Path, **webhooks: object) -> object:
    settings = {"allow_private_targets": True, "secret_key_file": str(tmp_path / "key"), "poll_interval_s": 0.02}
    return msgspec.structs.replace(
        small_config(tmp_path / "data"),
        webhooks=WebhookSettings(**{**settings, **webhooks}),  # type: ignore[arg-type]
    )


@pytest.fixture
async def hooked(tmp_path: Path, clock: ManualClock) -> AsyncIterator[tuple[Engine, Receiver]]:
    async with receiving() as receiver, open_engine(config=_config(tmp_path), clock=clock) as engine:  # type: ignore[arg-type]
        yield engine, receiver


async def _subscribe(engine: Engine, receiver: Receiver, events: list[str]) -> str:
    endpoint = await engine.webhooks.create(WebhookEndpointCreate(url=receiver.url, enabled_events=events))
    receiver.secrets.append(endpoint.secret)
    return endpoint.id


async def test_every_type_the_engine_produces_is_reported(hooked: tuple[Engine, Receiver]) -> None:
    engine, receiver = hooked
    await _subscribe(engine, receiver, ["*"])
    program, asset = await program_with_asset(engine, policy="PREFUNDED")
    await engine.fund(program.id, asset.id, "100")
    await engine.burn(program.id, asset.id, "10")
    await engine.tiers.create(
        program.id, msgspec.convert({"key": "vip", "levels": [{"key": "gold", "rank": 1}]}, TierCreate)
    )
    await rule(engine, program, "event.type == 'buy'", [{"type": "CREDIT", "asset_id": asset.id, "amount": "5"}])
    await rule(engine, program, "event.type == 'spend'", [{"type": "DEBIT", "asset_id": asset.id, "amount": "50"}])
    bought = await send(engine, program, "ann", {"type": "buy"})
    failed = await send(engine, program, "ann", {"type": "spend"})
    assert failed.status == "FAILED"
    participant = bought.participant_id
    assert participant is not None
    await engine.adjust_balance(
        participant,
        BalanceAdjust(program_id=program.id, type="DEBIT", asset_id=asset.id, amount="1", description="fix"),
    )
    await engine.balance_operation(
        "HOLD", participant, BalanceOperation(program_id=program.id, asset_id=asset.id, amount="2", description="hold")
    )
    await engine.balance_operation(
        "RELEASE",
        participant,
        BalanceOperation(program_id=program.id, asset_id=asset.id, amount="2", description="hold"),
    )
    await engine.tiers.set_state(participant, program.id, "vip", TierStateSet(level="gold"))
    await engine.wait_idle()
    expected = [
        "program.funded",
        "program.burned",
        "participant.created",
        "balance.credited",
        "event.completed",
        "event.failed",
        "balance.debited",
        "balance.held",
        "balance.released",
        "participant.tier_changed",
    ]
    got = await receiver.wait_for(len(expected))
    assert [d.body["type"] for d in got] == expected
    assert receiver.unverified == 0
    assert got[5].body["data"]["error_message"] and got[5].body["data"]["status"] == "FAILED"
    assert got[9].body["data"]["new_level"] == "gold" and got[9].body["data"]["tier_key"] == "vip"
    assert got[0].body["data"]["amount"] == "100.00" and got[1].body["data"]["amount"] == "10.00"
    report = await engine.verify()
    assert report.ok, report.problems


async def test_a_retry_waits_for_its_backoff_on_the_engine_clock(tmp_path: Path, clock: ManualClock) -> None:
    config = _config(tmp_path, retry_base_s=60.0, retry_max_s=600.0, attempts_max=3)
    async with receiving() as receiver, open_engine(config=config, clock=clock) as engine:  # type: ignore[arg-type]
        receiver.mode = "fail"
        endpoint_id = await _subscribe(engine, receiver, ["event.completed"])
        program, _ = await program_with_asset(engine)
        await send(engine, program, "ann", {})
        await receiver.wait_until(lambda got: bool(got.requests))
        (delivery,) = engine.webhooks.list_deliveries(endpoint_id).data
        await trio.sleep(0.1)  # the worker keeps polling: nothing is due before the backoff has passed
        assert len(receiver.requests) == 1
        delivery = engine.webhooks.get_delivery(delivery.id)
        assert delivery.status == "PENDING" and delivery.attempt_count == 1
        assert delivery.next_attempt_at is not None
        wait = delivery.next_attempt_at - clock.now
        assert timedelta(seconds=30) <= wait <= timedelta(seconds=60)  # base 60 s, jittered down to half
        clock.advance(wait - timedelta(seconds=1))
        assert await engine.webhooks.deliver_due() == 0
        assert len(receiver.requests) == 1
        clock.advance(timedelta(seconds=1))
        await engine.webhooks.deliver_due()  # the worker's own poll may be the one that sends it
        second = engine.webhooks.get_delivery(delivery.id)
        assert second.attempt_count == 2 and second.next_attempt_at is not None
        assert timedelta(seconds=60) <= second.next_attempt_at - clock.now <= timedelta(seconds=120)
        clock.advance(timedelta(seconds=120))
        await engine.webhooks.deliver_due()
        assert engine.webhooks.get_delivery(delivery.id).status == "FAILED"
        assert engine.webhooks.statistics().outbox_depth == 0
        assert len(receiver.requests) == 3


# The test closes the engine with the "late" delivery still being attempted, on purpose: when the close lands while
# httpx is sending that request's body, httpx's body generator is collected unfinished and trio warns about it
# (seen once in CI under load). That is the cancelled HTTP request, not a lost write: the record stays pending.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_finished_outbox_records_are_pruned_after_the_retention(tmp_path: Path, clock: ManualClock) -> None:
    config = _config(tmp_path, retention_s=3600.0)
    async with receiving() as receiver, open_engine(config=config, clock=clock) as engine:  # type: ignore[arg-type]
        endpoint_id = await _subscribe(engine, receiver, ["event.completed"])
        program, _ = await program_with_asset(engine)
        for number in range(3):
            await send(engine, program, f"p{number}", {})
        await receiver.wait_for(3)
        for _ in range(500):
            if not engine.webhooks.statistics().outbox_depth:
                break
            await trio.sleep(0.01)
        assert engine.webhooks.prune() == 0  # delivered, but still within the retention
        clock.advance(timedelta(seconds=3601))
        receiver.mode = "fail"
        await send(engine, program, "late", {})  # pending: kept whatever its age
        assert engine.webhooks.prune() == 3
        await engine.wait_idle()
        statistics = engine.webhooks.statistics()
        assert statistics.outbox_records == 1 and statistics.pruned == 3
        remaining = engine.webhooks.list_deliveries(endpoint_id).data
        assert [d.event_type for d in remaining] == ["event.completed"]
        report = await engine.verify()
        assert report.ok, report.problems


async def test_verify_reports_an_outbox_record_that_does_not_decode(hooked: tuple[Engine, Receiver]) -> None:
    engine, receiver = hooked
    await _subscribe(engine, receiver, ["event.completed"])
    program, _ = await program_with_asset(engine)
    await send(engine, program, "ann", {})
    await receiver.wait_for(1)
    await engine.wait_idle()
    engine._writer.append([("webhook_events", (999).to_bytes(8, "big"), b"[not json")])
    report = await engine.verify()
    assert not report.ok
    assert any("outbox record #999" in problem for problem in report.problems)
    engine._writer.append([("webhook_events", (999).to_bytes(8, "big"), None)])  # the fixture's store stays sound


async def test_endpoints_survive_a_restart_and_keep_their_secret(tmp_path: Path, clock: ManualClock) -> None:
    config = _config(tmp_path)
    async with receiving() as receiver:
        async with open_engine(config=config, clock=clock) as engine:  # type: ignore[arg-type]
            await _subscribe(engine, receiver, ["event.completed"])
        async with open_engine(config=config, clock=clock) as engine:  # type: ignore[arg-type]
            program, _ = await program_with_asset(engine)
            await send(engine, program, "ann", {})
            (got,) = await receiver.wait_for(1)
            assert got.verified_with == receiver.secrets


async def test_archiving_an_endpoint_fails_its_pending_deliveries(tmp_path: Path, clock: ManualClock) -> None:
    config = _config(tmp_path, retry_base_s=3600.0)
    async with receiving() as receiver, open_engine(config=config, clock=clock) as engine:  # type: ignore[arg-type]
        receiver.mode = "fail"
        endpoint_id = await _subscribe(engine, receiver, ["event.completed"])
        program, _ = await program_with_asset(engine)
        for number in range(3):
            await send(engine, program, f"p{number}", {})
        await receiver.wait_until(lambda got: bool(got.requests))
        await engine.wait_idle()
        ids = [delivery.id for delivery in engine.webhooks.list_deliveries(endpoint_id).data]
        assert len(ids) == 3
        await engine.webhooks.archive(endpoint_id)
        for _ in range(500):
            if not engine.webhooks.statistics().outbox_depth:
                break
            await trio.sleep(0.01)
        assert engine.webhooks.statistics().outbox_depth == 0
        for delivery_id in ids:
            delivery = engine.webhooks.get_delivery(delivery_id)
            assert delivery.status == "FAILED" and delivery.last_error == "endpoint archived"
            with pytest.raises(NotFound):
                await engine.webhooks.retry(delivery_id)
        report = await engine.verify()
        assert report.ok, report.problems


async def test_a_target_is_checked_again_before_every_attempt(tmp_path: Path, clock: ManualClock) -> None:
    async with receiving() as receiver:
        async with open_engine(config=_config(tmp_path), clock=clock) as engine:  # type: ignore[arg-type]
            endpoint_id = await _subscribe(engine, receiver, ["event.completed"])  # loopback allowed here
        strict = _config(tmp_path, allow_private_targets=False, attempts_max=1)
        async with open_engine(config=strict, clock=clock) as engine:  # type: ignore[arg-type]
            program, _ = await program_with_asset(engine)
            await send(engine, program, "ann", {})
            for _ in range(500):
                if not engine.webhooks.statistics().outbox_depth:
                    break
                await trio.sleep(0.01)
            (delivery,) = engine.webhooks.list_deliveries(endpoint_id).data
            assert delivery.status == "FAILED" and receiver.requests == []
            assert (delivery.last_error or "").startswith("target refused: url must use https")


async def test_unusable_secret_keys_are_refused_and_a_changed_key_fails_deliveries(
    tmp_path: Path, clock: ManualClock
) -> None:
    with pytest.raises(ValueError, match="not a Fernet key"):
        async with open_engine(config=_config(tmp_path, secret_key="short"), clock=clock):  # type: ignore[arg-type]
            pass
    inside = str(tmp_path / "data" / "webhooks.key")
    with pytest.raises(ValueError, match="inside the data directory"):
        async with open_engine(config=_config(tmp_path, secret_key_file=inside), clock=clock):  # type: ignore[arg-type]
            pass
    async with receiving() as receiver:
        first = _config(tmp_path, secret_key=Fernet.generate_key().decode(), attempts_max=1)
        async with open_engine(config=first, clock=clock) as engine:  # type: ignore[arg-type]
            endpoint_id = await _subscribe(engine, receiver, ["event.completed"])
        second = _config(tmp_path, secret_key=Fernet.generate_key().decode(), attempts_max=1)
        async with open_engine(config=second, clock=clock) as engine:  # type: ignore[arg-type]
            program, _ = await program_with_asset(engine)
            await send(engine, program, "ann", {})
            for _ in range(500):
                if not engine.webhooks.statistics().outbox_depth:
                    break
                await trio.sleep(0.01)
            (delivery,) = engine.webhooks.list_deliveries(endpoint_id).data
            assert delivery.status == "FAILED" and "does not decrypt" in (delivery.last_error or "")
            assert receiver.requests == []


async def test_expiry_redemptions_reversals_and_transfers_are_reported(
    hooked: tuple[Engine, Receiver], clock: ManualClock
) -> None:
    engine, receiver = hooked
    wanted = ["balance.expired", "redemption.completed", "redemption.reversed", "transfer.completed"]
    await _subscribe(engine, receiver, wanted)
    program, asset = await program_with_asset(engine, mode="LOT", scale=0)
    await rule(
        engine, program, "event.type == 'buy'", [CreditAction(asset_id=asset.id, amount="100", expires_at="24h")]
    )
    ann = (await send(engine, program, "ann", {"type": "buy"}, at=clock.now)).participant_id
    bob = (await send(engine, program, "bob", {"type": "buy"}, at=clock.now)).participant_id
    assert ann is not None and bob is not None
    redemption, _ = await engine.redemptions.create(
        ann, RedemptionCreate(program_id=program.id, asset_id=asset.id, amount="30", description="mug")
    )
    await engine.redemptions.reverse(redemption.id, ReversalCreate(reason="broken", amount="10"))
    await engine.transfers.create(
        TransferCreate(
            program_id=program.id,
            asset_id=asset.id,
            source_participant_id=ann,
            recipients=[TransferRecipient(participant_id=bob, amount="5")],
            description="gift",
        )
    )
    clock.advance(timedelta(days=1, seconds=1))
    engine.sweep_due()
    await engine.wait_idle()

    def expired(got: Receiver) -> dict[str, int]:
        totals: dict[str, int] = {}
        for delivery in got.delivered:
            if delivery.body["type"] == "balance.expired":
                data = delivery.body["data"]
                totals[data["participant_id"]] = totals.get(data["participant_id"], 0) + int(data["amount"])
        return totals

    # Every lot's remainder expires, the reversed 10 included (it keeps its lot's date); the 5 bob was given is a
    # lot of his without an expiry.
    await receiver.wait_until(lambda got: expired(got) == {ann: 75, bob: 100})
    got = receiver.delivered
    assert [d.body["type"] for d in got][:3] == ["redemption.completed", "redemption.reversed", "transfer.completed"]
    assert {d.body["type"] for d in got[3:]} == {"balance.expired"}
    assert got[0].body["data"]["amount"] == "30" and got[0].body["data"]["participant_id"] == ann
    assert got[1].body["data"]["amount"] == "10"
    transfer = got[2].body["data"]
    assert transfer["source_participant_id"] == ann and transfer["recipients"] == [
        {"participant_id": bob, "amount": "5"}
    ]
    assert receiver.unverified == 0


@pytest.mark.parametrize(
    ("settled", "amount", "delta"), [("12", "12.00", "2.00"), ("7.50", "7.50", "-2.50"), ("10", "10.00", "0.00")]
)
async def test_a_settle_reports_what_was_held_and_the_difference(
    hooked: tuple[Engine, Receiver], settled: str, amount: str, delta: str
) -> None:
    """§8.2: a settle is a balance.credited of the settled amount with ``settle: {held_amount, delta}``."""
    engine, receiver = hooked
    await _subscribe(engine, receiver, ["balance.credited"])
    program, asset = await program_with_asset(engine, mode="LOT")
    authorize = [
        {"type": "CREDIT", "asset_id": asset.id, "amount": "10", "bucket": "HELD", "reference_id": "event.auth"}
    ]
    settle = [{"type": "CREDIT", "asset_id": asset.id, "amount": settled, "reference_id": "event.auth"}]
    await rule(engine, program, "event.type == 'auth'", authorize)
    await rule(engine, program, "event.type == 'settle'", settle)
    assert (await send(engine, program, "ann", {"type": "auth", "auth": "a-1"})).status == "COMPLETED"
    assert (await send(engine, program, "ann", {"type": "settle", "auth": "a-1"})).status == "COMPLETED"
    provisional, settlement = [delivery.body["data"] for delivery in await receiver.wait_for(2)]
    assert provisional["bucket"] == "HELD" and "settle" not in provisional
    assert settlement["action_type"] == "SETTLE" and settlement["reference_id"] == "a-1"
    assert (settlement["bucket"], settlement["amount"]) == ("AVAILABLE", amount)
    assert settlement["settle"] == {"held_amount": "10.00", "delta": delta}
