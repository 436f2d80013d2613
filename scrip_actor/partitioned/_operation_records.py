"""A participant's balance operation as a record of the events topic (the front's ``POST …/balances/{operation}``).

The front produces it to the partition its ``participant_id`` names (an id's first 8 hex digits are its
partition, ``_partition_ids.py``) with the ``scrip-kind: operation`` header; that partition's applier
(``_apply.py``) runs it with the embedded engine's own operation, in turn with the participant's events, and
writes the log offset and the operation's answer in the operation's own LMDB record. The answer (or the refusal)
is kept under the record's position (``_outcomes.py``), where ``GET /v1/log-records/{partition}/{offset}`` finds
it and the front waits for it.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from scrip_actor.model import BalanceAdjust, BalanceOperation

__all__ = [
    "OPERATION_PATHS",
    "ParticipantOperation",
    "operation_hash",
]

OperationName = Literal["ADJUST", "HOLD", "RELEASE", "FORFEIT", "VOID_HOLD"]
# The embedded routes' last path segment (POST /v1/participants/{participant_id}/balances/<segment>).
OPERATION_PATHS: dict[str, OperationName] = {
    "adjust": "ADJUST",
    "hold": "HOLD",
    "release": "RELEASE",
    "forfeit": "FORFEIT",
    "void-hold": "VOID_HOLD",
}

_encoder = msgspec.json.Encoder()


class ParticipantOperation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One balance operation on one participant: ``adjust`` for ADJUST, ``balance`` for the others (each the
    embedded route's body, checked again when the record is decoded)."""

    operation: OperationName
    participant_id: str
    adjust: BalanceAdjust | None = None
    balance: BalanceOperation | None = None

    def __post_init__(self) -> None:
        # A record names exactly the body its operation takes (msgspec turns this into a decode error).
        if (self.adjust is not None) != (self.operation == "ADJUST") or (self.balance is not None) == (
            self.operation == "ADJUST"
        ):
            body = "adjust" if self.operation == "ADJUST" else "balance"
            raise ValueError(f"a {self.operation} record carries {body}, and only it")

    @property
    def request(self) -> BalanceAdjust | BalanceOperation:
        """The operation's body."""
        found = self.adjust if self.operation == "ADJUST" else self.balance
        assert found is not None
        return found


def operation_hash(command: ParticipantOperation) -> str:
    """The payload hash its idempotency key is claimed with: operation, participant and body."""
    return hashlib.sha256(_encoder.encode(command)).hexdigest()
