"""Each kind of refusal raises its own exception, with the server's code, message, details, status and request id;
where the engine has the same kind of error, catching the engine's class catches the client's too."""

from __future__ import annotations

import pytest

from scrip_actor import errors
from scrip_actor.client import (
    ApiError,
    AsyncScripClient,
    BadRequestError,
    ConflictError,
    IdempotencyConflictError,
    InsufficientFundsError,
    NotFoundError,
    RateLimitedError,
    ScripClient,
    ScripError,
    ServerError,
    UnauthorizedError,
)
from scrip_actor.model import AssetCreate, BalanceAdjust, EventSubmit, ParticipantCreate, ProgramCreate
from tests.client.conftest import API_KEY, FAST_RETRY, FlakyProxy, Server, in_thread, program_with_points


async def test_an_unknown_resource_is_not_found(client: AsyncScripClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.get_program("prg_missing")
    error = raised.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.details == {"resource": "program", "id": "prg_missing"}
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.request_id in str(error)
    assert isinstance(error, errors.NotFound)  # code written for the embedded engine catches it too
    assert isinstance(error, ScripError)


async def test_a_bad_body_is_a_bad_request_naming_the_field(client: AsyncScripClient) -> None:
    program = await client.create_program(ProgramCreate(name="Rewards"))
    bad = AssetCreate(
        program_id=program.id, name="P", symbol="PTS", inventory_mode="SIMPLE", issuance_policy="UNLIMITED", scale=99
    )
    with pytest.raises(BadRequestError) as raised:
        await client.create_asset(bad)  # msgspec does not check constraints when a Struct is built: the server does
    assert raised.value.status == 400
    assert [field["field"] for field in raised.value.details["fields"]] == ["scale"]
    assert isinstance(raised.value, errors.ValidationFailed)


async def test_an_unknown_query_parameter_is_a_bad_request(client: AsyncScripClient) -> None:
    with pytest.raises(BadRequestError) as raised:
        await client.list_programs(colour="blue")
    assert raised.value.details["fields"][0]["field"] == "query.colour"


async def test_too_many_decimals_keep_the_servers_code(client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    participant = await client.upsert_participant(ParticipantCreate(external_id="gus", program_id=program.id))
    adjust = BalanceAdjust(program_id=program.id, asset_id=asset_id, type="CREDIT", amount="1.001", description="x")
    with pytest.raises(BadRequestError) as raised:
        await client.adjust_balance(participant.id, adjust)
    assert raised.value.code == "invalid_scale"


async def test_a_wrong_key_is_unauthorized(server: Server) -> None:
    async with AsyncScripClient(server.base_url, "sk_wrong", retry=FAST_RETRY) as client:
        with pytest.raises(UnauthorizedError) as raised:
            await client.list_programs()
        assert (raised.value.status, raised.value.code) == (401, "unauthorized")
        assert (await client.health()).status == "ok"  # the one open route


async def test_linking_an_asset_twice_is_a_conflict(client: AsyncScripClient) -> None:
    program, asset_id = await program_with_points(client)
    with pytest.raises(ConflictError) as raised:
        await client.link_asset(program.id, asset_id)
    assert raised.value.status == 409
    assert not isinstance(raised.value, IdempotencyConflictError)
    assert isinstance(raised.value, errors.Conflict)


async def test_a_reused_event_key_with_another_payload_is_an_idempotency_conflict(client: AsyncScripClient) -> None:
    program, _asset_id = await program_with_points(client)
    await client.submit_event(EventSubmit(program_id=program.id, idempotency_key="k", external_id="h", event_data={}))
    with pytest.raises(IdempotencyConflictError) as raised:
        await client.submit_event(
            EventSubmit(program_id=program.id, idempotency_key="k", external_id="h", event_data={"other": 1})
        )
    assert (raised.value.status, raised.value.code) == (409, "idempotency_conflict")
    assert isinstance(raised.value, ConflictError)
    assert isinstance(raised.value, errors.IdempotencyConflict)


async def test_burning_more_than_the_wallet_holds_is_insufficient_funds(client: AsyncScripClient) -> None:
    program = await client.create_program(ProgramCreate(name="Prefunded"))
    asset = await client.create_asset(
        AssetCreate(
            program_id=program.id,
            name="Cash",
            symbol="EUR",
            inventory_mode="SIMPLE",
            issuance_policy="PREFUNDED",
            scale=2,
        )
    )
    await client.fund_wallet(program.id, asset.id, "10.00", "top up")
    with pytest.raises(InsufficientFundsError) as raised:
        await client.burn_wallet(program.id, asset.id, "10.01")
    assert (raised.value.status, raised.value.code) == (422, "insufficient_balance")
    assert isinstance(raised.value, errors.InsufficientFunds)
    (wallet,) = (await client.program_balance(program.id)).data
    assert wallet.available == "10.00"


async def test_a_429_that_outlasts_the_retries_is_rate_limited(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(429, {"Retry-After": "0"})] * 10
    async with AsyncScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
        with pytest.raises(RateLimitedError) as raised:
            await client.list_programs()
    assert raised.value.status == 429
    assert raised.value.retry_after_s == 0
    assert isinstance(raised.value, errors.Overloaded)
    assert len(flaky_proxy.seen) == FAST_RETRY.attempts_max


async def test_a_500_is_a_server_error_and_is_not_retried(flaky_proxy: FlakyProxy) -> None:
    flaky_proxy.script = [(500, {})]

    def call() -> ServerError:
        with ScripClient(flaky_proxy.base_url, API_KEY, retry=FAST_RETRY) as client:
            try:
                client.list_programs()
            except ServerError as error:
                return error
            raise AssertionError("no error")

    error = await in_thread(call)
    assert error.status == 500
    assert isinstance(error, ApiError)
    assert len(flaky_proxy.seen) == 1


async def test_the_sync_client_raises_the_same_exceptions(server: Server) -> None:
    def call() -> None:
        with ScripClient(server.base_url, API_KEY) as client, pytest.raises(NotFoundError):
            client.get_event("evt_missing")

    await in_thread(call)


async def test_the_key_never_shows_in_a_repr_or_an_error(server: Server) -> None:
    async with AsyncScripClient(server.base_url, "sk_secret_value") as client:
        with pytest.raises(UnauthorizedError) as raised:
            await client.list_programs()
        shown = [repr(client), repr(client.settings), str(raised.value), repr(raised.value)]
    assert repr(client) == f"AsyncScripClient({server.base_url!r})"
    assert not any("sk_secret_value" in text for text in shown)


def test_an_empty_or_padded_key_is_refused_up_front() -> None:
    for key in ("", " sk_x", "sk_x\n"):
        with pytest.raises(ValueError, match="api_key"):
            ScripClient("http://127.0.0.1:1", key)
