"""The Quart-Trio application: routes from the endpoint declarations, auth, errors, metrics, request ids.

:func:`create_app` takes an *open* engine and returns an ASGI app; it starts no tasks. The engine's lifetime
encloses the server's (``server.py``), never the other way round, so nothing here uses ``before_serving``.

Every request gets an id (``req_...``, sent back as ``X-Request-Id``). Errors are always ``{code, message,
details, request_id}``: ScripErrors map to a status through the one table in ``errors.py``; Werkzeug's own 404,
405 and 413 are rewritten into the same shape; anything else is a bug, logged with the request id and answered
with a generic 500 that leaks nothing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio
from quart import Response, current_app, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from scrip_actor.engine import Engine
from scrip_actor.errors import Overloaded, ScripError, ValidationFailed
from scrip_actor.http import (
    routes_assets,
    routes_automations,
    routes_backtests,
    routes_events,
    routes_history,
    routes_participants,
    routes_programs,
    routes_redemptions,
    routes_reports,
    routes_rules,
    routes_state,
    routes_system,
    routes_tiers,
    routes_webhooks,
)
from scrip_actor.http.auth import ApiKeys, presented_key
from scrip_actor.http.console import install_console
from scrip_actor.http.errors import (
    ErrorBody,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    RouteNotFound,
    Unauthorized,
    error_body,
    status_of,
)
from scrip_actor.http.metrics import HttpMetrics
from scrip_actor.http.routing import (
    Call,
    Endpoint,
    Reply,
    batch_items_exceed,
    decode_body,
    decode_query,
    read_body,
)

__all__ = ["HttpLimits", "create_app"]

log = logging.getLogger("scrip_actor.http")
_encoder = msgspec.json.Encoder()
_JSON = "application/json"


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds the HTTP layer enforces before the engine sees anything (see docs/http.md).

    Attributes:
        body_bytes_max: largest body of a single-resource request.
        batch_body_bytes_max: largest body of ``POST /v1/events/batch`` (also Quart's buffering cap). It also
            bounds the work of decoding a batch's item list *before* its length can be checked (msgspec builds
            the list first): 2 MiB of ``0,0,0,...`` is at most ~1M tiny items, about 70 MB transiently.
        batch_events_max: most events in one batch.
        body_read_timeout_s: a body must arrive within this; a stalled one is answered 408 and closed.
    """

    body_bytes_max: int = 1024 * 1024
    batch_body_bytes_max: int = 2 * 1024 * 1024
    batch_events_max: int = 1000
    body_read_timeout_s: float = 30.0


def all_endpoints(metrics: HttpMetrics, limits: HttpLimits, document: Callable[[], dict[str, Any]]) -> list[Endpoint]:
    """Every route the app serves, in documentation order."""
    return [
        *routes_system.endpoints(metrics, document),
        *routes_programs.ENDPOINTS,
        *routes_assets.ENDPOINTS,
        *routes_participants.ENDPOINTS,
        *routes_redemptions.ENDPOINTS,
        *routes_history.ENDPOINTS,
        *routes_state.ENDPOINTS,
        *routes_tiers.ENDPOINTS,
        *routes_automations.ENDPOINTS,
        *routes_backtests.ENDPOINTS,
        *routes_rules.ENDPOINTS,
        *routes_events.endpoints(limits.batch_events_max),
        *routes_reports.ENDPOINTS,
        *routes_webhooks.ENDPOINTS,
    ]


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(value), status=status, content_type=_JSON, headers=headers)


def _error(error: ScripError) -> Response:
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Overloaded) else {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="scrip"'
    if isinstance(error, RequestTimeout):
        headers["Connection"] = "close"
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.details.get("allowed", []))
    return _json(status_of(error), error_body(error, g.get("request_id")), headers)


def _header(name: bytes) -> str | None:
    """The first value of header ``name`` (lower case, as ASGI gives names), read from the ASGI scope.

    Not ``request.headers.get``: for an absent header werkzeug raises and catches a BadRequestKeyError (an
    HTTPException), which py-spy put at ~3 % of the server's CPU on single-event POSTs, where one of the two
    auth headers is always absent.
    """
    for header_name, value in request.scope["headers"]:
        if header_name == name:
            return bytes(value).decode("latin-1")
    return None


def _authenticate(keys: ApiKeys) -> None:
    key = presented_key(_header(b"authorization"), _header(b"x-api-key"))
    if key is None:
        raise Unauthorized("missing API key: send Authorization: Bearer <key> or X-API-Key: <key>")
    if not keys.accepts(key):
        raise Unauthorized("invalid API key")


