"""What both clients share: settings, building a request from a route, retry decisions, decoding answers.

Nothing here does I/O; ``_async_client.py`` and ``_sync_client.py`` each hold the few lines that send a request and
sleep, around :class:`Attempts`.

Retries (docs/client.md): a connection that could not be opened, and a 429 (the server refused the work before
doing any), are retried for every route. A 502/503/504 or an answer that never came (read timeout, dropped
connection) are retried only for routes whose repetition is harmless (``Route.repeatable``), because the first
request may have done its work. The wait is ``Retry-After`` when the server sends one, else exponential backoff
with full jitter; attempts and the total time are both bounded.
"""

from __future__ import annotations

import email.utils
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from scrip_actor.client._errors import ApiError, TransportError, error_of_response
from scrip_actor.client._routes import ROUTES, Route

__all__ = ["Attempts", "ClientSettings", "Prepared", "RetryPolicy", "decimal_string", "decode", "prepare"]

QueryValue = str | int | bool | Decimal | datetime | date | None

log = logging.getLogger("scrip_actor.client")
_RETRIED_STATUSES = frozenset({429, 502, 503, 504})
# Failures that prove the request never reached the server: retrying them is safe for any route.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_encoder = msgspec.json.Encoder()


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How hard a call tries.

    Attributes:
        attempts_max: most requests one call sends (1: never retry).
        total_s: a call gives up rather than wait past this many seconds since it started.
        backoff_initial_s: the first backoff's upper bound; it doubles each retry (full jitter: a random wait
            between 0 and the bound).
        backoff_max_s: the bound stops doubling here.
        retry_after_max_s: a ``Retry-After`` longer than this is not waited for: the error is raised instead.
    """

    attempts_max: int = 4
    total_s: float = 30.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    retry_after_max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        if min(self.total_s, self.backoff_initial_s, self.backoff_max_s, self.retry_after_max_s) < 0:
            raise ValueError("retry times must not be negative")


class ClientSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the server is and how to talk to it (the API key is not kept here, so printing these never shows it).

    Attributes:
        base_url: e.g. ``http://127.0.0.1:8080``.
        timeout_s: the longest wait for each read, write or pooled connection of one request.
        connect_timeout_s: the longest wait to open a connection.
        retry: the retry policy (:class:`RetryPolicy`).
    """

    base_url: str
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    retry: RetryPolicy = RetryPolicy()

    def httpx_options(self, api_key: str) -> dict[str, Any]:
        """The keyword arguments of ``httpx.Client`` / ``httpx.AsyncClient``; ``api_key`` is sent as
        ``Authorization: Bearer <key>`` (docs/http.md, "Authentication")."""
        if not api_key or api_key != api_key.strip():
            raise ValueError("api_key must be a non-empty key without surrounding spaces")
        return {
            "base_url": self.base_url,
            "headers": {"Authorization": f"Bearer {api_key}", "User-Agent": "scrip-actor-client"},
            "timeout": httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
            "follow_redirects": False,
        }


@dataclass(frozen=True, slots=True)
class Prepared:
    """One logical call, ready to send (and to send again, byte for byte, on a retry)."""

    route: Route
    url: str
    params: list[tuple[str, str]]
    content: bytes | None


def decimal_string(amount: str | int | Decimal) -> str:
    """An amount as the decimal string the API takes; floats (money is never a float) and NaN are refused."""
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise TypeError(f"amounts are decimal strings, ints or Decimals, not {type(amount).__name__}")
    if isinstance(amount, Decimal):
        if not amount.is_finite():
            raise ValueError(f"amounts are finite, not {amount}")
        return format(amount, "f")  # never an exponent: Decimal("1E+2") is "100"
    return str(amount)


