"""``/v1/programs``: programs, their wallets (fund, burn, balance) and the assets linked to them."""

from __future__ import annotations

from typing import Any

from scrip_actor.http.routing import Call, Endpoint, listing, page_of
from scrip_actor.http.schemas import (
    AssetLink,
    BalanceQuery,
    ListOf,
    PageQuery,
    ProgramQuery,
    WalletOperation,
)
from scrip_actor.model import Asset, Program, ProgramCreate, ProgramUpdate, WalletBalance, WalletOperationResult

__all__ = ["ENDPOINTS"]


def _by_asset(balance: Any) -> tuple[bytes]:
    """A balance's page key: its asset id (bytes, so a cursor of any other shape is refused)."""
    return (balance.asset_id.encode(),)


async def create_program(call: Call) -> Program:
    """Create a program (status ACTIVE)."""
    return await call.engine.create_program(call.body)


async def list_programs(call: Call) -> ListOf[Any]:
    """Programs, newest first; archived ones only with ``include_archived`` or ``status=ARCHIVED``."""
    query: ProgramQuery = call.query
    return listing(
        await call.engine.list_programs(
            include_archived=query.include_archived,
            status=query.status,
            search=query.search,
            sort_by=query.sort_by,
            sort_dir=query.sort_dir,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_program(call: Call) -> Program:
    """One program."""
    return await call.engine.get_program(call.path["program_id"])


async def update_program(call: Call) -> Program:
    """Change name, description, unknown-participant policy or status; omitted fields keep their value."""
    return await call.engine.update_program(call.path["program_id"], call.body)


async def fund_wallet(call: Call) -> WalletOperationResult:
    """Move value from SYSTEM_ISSUANCE into the program's wallet of a PREFUNDED asset."""
    body: WalletOperation = call.body
    return await call.engine.fund(call.path["program_id"], call.path["asset_id"], body.amount, body.description)


async def burn_wallet(call: Call) -> WalletOperationResult:
    """Move value from the program's wallet to SYSTEM_BREAKAGE; never below zero (422)."""
    body: WalletOperation = call.body
    return await call.engine.burn(call.path["program_id"], call.path["asset_id"], body.amount, body.description)


async def program_balance(call: Call) -> ListOf[WalletBalance]:
    """The program's wallet balance of each linked PREFUNDED asset, in asset id order, paged."""
    query: BalanceQuery = call.query
    balances = await call.engine.wallet_balances(call.path["program_id"], query.asset_id)
    return page_of(balances, query.limit, query.cursor, key=_by_asset, shape=tuple[bytes])


async def link_asset(call: Call) -> Asset:
    """Link an existing asset to this program; linking twice is a 409."""
    body: AssetLink = call.body
    return await call.engine.link_asset(call.path["program_id"], body.asset_id)


async def list_program_assets(call: Call) -> ListOf[Any]:
    """Assets linked to this program, newest first."""
    query: PageQuery = call.query
    engine = call.engine
    await engine.get_program(call.path["program_id"])  # an unknown program is a 404, not an empty list
    return listing(await engine.list_assets(program_id=call.path["program_id"], limit=query.limit, cursor=query.cursor))


_PROGRAM = "/v1/programs/{program_id}"
_WALLET = _PROGRAM + "/assets/{asset_id}"

ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/programs",
        create_program,
        "Create a program",
        "Programs",
        body=ProgramCreate,
        response=Program,
        status=201,
    ),
    Endpoint(
        "GET", "/v1/programs", list_programs, "List programs", "Programs", query=ProgramQuery, response=ListOf[Program]
    ),
    Endpoint("GET", _PROGRAM, get_program, "Get a program", "Programs", response=Program),
    Endpoint("PATCH", _PROGRAM, update_program, "Update a program", "Programs", body=ProgramUpdate, response=Program),
    Endpoint(
        "POST",
        _WALLET + "/fund",
        fund_wallet,
        "Fund the program wallet of a PREFUNDED asset",
        "Programs",
        body=WalletOperation,
        response=WalletOperationResult,
    ),
    Endpoint(
        "POST",
        _WALLET + "/burn",
        burn_wallet,
        "Burn from the program wallet",
        "Programs",
        body=WalletOperation,
        response=WalletOperationResult,
    ),
    Endpoint(
        "GET",
        _PROGRAM + "/balance",
        program_balance,
        "Program wallet balances (PREFUNDED assets)",
        "Programs",
        query=BalanceQuery,
        response=ListOf[WalletBalance],
    ),
    Endpoint(
        "POST",
        _PROGRAM + "/assets",
        link_asset,
        "Link an asset to the program",
        "Programs",
        body=AssetLink,
        response=Asset,
        status=201,
    ),
    Endpoint(
        "GET",
        _PROGRAM + "/assets",
        list_program_assets,
        "List the program's assets",
        "Programs",
        query=PageQuery,
        response=ListOf[Asset],
    ),
]
