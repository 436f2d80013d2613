"""What every write stage does to an API request before it acts on it, in one place.

A request Struct decoded from HTTP was validated by msgspec on the way in; one built in Python (the embedded API,
tests) was not. :func:`validated` runs the same declared constraints on both, so a stage can trust a request's
types and bounds whatever door it came through. Amounts arrive as decimal strings and are read once, here, into
minor units; and what a request creates gets its id from :func:`new_id`.

The stages (``_catalog``, ``_wallets``, ``_participant_admin``) import these; the hot path does not need them.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

import msgspec

from scrip_actor.amounts import parse_decimal, to_minor
from scrip_actor.errors import ValidationFailed

T = TypeVar("T")


def new_id() -> str:
    """A fresh random id for something an API request creates (a program, asset, rule, participant, seed)."""
    return str(uuid.uuid4())


def validated(request: T) -> T:
    """Re-check a request's declared constraints (a Struct built in Python skips decode-time validation)."""
    try:
        return msgspec.convert(msgspec.to_builtins(request), type(request))
    except msgspec.ValidationError as error:
        raise validation_error(error) from None


def validation_error(error: msgspec.ValidationError) -> ValidationFailed:
    """msgspec's error as the API's 400: the ``$.path`` it names becomes the field in ``details``."""
    message = str(error)
    field = message.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in message else "$"
    return ValidationFailed(message, {"fields": [{"field": field, "reason": "invalid", "message": message}]})


def positive_minor(amount: str, scale: int, field: str) -> int:
    """A decimal string that must be above zero, in minor units of ``scale``; anything else is a 400 on ``field``."""
    value = parse_decimal(amount, field)
    if value <= 0:
        raise ValidationFailed.field(field, "invalid", f"{field} must be positive")
    return to_minor(value, scale, field)
