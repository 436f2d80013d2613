"""Endpoint secrets: generated as ``whsec_`` + 64 hex characters, kept Fernet-encrypted, used to sign.

The hosted API's form (``whsec_`` + 64 hex) is also a Standard Webhooks secret: the library base64-decodes what
follows the prefix, and 64 hex digits are valid base64 (48 key bytes), so a receiver passes the secret as shown
to ``standardwebhooks.Webhook`` unchanged.

The Fernet key comes from ``webhooks.secret_key`` (``SCRIP_WEBHOOKS_SECRET_KEY``) or from the key file
``webhooks.secret_key_file``, created 0600 on first use and refused inside the data directory: a copy of the data
directory alone holds only ciphertext.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from standardwebhooks.webhooks import Webhook

__all__ = ["SecretBox", "new_secret", "signature_header"]


def new_secret() -> str:
    """A fresh endpoint secret in the hosted form."""
    return "whsec_" + secrets.token_hex(32)


def signature_header(secrets_in_force: list[str], message_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret in force, space-separated."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_in_force)


class SecretBox:
    """Encrypts and decrypts endpoint secrets with one Fernet key."""

    def __init__(self, key: str, key_file: str, data_dir: str) -> None:
        self._key, self._key_file, self._data_dir = key, key_file, data_dir
        self._fernet: Fernet | None = None

    def check(self) -> None:
        """Refuse unusable settings at start-up (ValueError), without creating the key file: a ``secret_key`` that
        is not a Fernet key, or a key file inside the data directory."""
        if self._key:
            try:
                Fernet(self._key.encode())
            except ValueError:
                raise ValueError("webhooks.secret_key is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        else:
            _outside(Path(self._key_file), Path(self._data_dir))

    def _cipher(self) -> Fernet:
        """The key is read (or the file created) on first use: an engine without webhooks never touches it."""
        if self._fernet is None:
            key = self._key.encode() if self._key else _file_key(Path(self._key_file), Path(self._data_dir))
            try:
                self._fernet = Fernet(key)
            except ValueError:
                raise ValueError("webhooks.secret_key is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        return self._fernet

    def seal(self, secret: str) -> str:
        return self._cipher().encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._cipher().decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a webhook secret does not decrypt with this key: webhooks.secret_key / secret_key_file changed?"
            ) from None


def _outside(path: Path, data_dir: Path) -> Path:
    resolved, data = path.resolve(), data_dir.resolve()
    if resolved == data or data in resolved.parents:
        raise ValueError(
            f"webhooks.secret_key_file {path} is inside the data directory {data_dir}: a copy of the data "
            "directory would then reveal every webhook secret; put it elsewhere or set SCRIP_WEBHOOKS_SECRET_KEY"
        )
    return resolved


def _file_key(path: Path, data_dir: Path) -> bytes:
    """The key in ``path``, created 0600 when absent; refused inside the data directory."""
    resolved = _outside(path, data_dir)
    try:
        descriptor = os.open(resolved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return resolved.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    return key
