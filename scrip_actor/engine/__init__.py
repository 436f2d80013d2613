"""The embedded engine, one public face over its stages.

Use it through :func:`open_engine`::

    async with open_engine("./data") as engine:
        program = await engine.create_program(ProgramCreate(name="Rewards"))
        ...

Every method that changes something returns only once the change is durable (committed to LMDB, fsync'd when
``storage.sync`` is on). Events are the exception by design: :meth:`Engine.submit` returns once the event itself is
durable, and the event is then processed in the background, strictly in submission order per participant.

The package's private modules are the stages an event passes through, in one direction: admission, the
participant's mailbox, the step, the publish sink that turns a step's result into store records, the writer, and
the durability callbacks that finish the event. :class:`Engine` only validates, calls one stage and awaits.
"""

from scrip_actor.engine._backtest_offline import backtest_data_dir as backtest_data_dir
from scrip_actor.engine._budgets import budget_ops as budget_ops
from scrip_actor.engine._consumed import Verdict as Verdict
from scrip_actor.engine._consumed import admit_consumed as admit_consumed
from scrip_actor.engine._consumed import consumed_offset as consumed_offset
from scrip_actor.engine._consumed import offset_op as offset_op
from scrip_actor.engine._cross_partition import STATE_WRITE_NAMES as STATE_WRITE_NAMES
from scrip_actor.engine._cross_partition import TransitCredit as TransitCredit
from scrip_actor.engine._cross_partition import receive_credit as receive_credit
from scrip_actor.engine._cross_partition import redemption_owner as redemption_owner
from scrip_actor.engine._cross_partition import reward_credit as reward_credit
from scrip_actor.engine._cross_partition import run_operation as run_operation
from scrip_actor.engine._cross_partition import run_participant_upsert as run_participant_upsert
from scrip_actor.engine._cross_partition import run_redemption as run_redemption
from scrip_actor.engine._cross_partition import run_reversal as run_reversal
from scrip_actor.engine._cross_partition import run_state_write as run_state_write
from scrip_actor.engine._cross_partition import send_transfer as send_transfer
from scrip_actor.engine._cross_partition import transit_account as transit_account
from scrip_actor.engine._engine import Engine as Engine
from scrip_actor.engine._engine import EngineStatistics as EngineStatistics
from scrip_actor.engine._engine import open_engine as open_engine
from scrip_actor.engine._queries import _EVENT_SCAN_MAX as _EVENT_SCAN_MAX
from scrip_actor.engine._state_history import StateHistoryFilter as StateHistoryFilter

__all__ = [
    "STATE_WRITE_NAMES",
    "Engine",
    "EngineStatistics",
    "StateHistoryFilter",
    "TransitCredit",
    "Verdict",
    "admit_consumed",
    "backtest_data_dir",
    "budget_ops",
    "consumed_offset",
    "offset_op",
    "open_engine",
    "receive_credit",
    "redemption_owner",
    "reward_credit",
    "run_operation",
    "run_participant_upsert",
    "run_redemption",
    "run_reversal",
    "run_state_write",
    "send_transfer",
    "transit_account",
]
