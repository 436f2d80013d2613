"""The HTTP front end: a Scrip-compatible REST API on Quart-Trio and Hypercorn.

Thin by design: each handler decodes and validates with msgspec, calls one engine method, and encodes the result.
The public pieces:

* :func:`~scrip_actor.http.server.run_server` — what ``scrip serve`` runs;
* :func:`~scrip_actor.http.server.serve` — serve an already-open engine (tests, embedding); reports its port;
* :func:`~scrip_actor.http.app.create_app` — the ASGI app alone;
* :class:`~scrip_actor.http.auth.ApiKeys`, :class:`~scrip_actor.http.app.HttpLimits`.

Importing this package imports nothing heavy; the submodules load Quart when used.
"""
