"""scrip-actor: a self-hosted loyalty and rewards engine.

The embedded API is one async context manager::

    import trio
    from scrip_actor import open_engine, ProgramCreate

    async def main():
        async with open_engine("./data") as engine:
            program = await engine.create_program(ProgramCreate(name="Rewards"))

    trio.run(main)

Every resource and request type is a msgspec Struct re-exported here; every error is a :class:`ScripError`.
"""

from scrip_actor.config import Config as Config
from scrip_actor.config import load_config as load_config
from scrip_actor.engine import Engine as Engine
from scrip_actor.engine import EngineStatistics as EngineStatistics
from scrip_actor.engine import open_engine as open_engine
from scrip_actor.errors import Conflict as Conflict
from scrip_actor.errors import IdempotencyConflict as IdempotencyConflict
from scrip_actor.errors import InsufficientFunds as InsufficientFunds
from scrip_actor.errors import InvalidScale as InvalidScale
from scrip_actor.errors import LimitExceeded as LimitExceeded
from scrip_actor.errors import NotFound as NotFound
from scrip_actor.errors import Overloaded as Overloaded
from scrip_actor.errors import ScripError as ScripError
from scrip_actor.errors import SelfTransfer as SelfTransfer
from scrip_actor.errors import ValidationFailed as ValidationFailed
from scrip_actor.model import AdjustResult as AdjustResult
from scrip_actor.model import Asset as Asset
from scrip_actor.model import AssetCreate as AssetCreate
from scrip_actor.model import AssetUpdate as AssetUpdate
from scrip_actor.model import Balance as Balance
from scrip_actor.model import BalanceAdjust as BalanceAdjust
from scrip_actor.model import BalanceOperation as BalanceOperation
from scrip_actor.model import BalanceOperationResult as BalanceOperationResult
from scrip_actor.model import BroadcastAction as BroadcastAction
from scrip_actor.model import BudgetSpec as BudgetSpec
from scrip_actor.model import CounterAction as CounterAction
from scrip_actor.model import CreditAction as CreditAction
from scrip_actor.model import DebitAction as DebitAction
from scrip_actor.model import Event as Event
from scrip_actor.model import EventSubmit as EventSubmit
from scrip_actor.model import ForfeitAction as ForfeitAction
from scrip_actor.model import HoldAction as HoldAction
from scrip_actor.model import ItemRedemptionCreate as ItemRedemptionCreate
from scrip_actor.model import JournalEntry as JournalEntry
from scrip_actor.model import Lot as Lot
from scrip_actor.model import LotProcessed as LotProcessed
from scrip_actor.model import Page as Page
from scrip_actor.model import Participant as Participant
from scrip_actor.model import ParticipantCreate as ParticipantCreate
from scrip_actor.model import ParticipantUpdate as ParticipantUpdate
from scrip_actor.model import Posting as Posting
from scrip_actor.model import Program as Program
from scrip_actor.model import ProgramCreate as ProgramCreate
from scrip_actor.model import ProgramUpdate as ProgramUpdate
from scrip_actor.model import Redemption as Redemption
from scrip_actor.model import RedemptionCreate as RedemptionCreate
from scrip_actor.model import ReleaseAction as ReleaseAction
from scrip_actor.model import Reversal as Reversal
from scrip_actor.model import ReversalCreate as ReversalCreate
from scrip_actor.model import Reward as Reward
from scrip_actor.model import RewardCreate as RewardCreate
from scrip_actor.model import RewardUpdate as RewardUpdate
from scrip_actor.model import Rule as Rule
from scrip_actor.model import RuleBudget as RuleBudget
from scrip_actor.model import RuleCreate as RuleCreate
from scrip_actor.model import RuleEvaluation as RuleEvaluation
from scrip_actor.model import RuleUpdate as RuleUpdate
from scrip_actor.model import RuleVersion as RuleVersion
from scrip_actor.model import ScheduleEventAction as ScheduleEventAction
from scrip_actor.model import SetAttributeAction as SetAttributeAction
from scrip_actor.model import TagAction as TagAction
from scrip_actor.model import Target as Target
from scrip_actor.model import TransferCreate as TransferCreate
from scrip_actor.model import TransferRecipient as TransferRecipient
from scrip_actor.model import TransferResult as TransferResult
from scrip_actor.model import UntagAction as UntagAction
from scrip_actor.model import VoidHoldAction as VoidHoldAction
from scrip_actor.model import WalletBalance as WalletBalance
from scrip_actor.model import WalletOperationResult as WalletOperationResult
from scrip_actor.verify import VerifyReport as VerifyReport
from scrip_actor.verify import verify as verify

__all__ = [
    "AdjustResult",
    "Asset",
    "AssetCreate",
    "AssetUpdate",
    "Balance",
    "BalanceAdjust",
    "BalanceOperation",
    "BalanceOperationResult",
    "BroadcastAction",
    "BudgetSpec",
    "Config",
    "Conflict",
    "CounterAction",
    "CreditAction",
    "DebitAction",
    "Engine",
    "EngineStatistics",
    "Event",
    "EventSubmit",
    "ForfeitAction",
    "HoldAction",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidScale",
    "ItemRedemptionCreate",
    "JournalEntry",
    "LimitExceeded",
    "Lot",
    "LotProcessed",
    "NotFound",
    "Overloaded",
    "Page",
    "Participant",
    "ParticipantCreate",
    "ParticipantUpdate",
    "Posting",
    "Program",
    "ProgramCreate",
    "ProgramUpdate",
    "Redemption",
    "RedemptionCreate",
    "ReleaseAction",
    "Reversal",
    "ReversalCreate",
    "Reward",
    "RewardCreate",
    "RewardUpdate",
    "Rule",
    "RuleBudget",
    "RuleCreate",
    "RuleEvaluation",
    "RuleUpdate",
    "RuleVersion",
    "ScheduleEventAction",
    "ScripError",
    "SelfTransfer",
    "SetAttributeAction",
    "TagAction",
    "Target",
    "TransferCreate",
    "TransferRecipient",
    "TransferResult",
    "UntagAction",
    "ValidationFailed",
    "VerifyReport",
    "VoidHoldAction",
    "WalletBalance",
    "WalletOperationResult",
    "load_config",
    "open_engine",
    "verify",
]
