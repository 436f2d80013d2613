"""``_sync_client.py`` is exactly what ``python -m scrip_actor.client._unasync`` makes of ``_async_client.py``, so
the two flavours cannot drift apart: edit the async file, regenerate, commit both."""

from __future__ import annotations

from scrip_actor.client import _unasync


def test_the_checked_in_sync_client_is_current() -> None:
    expected = _unasync.unasync(_unasync.SOURCE.read_text())
    assert _unasync.TARGET.read_text() == expected, "run: python -m scrip_actor.client._unasync"


def test_the_rewrite_leaves_no_async_behind() -> None:
    generated = _unasync.TARGET.read_text()
    for token in ("async ", "await ", "anyio", "AsyncClient", "AsyncIterator", "aclose", "__aenter__"):
        assert token not in generated, token
