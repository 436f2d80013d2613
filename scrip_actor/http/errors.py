"""The one table from error class to HTTP status, and the ``{code, message, details}`` body every error uses.

Everything a caller can get wrong is a :class:`~scrip_actor.errors.ScripError`. The engine raises its own
subclasses; this module adds the few that only HTTP can cause (a missing key, a body that is too big or not JSON,
an unknown route). :func:`status_of` walks the error's class hierarchy and stops at the first class the table
names, so a new engine subclass inherits its parent's status without anyone touching this file.

Anything that is *not* a ScripError reaching the HTTP layer is a bug: the app logs it with the request id and
answers a generic 500 (see ``app.py``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from scrip_actor.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidScale,
    LimitExceeded,
    NotFound,
    Overloaded,
    ScripError,
    ValidationFailed,
)

__all__ = [
    "BrokerUnavailable",
    "ErrorBody",
    "MethodNotAllowed",
    "NotRouted",
    "PartitionUnavailable",
    "PartitionsDisagree",
    "PayloadTooLarge",
    "RequestTimeout",
    "RouteNotFound",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_body",
    "status_of",
    "validation_failed",
]


class Unauthorized(ScripError):
    """No API key, or one this server does not know (HTTP 401)."""

    code = "unauthorized"


class PayloadTooLarge(ScripError):
    """The request body is bigger than this route accepts (HTTP 413); checked while reading, before decoding."""

    code = "payload_too_large"


class RequestTimeout(ScripError):
    """The request body did not arrive in time (HTTP 408); the connection is closed."""

    code = "request_timeout"


class UnsupportedMediaType(ScripError):
    """A request body that is not ``application/json`` (HTTP 415)."""

    code = "unsupported_media_type"


class RouteNotFound(ScripError):
    """No route matches the path (HTTP 404, code ``not_found`` like an unknown resource)."""

    code = "not_found"


class MethodNotAllowed(ScripError):
    """The path exists but not with this method (HTTP 405); ``details.allowed`` lists the methods that exist."""

    code = "method_not_allowed"


class BrokerUnavailable(ScripError):
    """Partitioned mode's front could not get an event stored in the events topic (HTTP 503): the broker did not
    acknowledge it in time or refused it. Nothing was acknowledged; sending the same event again (same
    ``idempotency_key``) is safe, the partition's engine applies it once."""

    code = "broker_unavailable"


class PartitionUnavailable(ScripError):
    """Partitioned mode's front has no answering reader for a partition the read needs (HTTP 503): its engine is
    down, moving, or started without ``--read-host``. ``details.partition`` names it; a list is never answered
    without it (no silent partial list). Retrying later is safe: reads change nothing."""

    code = "partition_unavailable"


class PartitionsDisagree(ScripError):
    """Partitioned mode's front was asked for a figure merged over the partitions (a report) and the partitions'
    answers cannot be added up (HTTP 502): they list different catalogs (assets, programs, buckets) or a figure the
    front cannot read. ``details.field`` names what differs. Nothing partial is answered: the catalog of some
    partition was changed behind the front's back (every partition is seeded with the same one)."""

    code = "partitions_disagree"


class NotRouted(ScripError):
    """Partitioned mode's front does not serve this route (HTTP 501): writes other than ``POST /v1/events``, and
    reads whose data is spread over the partitions in a way the front does not merge yet (reports, ...)."""

    code = "not_routed"


# The single map from error class to status. Subclasses not named here inherit their nearest ancestor's entry.
_STATUS_BY_CLASS: dict[type[ScripError], int] = {
    ValidationFailed: 400,
    InvalidScale: 400,
    LimitExceeded: 400,
    Unauthorized: 401,
    NotFound: 404,
    RouteNotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    IdempotencyConflict: 409,
    PayloadTooLarge: 413,
    RequestTimeout: 408,
    UnsupportedMediaType: 415,
    InsufficientFunds: 422,
    Overloaded: 429,
    NotRouted: 501,
    BrokerUnavailable: 503,
    PartitionUnavailable: 503,
    PartitionsDisagree: 502,
    ScripError: 400,
}


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every 4xx/5xx body: a stable machine ``code``, a human ``message``, structured ``details``.

    ``request_id`` (also sent as the ``X-Request-Id`` header) is what to quote when reporting a problem; the
    server logs it next to every unexpected error.
    """

    code: str
    message: str
    details: dict[str, Any] = {}
    request_id: str | None = None


def status_of(error: ScripError) -> int:
    """The HTTP status for ``error``: the entry of the nearest class in its hierarchy."""
    for cls in type(error).__mro__:
        status = _STATUS_BY_CLASS.get(cls)
        if status is not None:
            return status
    raise AssertionError(f"{type(error).__name__} is not a ScripError")  # unreachable: ScripError is in the table


def error_body(error: ScripError, request_id: str | None) -> ErrorBody:
    """The wire body for a ScripError."""
    return ErrorBody(code=error.code, message=error.message, details=error.details, request_id=request_id)


_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?P<what>missing required|unknown) field `(?P<name>[^`]+)`")


def validation_failed(error: msgspec.ValidationError, root: str = "") -> ValidationFailed:
    """Turn msgspec's ``ValidationError`` into a 400 whose ``details.fields`` names the offending field.

    msgspec reports one problem per error, e.g. ``Expected `str`, got `int` - at `$.name``` or
    ``Object missing required field `amount```; the ``$`` path becomes a dotted field name (``actions[0].amount``)
    and the kind of problem becomes ``reason`` (``required``, ``unknown`` or ``invalid``). ``root`` prefixes the
    path, e.g. ``query`` for query parameters.
    """
    text = str(error)
    path, reason = "", "invalid"
    match = _AT_PATH.search(text)
    if match is not None:
        path = match.group("path")
    named = _NAMED_FIELD.search(text)
    if named is not None:
        reason = "required" if named.group("what") == "missing required" else "unknown"
        path = f"{path}.{named.group('name')}"
    field = (root + path).lstrip(".") or "$"
    message = _AT_PATH.sub("", text)
    return ValidationFailed(
        f"invalid request: {message} (field {field})",
        {"fields": [{"field": field, "reason": reason, "message": message}]},
    )


def decode_json(decoder: msgspec.json.Decoder[Any], raw: bytes) -> Any:
    """Decode and validate ``raw`` JSON with ``decoder``; every way bytes can be wrong is a 400, never a crash.

    Used for request bodies and for records consumed from the events topic (partitioned mode), where one bad
    record raising anything else would stop its partition at the same offset on every restart.
    """
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as error:
        raise validation_failed(error) from None
    except msgspec.DecodeError as error:
        raise ValidationFailed(f"malformed JSON: {error}", {"reason": "malformed_json"}) from None
    except RecursionError:  # msgspec decodes nested arrays/objects recursively
        raise ValidationFailed("malformed JSON: nested too deeply", {"reason": "too_deep"}) from None
    except UnicodeDecodeError as error:  # msgspec validates UTF-8 only when it builds a str
        raise ValidationFailed(
            f"malformed JSON: body is not valid UTF-8 ({error.reason} at byte {error.start})",
            {"reason": "malformed_json"},
        ) from None
