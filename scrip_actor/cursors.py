"""The one cursor codec every list uses: an opaque token carrying the sort key of the last item of a page.

A cursor is ``base64url(JSON array)`` of the key's elements (strings, integers, or bytes as base64 strings). The
decoder is told the key's exact shape as a fixed tuple type (``tuple[str, str]``, ``tuple[bytes]``...) and decodes
with msgspec in strict mode, so anything but a cursor of that shape is refused *before* it is compared with a
real key: not base64, not JSON, not an array, the wrong length, or an element of the wrong type all raise the same
:class:`~scrip_actor.errors.ValidationFailed` (HTTP 400, ``bad_request``, field ``cursor``). Without the shape,
a ``["x", 1]`` cursor against ``(str, str)`` keys would raise TypeError in the comparison (a 500), and lenient
base64 decoding would turn garbage into some key and answer an empty page.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import msgspec

from scrip_actor.errors import ValidationFailed

__all__ = ["CURSOR_CHARS_MAX", "decode", "encode", "invalid_cursor"]

# A cursor carries a few ids and timestamps (well under 300 characters); a bound keeps decoding cheap.
CURSOR_CHARS_MAX = 1_024

KeyT = TypeVar("KeyT", bound=tuple[Any, ...])

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def invalid_cursor() -> ValidationFailed:
    """The one error every bad cursor gets, whatever is wrong with it."""
    return ValidationFailed.field("cursor", "invalid", "cursor is not one this server issued")


def encode(key: tuple[Any, ...]) -> str:
    """The cursor carrying ``key`` (its elements: str, int or bytes)."""
    assert isinstance(key, tuple), key
    assert key, "an empty key would resume nowhere"
    assert all(isinstance(element, str | int | bytes) and not isinstance(element, bool) for element in key), key
    cursor = base64.urlsafe_b64encode(msgspec.json.encode(key)).decode()
    assert len(cursor) <= CURSOR_CHARS_MAX, "a sort key this long would make a cursor the decoder refuses"
    return cursor


def decode(cursor: str, shape: type[KeyT]) -> KeyT:
    """The key inside ``cursor``, which must be a fixed tuple of ``shape``; anything else is a 400."""
    decoder = _decoders.get(shape)
    if decoder is None:
        decoder = _decoders.setdefault(shape, msgspec.json.Decoder(shape, strict=True))
    if not cursor or len(cursor) > CURSOR_CHARS_MAX:
        raise invalid_cursor()
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        key: KeyT = decoder.decode(raw)
    except (UnicodeEncodeError, binascii.Error, msgspec.DecodeError):  # ValidationError is a DecodeError
        raise invalid_cursor() from None
    assert isinstance(key, tuple), key
    return key
