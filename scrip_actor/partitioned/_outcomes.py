"""What became of a record that was refused (or, for a balance operation or a state write, its answer): kept under
its log position, which the front's 202 names.

A front answers 202 once the broker stored a record, before any engine judged it. When the partition's engine then
refuses it (a transfer that overdraws, an event whose idempotency key another participant used first, a credit
whose recipient is gone), the refusal ``{code, message, details}`` is written under ``meta`` key
``log_outcome:<topic>/<partition>/<offset>`` in the same record as the position it moved. An event refused by the
embedded admission checks (bad input) is not kept here: the front refuses those with a 4xx before producing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from scrip_actor.engine import Engine
from scrip_actor.errors import ScripError
from scrip_actor.http.errors import status_of
from scrip_actor.store import Op, be64

__all__ = ["applied_result", "log_outcome", "outcome_op", "reply_op", "result_op"]

_encoder = msgspec.json.Encoder()


def _key(log: str, offset: int, kind: bytes = b"log_outcome:") -> bytes:
    return kind + log.encode() + b"/" + be64(offset)


def outcome_op(log: str, offset: int, error: ScripError) -> Op:
    """The op that keeps ``error`` as the outcome of the record at ``offset`` of ``log``."""
    # http_status: what the embedded route answers it with, so the front can answer a waiting client the same way.
    return ("meta", _key(log, offset), _encoder.encode({**error.to_dict(), "http_status": status_of(error)}))


def log_outcome(engine: Engine, log: str, offset: int) -> dict[str, Any] | None:
    """The refusal kept for the record at ``offset`` (None: it was applied, or is not judged yet)."""
    raw = engine._store.get_raw("meta", _key(log, offset))
    return None if raw is None else msgspec.json.decode(raw)


def result_op(log: str, offset: int, result: Any) -> Op:
    """The op keeping an applied balance operation's answer under its record's position (``log_result:``)."""
    return ("meta", _key(log, offset, b"log_result:"), _encoder.encode(result))


def reply_op(log: str, offset: int, http_status: int, body: Any) -> Op:
    """The op keeping an applied state write's reply, the embedded route's status and body (``log_reply:``; a
    204's body is None)."""
    return ("meta", _key(log, offset, b"log_reply:"), _encoder.encode([http_status, body]))


def applied_result(engine: Engine, log: str, offset: int) -> tuple[Any, int | None]:
    """The answer kept for the record at ``offset`` and the status the embedded route answers it with: a balance
    operation's (200) or a state write's; ``(None, None)``: neither, or not applied yet."""
    store = engine._store
    raw = store.get_raw("meta", _key(log, offset, b"log_result:"))
    if raw is not None:
        return msgspec.json.decode(raw), 200
    raw = store.get_raw("meta", _key(log, offset, b"log_reply:"))
    if raw is None:
        return None, None
    http_status, body = msgspec.json.decode(raw, type=tuple[int, Any])
    return body, http_status
