"""Writes ``_sync_client.py`` from ``_async_client.py``: the same client without ``async`` and ``await``.

One source for both flavours, as httpcore does it, so the two cannot drift apart: the rewrite is a fixed list of
token replacements, and ``tests/client/test_sync_client_is_generated_from_the_async_one.py`` fails when the
checked-in sync file is not what this module makes of the async one. After editing ``_async_client.py`` run::

    python -m scrip_actor.client._unasync
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["SOURCE", "TARGET", "unasync"]

SOURCE = Path(__file__).with_name("_async_client.py")
TARGET = Path(__file__).with_name("_sync_client.py")

_HEADER = (
    '"""The synchronous client: :class:`ScripClient`, one method per server route.\n\n'
    "GENERATED from ``_async_client.py`` by ``python -m scrip_actor.client._unasync``: do not edit; edit the async\n"
    "file and regenerate. Its docstring applies here, without ``await``.\n"
    '"""\n'
)
# Whole-token replacements, applied in this order.
_TOKENS = [
    (r"^import anyio\n", ""),
    (r"\bawait anyio\.sleep\(", "time.sleep("),
    (r"\basync def ", "def "),
    (r"\basync for ", "for "),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncScripClient\b", "ScripClient"),
    (r"\b_Async(\w+)", r"_Sync\1"),
    (r"An asynchronous client of a scrip-actor server \(asyncio or trio\)", "A client of a scrip-actor server"),
]


def unasync(source: str) -> str:
    """The sync module's text for the async module's ``source``."""
    body = source.split('"""', 2)[2].lstrip("\n")  # drop the async module's docstring
    for pattern, replacement in _TOKENS:
        body = re.sub(pattern, replacement, body, flags=re.MULTILINE)
    return _formatted(_HEADER + "\n" + body)


def _formatted(text: str) -> str:
    """``text`` as ``ruff format`` leaves it (lines the removed ``await`` shortened are joined), so the checked-in
    file passes the format check."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise RuntimeError("ruff (requirements.txt) is needed to format the generated client")
    done = subprocess.run(
        [ruff, "format", "--stdin-filename", str(TARGET), "-"], input=text, capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    """Regenerate ``_sync_client.py``."""
    TARGET.write_text(unasync(SOURCE.read_text()))


if __name__ == "__main__":
    main()
