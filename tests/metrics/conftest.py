"""The metrics tests reuse the HTTP fixtures: a real server on a free loopback port and an authenticated client."""

from __future__ import annotations

from tests.http.conftest import api

__all__ = ["api"]
