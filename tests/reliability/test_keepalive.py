"""Keep-alive after an early answer: a 401/404/413/415 sent before the request body was read must not wedge the
connection. It used to: the unread body stayed on the wire and the next request on that connection waited forever
(an httpx or requests pool would hang on its next call). Such answers now carry ``Connection: close``.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.reliability.conftest import Live

STALL_S = 2.0


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/programs", {"Content-Type": "application/json", "Authorization": "Bearer wrong"}, 401),
        ("/v1/programs", {"Content-Type": "text/plain"}, 415),
        ("/v1/no-such-route", {"Content-Type": "application/json"}, 404),
        ("/v1/programs", {"Content-Type": "application/json"}, 413),
    ],
)
def test_an_answer_before_the_body_is_read_does_not_wedge_the_connection(
    live: Live, path: str, headers: dict[str, str], status: int
) -> None:
    body = json.dumps({"name": "a" * (1 << 20)}).encode()
    response = live.client.post(path, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers.get("Connection") == "close"
    started_s = time.monotonic()
    assert live.client.get("/healthz").status_code == 200
    assert time.monotonic() - started_s < STALL_S
