"""A Python client of the scrip-actor HTTP API, synchronous and asynchronous, typed with the server's own Structs.

::

    from scrip_actor.client import ScripClient
    from scrip_actor.model import ProgramCreate

    with ScripClient("http://127.0.0.1:8080", api_key="sk_...") as client:
        program = client.create_program(ProgramCreate(name="Rewards"))
        for participant in client.iter_participants(program_id=program.id):
            print(participant.external_id)

:class:`AsyncScripClient` is the same with ``async``/``await`` (asyncio or trio). Both retry 429s, gateway errors
and connection failures with backoff (honouring ``Retry-After``) where a retry is safe, add idempotency keys to
keyed writes that have none, and raise an :class:`ApiError` subclass for every refused request. See
docs/client.md.
"""

from scrip_actor.client._async_client import AsyncScripClient
from scrip_actor.client._errors import (
    ApiError,
    BadRequestError,
    ConflictError,
    IdempotencyConflictError,
    InsufficientFundsError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from scrip_actor.client._routes import ROUTES, Route
from scrip_actor.client._sync_client import ScripClient
from scrip_actor.client._transport import ClientSettings, RetryPolicy
from scrip_actor.errors import ScripError

__all__ = [
    "ROUTES",
    "ApiError",
    "AsyncScripClient",
    "BadRequestError",
    "ClientSettings",
    "ConflictError",
    "IdempotencyConflictError",
    "InsufficientFundsError",
    "NotFoundError",
    "RateLimitedError",
    "RetryPolicy",
    "Route",
    "ScripClient",
    "ScripError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
]
