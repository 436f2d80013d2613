"""An endpoint whose deliveries keep failing is DISABLED by the engine, says why, and takes nothing new.

Deliveries to one endpoint go strictly in order, so a dead receiver holds its queue for every delivery's whole
retry schedule while the outbox grows behind it. After ``webhooks.disable_after_failed_deliveries`` deliveries
in a row end FAILED, the endpoint is DISABLED with a ``disabled_reason``; a DELIVERED one ends the run; setting
a status by PATCH clears the reason and the run (docs/webhooks.md "When the outbox grows").
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.http.conftest import Api
from tests.http.test_webhooks_are_signed_ordered_and_retried import (  # the fixture too
    _credit_rule,
    _endpoint,
    _purchase,
    receiver,
    serving,
)
from tests.webhook_receiver import Receiver

__all__ = ["receiver"]


async def _finished(api: Api, endpoint_id: str, count: int) -> list[str]:
    """The statuses of the endpoint's deliveries (oldest first) once ``count`` of them are DELIVERED or FAILED."""
    with trio.fail_after(10):
        while True:
            page = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 100})
            statuses = [delivery["status"] for delivery in reversed(page["data"])]
            if sum(status in ("DELIVERED", "FAILED") for status in statuses) >= count:
                return statuses
            await trio.sleep(0.02)


async def test_failures_in_a_row_disable_the_endpoint_and_a_patch_enables_it_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with serving(tmp_path, attempts_max=1, disable_after_failed_deliveries=2) as api:
        receiver.mode = "fail"
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        program = await _credit_rule(api)
        await _purchase(api, program, "alice", "order-1")
        assert await _finished(api, endpoint["id"], 1) == ["FAILED"]
        assert (await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}"))["status"] == "ACTIVE"

        await _purchase(api, program, "alice", "order-2")
        assert await _finished(api, endpoint["id"], 2) == ["FAILED", "FAILED"]
        shown = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}")
        assert shown["status"] == "DISABLED"
        assert shown["disabled_reason"].startswith("disabled after 2 deliveries in a row failed; the last: receiver")
        listed = await api.ok("GET", "/v1/webhook-endpoints", params={"status": "DISABLED"})
        assert [item["id"] for item in listed["data"]] == [endpoint["id"]]

        # DISABLED: the next event queues nothing for it.
        await _purchase(api, program, "alice", "order-3")
        await api.engine.wait_idle()
        await trio.sleep(0.1)
        page = await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
        assert len(page["data"]) == 2
        assert len(receiver.requests) == 2

        receiver.mode = "ok"
        enabled = await api.ok("PATCH", f"/v1/webhook-endpoints/{endpoint['id']}", json={"status": "ACTIVE"})
        assert enabled["status"] == "ACTIVE" and enabled["disabled_reason"] is None
        await _purchase(api, program, "alice", "order-4")
        await receiver.wait_for(1)
        # The run starts again from zero: one more failure alone does not disable it.
        receiver.mode = "fail"
        await _purchase(api, program, "alice", "order-5")
        assert (await _finished(api, endpoint["id"], 4))[-2:] == ["DELIVERED", "FAILED"]
        assert (await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}"))["status"] == "ACTIVE"


async def test_a_delivered_one_ends_the_run(tmp_path: Path, receiver: Receiver) -> None:
    async with serving(tmp_path, attempts_max=1, disable_after_failed_deliveries=2) as api:
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        program = await _credit_rule(api)
        for number, mode in enumerate(["fail", "ok", "fail", "ok", "fail"]):
            receiver.mode = mode  # type: ignore[assignment]
            await _purchase(api, program, "alice", f"order-{number}")
            await _finished(api, endpoint["id"], number + 1)
        assert (await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}"))["status"] == "ACTIVE"


async def test_zero_never_disables_and_the_run_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    async with serving(tmp_path, attempts_max=1, disable_after_failed_deliveries=0) as api:
        receiver.mode = "fail"
        endpoint = await _endpoint(api, receiver, ["event.completed"])
        program = await _credit_rule(api)
        for number in range(3):
            await _purchase(api, program, "alice", f"order-{number}")
        assert await _finished(api, endpoint["id"], 3) == ["FAILED"] * 3
        assert (await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}"))["status"] == "ACTIVE"
    # Reopened with a limit of 4: the three failures before the restart count, so one more disables it.
    async with serving(tmp_path, attempts_max=1, disable_after_failed_deliveries=4) as api:
        program = (await api.ok("GET", "/v1/programs"))["data"][0]
        await _purchase(api, program, "alice", "order-3")
        assert await _finished(api, endpoint["id"], 4) == ["FAILED"] * 4
        assert (await api.ok("GET", f"/v1/webhook-endpoints/{endpoint['id']}"))["status"] == "DISABLED"
