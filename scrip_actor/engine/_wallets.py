"""Program wallets: where a PREFUNDED asset's supply comes from, and where it goes when it is burnt.

A PREFUNDED asset cannot be created out of nothing by a rule: its credits draw on the program's wallet, which an
operator funds from ``SYSTEM_ISSUANCE`` and may burn back to ``SYSTEM_BREAKAGE``. Each operation is one balanced
journal entry, built by a ledger transaction like a rule's effects and published through the same sink, so the
wallet's balance, the journal and its hash chain move together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from scrip_actor import balance_ops
from scrip_actor.amounts import format_minor
from scrip_actor.engine._catalog import Catalog
from scrip_actor.engine._validation import new_id, positive_minor
from scrip_actor.errors import InsufficientFunds, ValidationFailed
from scrip_actor.ledger import ActionFailed, Changes, LedgerTx, World, account_key
from scrip_actor.model import Asset, Program, WalletBalance, WalletOperationResult
from scrip_actor.store import Op, Writer

_DESCRIPTION_LENGTH_MAX = 500


class Wallets:
    """Fund, burn and read the program wallets of PREFUNDED assets.

    Args:
        catalog: resolves the program and the asset (NotFound otherwise).
        world: the ledger's shared state; the wallets' balances are its accounts.
        clock: wall-clock source for the entry's time.
        writer: to wait until an operation's entry is durable.
        publish: appends a committed transaction's changes (the engine's sink) and returns its ticket.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        world: World,
        clock: Callable[[], datetime],
        writer: Writer,
        publish: Callable[[Changes, list[Op]], int],
    ) -> None:
        self._catalog = catalog
        self._world = world
        self._clock = clock
        self._writer = writer
        self._publish = publish

    def _wallet_asset(self, program_id: str, asset_id: str) -> tuple[Program, Asset]:
        program = self._catalog.program(program_id)
        asset = self._catalog.asset(asset_id)
        if program_id not in asset.program_ids:
            raise ValidationFailed.field(
                "asset_id", "not_linked", f"asset {asset.symbol} is not linked to program {program_id}"
            )
        if asset.issuance_policy != "PREFUNDED":
            raise ValidationFailed.field(
                "asset_id", "invalid", f"asset {asset.symbol} is UNLIMITED; only PREFUNDED assets have a wallet"
            )
        if asset.status != "ACTIVE":
            raise ValidationFailed.field("asset_id", "invalid", f"asset {asset.symbol} is archived")
        return program, asset

    async def fund(
        self, program_id: str, asset_id: str, amount: str, description: str | None = None
    ) -> WalletOperationResult:
        """Move ``amount`` from SYSTEM_ISSUANCE into the program's wallet of a PREFUNDED asset."""
        return await self._wallet_operation("fund", program_id, asset_id, amount, description)

    async def burn(
        self, program_id: str, asset_id: str, amount: str, description: str | None = None
    ) -> WalletOperationResult:
        """Move ``amount`` from the program's wallet to SYSTEM_BREAKAGE. Raises InsufficientFunds below zero."""
        return await self._wallet_operation("burn", program_id, asset_id, amount, description)

    async def _wallet_operation(
        self, kind: str, program_id: str, asset_id: str, amount: str, description: str | None
    ) -> WalletOperationResult:
        _, asset = self._wallet_asset(program_id, asset_id)
        if description is not None and len(description) > _DESCRIPTION_LENGTH_MAX:
            raise ValidationFailed.field(
                "description", "too_long", f"description is at most {_DESCRIPTION_LENGTH_MAX} characters"
            )
        amount_minor = positive_minor(amount, asset.scale, "amount")
        now = self._clock()
        tx = LedgerTx(self._world, now=now, id_seed=f"{kind}/{new_id()}", program_id=program_id)
        try:
            (balance_ops.fund if kind == "fund" else balance_ops.burn)(tx, asset, program_id, amount_minor, description)
        except ActionFailed as error:
            raise InsufficientFunds(str(error)) from None
        try:
            changes = tx.commit(now)
        except ActionFailed as error:  # a bound would break (nothing was published)
            raise ValidationFailed.field("amount", "out_of_range", str(error)) from None
        entry_id = changes.entries[0].id
        ticket = self._publish(changes, [])
        await self._writer.wait_durable(ticket)
        available = self._world.accounts.get(account_key("PROGRAM", program_id, asset.id), 0)
        verb = "Funded" if kind == "fund" else "Burned"
        return WalletOperationResult(
            available=format_minor(available, asset.scale),
            journal_entry_id=entry_id,
            message=f"{verb} {format_minor(amount_minor, asset.scale)} {asset.symbol}",
        )

    def wallet_balances(self, program_id: str, asset_id: str | None = None) -> list[WalletBalance]:
        """The program's wallet balance of each linked PREFUNDED asset."""
        self._catalog.program(program_id)
        balances = []
        for asset in sorted(self._world.assets.values(), key=lambda a: a.created_at):
            if program_id not in asset.program_ids or asset.issuance_policy != "PREFUNDED":
                continue
            if asset_id is not None and asset.id != asset_id:
                continue
            values = [
                self._world.accounts.get(account_key("PROGRAM", program_id, asset.id, b), 0)
                for b in ("AVAILABLE", "HELD", "DEFERRED")
            ]
            balances.append(
                WalletBalance(
                    asset_id=asset.id,
                    available=format_minor(values[0], asset.scale),
                    held=format_minor(values[1], asset.scale),
                    deferred=format_minor(values[2], asset.scale),
                    issuance_policy=asset.issuance_policy,
                )
            )
        return balances
