"""``/v1/assets``: units of value. ``inventory_mode``, ``issuance_policy`` and ``scale`` never change."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from scrip_actor.http.routing import Call, Endpoint, listing
from scrip_actor.http.schemas import AssetPatch, AssetQuery, ListOf
from scrip_actor.model import Asset, AssetCreate, AssetUpdate

__all__ = ["ENDPOINTS", "asset_update"]


async def create_asset(call: Call) -> Asset:
    """Create an asset linked to ``program_id``; symbols are unique (409 otherwise)."""
    return await call.engine.create_asset(call.body)


async def list_assets(call: Call) -> ListOf[Any]:
    """Assets, newest first, optionally linked to ``program_id`` or with a ``status``."""
    query: AssetQuery = call.query
    return listing(
        await call.engine.list_assets(
            program_id=query.program_id,
            status=query.status,
            search=query.search,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_asset(call: Call) -> Asset:
    """One asset."""
    return await call.engine.get_asset(call.path["asset_id"])


def asset_update(patch: AssetPatch) -> AssetUpdate:
    """The engine request for an HTTP patch: ``max_transaction_amount: null`` becomes ``clear_...=True``."""
    cap = patch.max_transaction_amount
    return AssetUpdate(
        name=None if patch.name is UNSET else patch.name,
        status=None if patch.status is UNSET else patch.status,
        max_transaction_amount=None if cap is UNSET else cap,
        clear_max_transaction_amount=cap is None,
    )


async def update_asset(call: Call) -> Asset:
    """Change ``name``, archive (``status: ARCHIVED``, one way) or set/clear ``max_transaction_amount``."""
    return await call.engine.update_asset(call.path["asset_id"], asset_update(call.body))


ENDPOINTS = [
    Endpoint(
        "POST", "/v1/assets", create_asset, "Create an asset", "Assets", body=AssetCreate, response=Asset, status=201
    ),
    Endpoint("GET", "/v1/assets", list_assets, "List assets", "Assets", query=AssetQuery, response=ListOf[Asset]),
    Endpoint("GET", "/v1/assets/{asset_id}", get_asset, "Get an asset", "Assets", response=Asset),
    Endpoint(
        "PATCH", "/v1/assets/{asset_id}", update_asset, "Update an asset", "Assets", body=AssetPatch, response=Asset
    ),
]
