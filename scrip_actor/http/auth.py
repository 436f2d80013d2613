"""API keys: where they come from, how they are stored (hashed), and how a request proves it holds one.

Sources, first match wins:

1. ``SCRIP_API_KEY`` (one key) and/or ``SCRIP_API_KEYS`` (comma-separated): handy for development
   (``SCRIP_API_KEY=dev-key make run``) and for deployments that inject secrets through the environment.
2. ``<data_dir>/api_keys.json``: a list of SHA-256 hex digests. On the first start with neither variable set,
   the server generates a key ``sk_...``, stores only its digest there (mode 0600), and prints the key once.

Keys never appear in logs. A request presents its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
the server hashes it and compares against every stored digest with :func:`hmac.compare_digest`, visiting all of
them so the time taken does not depend on which one matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = ["KEYS_FILE_NAME", "ApiKeys", "presented_key"]

KEYS_FILE_NAME = "api_keys.json"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The set of accepted keys, held only as SHA-256 digests."""

    def __init__(self, digests: list[bytes]) -> None:
        assert digests, "a server without keys would refuse every request"
        self._digests = list(digests)

    @classmethod
    def of(cls, *keys: str) -> ApiKeys:
        """Keys given in clear (tests, environment variables)."""
        return cls([_digest(key) for key in keys])

    @classmethod
    def load(
        cls, data_dir: str | os.PathLike[str], environ: Mapping[str, str] | None = None
    ) -> tuple[ApiKeys, str | None]:
        """Keys from the environment or ``<data_dir>/api_keys.json``, creating a first key if there are none.

        Returns:
            ``(keys, new_key)``: ``new_key`` is the generated key in clear when one was just created (the caller
            prints it once), else None.

        Raises:
            ValueError: the keys file exists but is not a JSON list of hex digests.
        """
        environ = os.environ if environ is None else environ
        given = [environ.get("SCRIP_API_KEY", ""), *environ.get("SCRIP_API_KEYS", "").split(",")]
        clear = [key.strip() for key in given if key.strip()]
        if clear:
            return cls.of(*clear), None
        path = Path(data_dir) / KEYS_FILE_NAME
        if path.exists():
            return cls(_read_digests(path)), None
        new_key = "sk_" + secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a private temporary file, flushed, then renamed into place: a crash leaves either no keys
        # file (the next start generates a key again) or a complete one, never an empty file that blocks starts.
        temporary = path.with_name(f".{KEYS_FILE_NAME}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump([_digest(new_key).hex()], file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        return cls.of(new_key), new_key

    def accepts(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys (constant work whichever key matches)."""
        if not presented:
            return False
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>`` first, then ``X-API-Key``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return x_api_key.strip() if x_api_key else None


def _read_digests(path: Path) -> list[bytes]:
    try:
        loaded = json.loads(path.read_text())
        digests = [bytes.fromhex(item) for item in loaded]
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: expected a JSON list of SHA-256 hex digests ({error})") from None
    if not digests or any(len(digest) != 32 for digest in digests):
        raise ValueError(f"{path}: expected a non-empty JSON list of SHA-256 hex digests")
    return digests
