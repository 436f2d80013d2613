"""Fixtures for the HTTP review tests: the same real server as tests/http (Hypercorn on loopback, real LMDB)."""

from tests.http.conftest import API_KEY, LIMITS, Api, anonymous, api

__all__ = ["API_KEY", "LIMITS", "Api", "anonymous", "api"]
