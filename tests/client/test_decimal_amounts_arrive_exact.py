"""Amounts given as ``Decimal`` or ``int`` reach the ledger exactly: whatever the sequence of fundings, the wallet
balance the server reports is their exact sum (no float ever carries money on the way)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrip_actor.client import AsyncScripClient
from scrip_actor.model import AssetCreate, ProgramCreate
from tests.client.conftest import API_KEY, running_server

# Cents up to 10^12 as a Decimal of exponent -2, a Decimal in exponent form, or a plain int of whole units.
_AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=10**12).map(lambda cents: Decimal(cents).scaleb(-2)),
    st.integers(min_value=1, max_value=10**6).map(lambda hundreds: Decimal(hundreds).scaleb(2)),  # 1E+2...
    st.integers(min_value=1, max_value=10**9),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amounts=st.lists(_AMOUNTS, min_size=1, max_size=4))
async def test_fundings_sum_exactly(amounts: list[Decimal | int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with running_server(Path(directory)) as server, AsyncScripClient(server.base_url, API_KEY) as client:
            await _fund_and_check(client, amounts)


async def _fund_and_check(client: AsyncScripClient, amounts: list[Decimal | int]) -> None:
    program = await client.create_program(ProgramCreate(name="Exact"))
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
    expected = Decimal(0)
    for amount in amounts:
        result = await client.fund_wallet(program.id, asset.id, amount)
        expected += amount
        assert Decimal(result.available) == expected
    (wallet,) = (await client.program_balance(program.id, asset_id=asset.id)).data
    assert wallet.available == f"{expected:.2f}"


@pytest.mark.parametrize("bad", [1.5, Decimal("NaN"), Decimal("Infinity"), True])
async def test_amounts_that_are_not_exact_numbers_are_refused_before_sending(
    client: AsyncScripClient, bad: object
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await client.fund_wallet("prg_x", "ast_x", bad)  # type: ignore[arg-type]
