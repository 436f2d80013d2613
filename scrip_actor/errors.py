"""One small error tree for everything a caller can get wrong.

Every error a caller can cause is a :class:`ScripError` with a stable machine ``code``, a human ``message`` and
structured ``details``. The HTTP layer maps each class to a status in one table; the embedded API raises them as
they are. Anything that is *not* a ScripError escaping the engine is a bug.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "Conflict",
    "DataDirInUse",
    "DataDirUnusable",
    "DataFileDamaged",
    "ExitCode",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidScale",
    "LimitExceeded",
    "MapTooSmall",
    "NotFound",
    "Overloaded",
    "SchemaMismatch",
    "ScripError",
    "SelfTransfer",
    "StoreUnusable",
    "ValidationFailed",
]


class ScripError(Exception):
    """Root of every error the engine raises on purpose.

    Attributes:
        code: stable snake_case machine code, e.g. ``"not_found"``.
        message: one sentence for a human.
        details: structured context; for validation, ``{"fields": [{"field", "reason", "message"}]}``.
    """

    code = "error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The ``{code, message, details}`` shape used on the wire."""
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(ScripError):
    """The request is malformed or breaks a documented constraint (HTTP 400)."""

    code = "bad_request"

    @classmethod
    def field(cls, field: str, reason: str, message: str) -> ValidationFailed:
        """A validation error about one field, with per-field details."""
        return cls(message, {"fields": [{"field": field, "reason": reason, "message": message}]})


class InvalidScale(ValidationFailed):
    """An amount has more decimal places than its asset's scale allows (HTTP 400)."""

    code = "invalid_scale"


class SelfTransfer(ValidationFailed):
    """A transfer names its source among its recipients (HTTP 400)."""

    code = "self_transfer"


class NotFound(ScripError):
    """The named resource does not exist (HTTP 404)."""

    code = "not_found"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found", {"resource": kind, "id": key})


class Conflict(ScripError):
    """The request clashes with the current state, e.g. a rule order already taken (HTTP 409)."""

    code = "conflict"


class IdempotencyConflict(Conflict):
    """The idempotency key was used before with a different payload (HTTP 409)."""

    code = "idempotency_conflict"


class InsufficientFunds(ScripError):
    """A balance or wallet is too small for the operation (HTTP 422)."""

    code = "insufficient_balance"


class LimitExceeded(ScripError):
    """A configured limit would be exceeded (HTTP 400 or 413, by context)."""

    code = "limit_exceeded"


class Overloaded(ScripError):
    """The engine's bounded queues are full; retry later (HTTP 429)."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class ExitCode(enum.IntEnum):
    """Exit statuses of the ``scrip`` command, in one place (the table is in docs/operations.md)."""

    OK = 0
    VERIFY_FAILED = 1  # ``scrip verify`` found problems
    BAD_SETTINGS = 2  # unusable settings or command line; ``verify``: no store at the path
    COMMIT_FAILED = 3  # fail-stop: a commit failed while serving (see scrip_actor.http.server)
    DATA_DIR_IN_USE = 4  # another process (or this one) owns the data directory
    DATA_DIR_UNUSABLE = 5  # the data directory path is a file, or cannot be created
    DATA_FILE_DAMAGED = 6  # data.mdb is truncated or not an LMDB file: mapping it would SIGBUS
    MAP_TOO_SMALL = 7  # storage.lmdb_map_size_bytes is smaller than the data already stored
    SCHEMA_MISMATCH = 8  # the store's schema version is not this version's


class StoreUnusable(ScripError):
    """The store cannot be opened as it is; refused before anything is written. ``message`` is one line."""

    code = "store_unusable"
    exit_code = ExitCode.DATA_DIR_UNUSABLE


class DataDirInUse(StoreUnusable):
    """Another open engine or server owns the data directory (an exclusive lock, see scrip_actor._data_dir)."""

    code = "data_dir_in_use"
    exit_code = ExitCode.DATA_DIR_IN_USE


class DataDirUnusable(StoreUnusable):
    """The data directory path is not a directory, or cannot be created."""

    code = "data_dir_unusable"
    exit_code = ExitCode.DATA_DIR_UNUSABLE


class DataFileDamaged(StoreUnusable):
    """``data.mdb`` is shorter than its last commit or is not LMDB's: mapping it would crash with SIGBUS."""

    code = "data_file_damaged"
    exit_code = ExitCode.DATA_FILE_DAMAGED


class MapTooSmall(StoreUnusable):
    """The configured map is smaller than the data already stored: the first commit would fail."""

    code = "map_too_small"
    exit_code = ExitCode.MAP_TOO_SMALL


class SchemaMismatch(StoreUnusable):
    """The store was written by a version with another schema (or records none)."""

    code = "schema_mismatch"
    exit_code = ExitCode.SCHEMA_MISMATCH