def _query_value(value: QueryValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        raise TypeError("query values are never floats: pass a decimal string, an int or a Decimal")
    return decimal_string(value) if isinstance(value, Decimal) else str(value)


def _query(filters: dict[str, QueryValue] | None) -> list[tuple[str, str]]:
    """Query parameters: None values left out; a trailing ``_`` dropped from a name (``from_`` is ``from``)."""
    return [
        (name.removesuffix("_"), _query_value(value)) for name, value in (filters or {}).items() if value is not None
    ]


def _with_key(body: Any) -> Any:
    """``body`` with an idempotency key if it has none: generated once per call, so every retry sends the same."""
    if isinstance(body, msgspec.Struct) and getattr(body, "idempotency_key", "unset") is None:
        return msgspec.structs.replace(body, idempotency_key="cli_" + secrets.token_hex(16))  # type: ignore[call-arg]
    return body


def prepare(
    name: str, path: dict[str, str], body: Any = None, filters: dict[str, QueryValue] | None = None
) -> Prepared:
    """The request for the route the client calls ``name``: path parameters quoted, body encoded once."""
    route = ROUTES[name]
    url = route.path.format_map({key: quote(str(value), safe="") for key, value in path.items()})
    if route.keyed:
        body = _with_key(body)
    content = None if body is None else _encoder.encode(body)
    return Prepared(route, url, _query(filters), content)


def decode(route: Route, response: httpx.Response) -> Any:
    """The success answer as the route's type (the server's own Struct), text for text routes, None for 204."""
    if route.response is None or response.status_code == 204:
        return None
    if route.response is str:
        return response.text
    try:
        return msgspec.json.decode(response.content, type=route.response)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ApiError(
            f"the answer does not decode as {route.response}: {error}",
            status=response.status_code,
            code="undecodable_answer",
            request_id=response.headers.get("X-Request-Id"),
        ) from error


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())


class Attempts:
    """The retry loop's decisions for one call: whether to try again after a failure, and after how long."""

    def __init__(self, prepared: Prepared, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self._route = prepared.route
        self._policy = policy
        self._rng = rng or random.Random()
        self._deadline = time.monotonic() + policy.total_s
        self.sent = 0

    def _wait(self, retry_after_s: float | None) -> float | None:
        """The wait before the next attempt, or None to give up (attempts or time used up)."""
        if self.sent >= self._policy.attempts_max:
            return None
        if retry_after_s is not None:
            if retry_after_s > self._policy.retry_after_max_s:
                return None
            wait = retry_after_s
        else:
            bound = min(self._policy.backoff_max_s, self._policy.backoff_initial_s * 2 ** (self.sent - 1))
            wait = self._rng.uniform(0, bound)
        return wait if time.monotonic() + wait <= self._deadline else None

    def after_exception(self, error: httpx.TransportError) -> float | None:
        """After a request got no answer: the wait before retrying, or None to raise."""
        if not isinstance(error, _NOT_SENT) and not self._route.repeatable:
            return None  # it may have reached the server and done its work
        return self._logged(self._wait(None), type(error).__name__)

    def after_answer(self, response: httpx.Response) -> float | None:
        """After a refused answer: the wait before retrying, or None to raise it."""
        status = response.status_code
        if status not in _RETRIED_STATUSES or (status != 429 and not self._route.repeatable):
            return None
        return self._logged(self._wait(_retry_after_s(response.headers.get("Retry-After"))), str(status))

    def _logged(self, wait_s: float | None, cause: str) -> float | None:
        if wait_s is not None:
            route = self._route
            log.info(
                "retrying %s %s in %.3f s after %s (attempt %d of %d)",
                route.method,
                route.path,
                wait_s,
                cause,
                self.sent,
                self._policy.attempts_max,
            )
        return wait_s

    @staticmethod
    def error_of(response: httpx.Response) -> ApiError:
        """The exception for a refused answer."""
        retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
        return error_of_response(
            response.status_code, response.content, response.headers.get("X-Request-Id"), retry_after_s
        )

    def transport_error(self, error: httpx.TransportError) -> TransportError:
        """The exception for a request that got no answer, after the retries allowed."""
        kind = "timed out" if isinstance(error, httpx.TimeoutException) else "failed"
        return TransportError(f"{self._route.method} {self._route.path} {kind} after {self.sent} attempt(s): {error!r}")
