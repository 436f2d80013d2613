"""Every route the server serves has a client method, on both clients, typed with the server's own answer type.

A route added to the server without a client method (or a client method for a route that is gone) fails here.
"""

from __future__ import annotations

import inspect
import re

import pytest

from scrip_actor.client import ROUTES, AsyncScripClient, ScripClient
from scrip_actor.http.app import create_app
from scrip_actor.http.auth import ApiKeys
from scrip_actor.http.routing import Endpoint
from tests.client.conftest import API_KEY, Server


@pytest.fixture
def served(server: Server) -> dict[tuple[str, str], Endpoint]:
    """The routes of the server's app, as it registered them with Quart."""
    app = create_app(server.engine, ApiKeys.of("k"))
    return {(endpoint.method, endpoint.path): endpoint for endpoint in app.extensions["scrip_endpoints"]}


async def test_the_client_route_table_is_the_servers(served: dict[tuple[str, str], Endpoint]) -> None:
    assert {(route.method, route.path) for route in ROUTES.values()} == set(served)
    assert len(ROUTES) == len(served)  # one client method per route, none shared


async def test_answers_decode_into_the_types_the_server_declares(served: dict[tuple[str, str], Endpoint]) -> None:
    for name, route in ROUTES.items():
        endpoint = served[(route.method, route.path)]
        if endpoint.content_type != "application/json":
            assert route.response is str, name
        elif endpoint.status == 204:
            assert route.response is None, name
        else:
            assert route.response == endpoint.response, name


def test_both_clients_have_a_method_per_route_taking_its_path_parameters() -> None:
    for name, route in ROUTES.items():
        path_parameters = re.findall(r"\{(\w+)\}", route.path)
        for cls in (AsyncScripClient, ScripClient):
            method = getattr(cls, name, None)
            assert method is not None, f"{cls.__name__} has no method {name} for {route.method} {route.path}"
            assert (method.__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
            assert inspect.iscoroutinefunction(method) is (cls is AsyncScripClient), name
            assert set(path_parameters) <= set(inspect.signature(method).parameters), name


async def test_every_paginated_list_has_an_iterator_on_both_clients(served: dict[tuple[str, str], Endpoint]) -> None:
    # A list whose query takes a cursor is paginated; its iterator is iter_ + the list's noun.
    paginated = [
        name
        for name, route in ROUTES.items()
        if (query := served[(route.method, route.path)].query) is not None and "cursor" in query.__struct_fields__
    ]
    assert len(paginated) >= 15
    for name in paginated:
        iterator = "iter_" + name.removeprefix("list_")
        for cls in (AsyncScripClient, ScripClient):
            assert callable(getattr(cls, iterator, None)), f"{cls.__name__} has no {iterator} for {name}"


async def test_the_served_openapi_document_lists_exactly_the_client_routes(server: Server) -> None:
    async with AsyncScripClient(server.base_url, API_KEY) as client:
        document = await client.openapi()
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert documented == {(route.method, route.path) for route in ROUTES.values()}
