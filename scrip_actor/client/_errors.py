"""The exceptions the client raises: one per kind of failure, each a :class:`scrip_actor.errors.ScripError`.

Every answer the server refuses carries ``{code, message, details, request_id}`` (docs/http.md); the client turns it
into an :class:`ApiError` subclass chosen by status, keeping the server's ``code`` (``invalid_scale``,
``idempotency_conflict``...) on the instance. Where the engine has the same kind of error, the client's class also
inherits the engine's (``NotFoundError`` is a :class:`scrip_actor.errors.NotFound`), so code written against the
embedded engine catches the same failures from the HTTP client.
"""

from __future__ import annotations

from typing import Any

import msgspec

from scrip_actor import errors

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConflictError",
    "IdempotencyConflictError",
    "InsufficientFundsError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "error_of_response",
]


class ApiError(errors.ScripError):
    """A request the server refused, or one that never got an answer.

    Attributes:
        code: the server's machine code (``not_found``, ``invalid_scale``...); ``transport_error`` when no answer came.
        message: the server's sentence for a human.
        details: the server's structured details (``fields`` for validation errors).
        status: the HTTP status, or None when no answer came.
        request_id: the server's ``X-Request-Id``: quote it when reporting a problem.
    """

    code = "error"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        errors.ScripError.__init__(self, message, details)
        if code is not None:
            self.code = code
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"


class BadRequestError(ApiError, errors.ValidationFailed):
    """400 (and 405, 413, 415, 431): the request is malformed or breaks a documented constraint."""

    code = "bad_request"


class UnauthorizedError(ApiError):
    """401: no API key, or one the server does not know."""

    code = "unauthorized"


class NotFoundError(ApiError, errors.NotFound):
    """404: the resource (or the route) does not exist."""

    code = "not_found"


class ConflictError(ApiError, errors.Conflict):
    """409: the request clashes with the current state."""

    code = "conflict"


class IdempotencyConflictError(ConflictError, errors.IdempotencyConflict):
    """409 ``idempotency_conflict``: the key was used before with a different payload."""

    code = "idempotency_conflict"


class InsufficientFundsError(ApiError, errors.InsufficientFunds):
    """422: a balance or wallet is too small for the operation."""

    code = "insufficient_balance"


class RateLimitedError(ApiError, errors.Overloaded):
    """429, still refused after the retries: the server's queues are full.

    Attributes:
        retry_after_s: the server's ``Retry-After`` in seconds (None if it sent none).
    """

    code = "too_many_requests"

    def __init__(self, message: str, details: dict[str, Any] | None = None, **kwargs: Any) -> None:
        retry_after_s = kwargs.pop("retry_after_s", None)
        ApiError.__init__(self, message, details, **kwargs)
        self.retry_after_s = retry_after_s


class ServerError(ApiError):
    """5xx, still failing after any retries the call allows: a server bug (500) or an unavailable server."""

    code = "internal_error"


class TransportError(ApiError):
    """No answer: the connection failed or timed out (the cause is the ``httpx`` exception, as ``__cause__``)."""

    code = "transport_error"


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    404: NotFoundError,
    405: BadRequestError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: InsufficientFundsError,
    429: RateLimitedError,
    431: BadRequestError,
}


class _ErrorBody(msgspec.Struct):
    code: str = "error"
    message: str = ""
    details: dict[str, Any] = {}
    request_id: str | None = None


_decoder = msgspec.json.Decoder(_ErrorBody)


def error_of_response(status: int, content: bytes, request_id: str | None, retry_after_s: float | None) -> ApiError:
    """The exception for a refused answer: its class from the status, its fields from the error body.

    A body that is not the server's error shape (a proxy's HTML page, say) still gives the right class, with the
    start of the body as the message.
    """
    try:
        body = _decoder.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = content[:200].decode("utf-8", "replace").strip()
        body = _ErrorBody(code=f"http_{status}", message=text or f"HTTP {status} with no error body")
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    if cls is ConflictError and body.code == IdempotencyConflictError.code:
        cls = IdempotencyConflictError
    kwargs: dict[str, Any] = {"status": status, "code": body.code, "request_id": body.request_id or request_id}
    if cls is RateLimitedError:
        kwargs["retry_after_s"] = retry_after_s
    return cls(body.message, body.details, **kwargs)