def _view(endpoint: Endpoint, engine: Engine, keys: ApiKeys, limits: HttpLimits) -> Callable[..., Awaitable[Response]]:
    """The Quart view for one endpoint: auth, body, query, one handler call, encode."""
    body_limit = limits.batch_body_bytes_max if endpoint.batch else limits.body_bytes_max

    async def view(**path: str) -> Response:
        if endpoint.auth:
            _authenticate(keys)
        body = None
        if endpoint.body is not None:
            timeout_s = float(current_app.config["BODY_TIMEOUT"])  # set from HttpLimits.body_read_timeout_s
            with trio.move_on_after(timeout_s) as timeout:
                raw = await read_body(request, body_limit)
            if timeout.cancelled_caught:
                raise RequestTimeout(f"the request body did not arrive within {timeout_s} s")
            g.body_read = True
            if endpoint.batch and batch_items_exceed(raw, limits.batch_events_max):
                raise ValidationFailed.field(
                    "events", "too_many", f"a batch holds 1-{limits.batch_events_max} events, got more"
                )
            body = decode_body(endpoint, raw)
        if endpoint.query is not None:
            query = decode_query(endpoint.query, request.args.to_dict())
        elif request.args:
            # A typo'd parameter must never pass silently, on routes without parameters too.
            names = sorted(request.args)
            raise ValidationFailed(
                f"this route takes no query parameters; got {', '.join(names)}",
                {"fields": [{"field": f"query.{name}", "reason": "unknown", "message": "unknown"} for name in names]},
            )
        else:
            query = None
        result = await endpoint.handler(Call(engine, path, body, query))
        status, value = (result.status, result.value) if isinstance(result, Reply) else (endpoint.status, result)
        if status == 204:
            return Response("", status=204)
        if endpoint.content_type != _JSON:
            return Response(value, status=status, content_type=endpoint.content_type)
        return _json(status, value)

    view.__name__ = endpoint.name
    return view


def _body_left_unread() -> bool:
    """Whether the request came with a body that no view read to the end."""
    chunked = "chunked" in (_header(b"transfer-encoding") or "").lower()
    return ((request.content_length or 0) > 0 or chunked) and not g.get("body_read", False)


def _install_hooks(app: QuartTrio, metrics: HttpMetrics, routes: dict[str, str]) -> None:
    """Request ids, latency and per-route counts."""

    @app.before_request
    async def start() -> None:
        g.request_id = "req_" + secrets.token_hex(8)
        g.started_s = time.perf_counter()

    @app.after_request
    async def finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        if _body_left_unread():
            # Answered before reading the body (401, 404, 405, 413, 415): the rest of it is still on the wire, and
            # a kept-alive connection would wait behind it forever. Close it after this answer, as nginx does.
            response.headers["Connection"] = "close"
        rule = request.url_rule
        route = routes.get(rule.endpoint, rule.rule) if rule is not None else "unmatched"
        # Bounded labels: a made-up method must not mint a new series (anyone can send one, even without a key).
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        metrics.observe(route, method, response.status_code, time.perf_counter() - g.get("started_s", 0.0))
        return response


def _install_error_handlers(app: QuartTrio) -> None:
    @app.errorhandler(ScripError)
    async def scrip_error(error: ScripError) -> Response:
        return _error(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        if error.code == 404:
            return _error(RouteNotFound(f"no route {request.method} {request.path}", {"path": request.path}))
        if error.code == 405:
            allowed = sorted(getattr(error, "valid_methods", None) or [])
            return _error(MethodNotAllowed(f"{request.method} is not allowed on {request.path}", {"allowed": allowed}))
        if error.code == 413:
            return _error(PayloadTooLarge("request body is too large"))
        status = error.code or 500
        body = ErrorBody(code="http_error", message=error.description or "HTTP error", request_id=g.get("request_id"))
        return _json(status, body)

    @app.errorhandler(Exception)
    async def bug(error: Exception) -> Response:
        request_id = g.get("request_id")
        log.exception("unexpected error in %s %s (request %s)", request.method, request.path, request_id)
        body = ErrorBody(
            code="internal_error", message=f"internal error; quote request id {request_id}", request_id=request_id
        )
        return _json(500, body)


def create_app(
    engine: Engine, keys: ApiKeys, limits: HttpLimits | None = None, *, read_only: bool = False
) -> QuartTrio:
    """The ASGI app for an open engine. Starts nothing; serve it with ``server.serve``.

    Args:
        engine: an engine inside its ``open_engine`` block; it must outlive the server.
        keys: the API keys ``/v1`` routes and ``/metrics`` accept.
        limits: body and batch limits; the defaults suit most deployments.
        read_only: serve only the GET routes, no console (a partition's reader in partitioned mode: its writes
            arrive through the events topic, never over HTTP); any other method is a 405 or 404.
    """
    limits = limits or HttpLimits()
    app = QuartTrio("scrip_actor.http")
    app.config["MAX_CONTENT_LENGTH"] = limits.batch_body_bytes_max
    app.config["BODY_TIMEOUT"] = limits.body_read_timeout_s
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    # "//" in a path must be a JSON 404 like any unknown path, not an HTML redirect built from the Host header.
    app.url_map.merge_slashes = False
    metrics = HttpMetrics(engine)
    document: dict[str, Any] = {}
    endpoints = all_endpoints(metrics, limits, lambda: document)
    if read_only:
        endpoints = [endpoint for endpoint in endpoints if endpoint.method == "GET"]
    document.update(routes_system.openapi_document(endpoints))
    routes = {}
    for endpoint in endpoints:
        assert endpoint.name not in routes, f"two endpoints are named {endpoint.name}"
        routes[endpoint.name] = endpoint.path
        app.add_url_rule(
            endpoint.quart_rule,
            endpoint=endpoint.name,
            view_func=_view(endpoint, engine, keys, limits),
            methods=[endpoint.method],
            provide_automatic_options=False,
        )
        metrics.bind(endpoint.path, endpoint.method, (endpoint.status, *endpoint.also))
    app.extensions["scrip_endpoints"] = endpoints
    if not read_only:
        install_console(app)
    _install_hooks(app, metrics, routes)
    _install_error_handlers(app)
    return app
