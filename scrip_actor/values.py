"""One validation for every value written into a participant, whoever writes it.

The API, a rule's action (static or computed by an expression) and, later, automations all store the same kinds
of value: external ids, tags, keys, attribute values and counters. Each kind has one function here that checks its
bounds and returns it in canonical form, so no writer can store what another would refuse. The API turns the
:class:`~scrip_actor.errors.ValidationFailed` into a 400; a rule action turns it into a failed event with the
reason, at rule creation when the value is static.

Text is Unicode NFC-normalised before it is compared, counted or stored, so a composed and a decomposed "é" are
one external id, one tag, one key. Tags are then lowercased, and their length is checked *after* both steps (a
lowercased string can be longer than the original: "İ" becomes two code points).
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from scrip_actor.amounts import check_counter
from scrip_actor.errors import ValidationFailed

__all__ = [
    "ATTRIBUTE_VALUE_LENGTH_MAX",
    "KEY_LENGTH_MAX",
    "TAG_LENGTH_MAX",
    "attribute_value",
    "counter_value",
    "external_id",
    "key",
    "normalized_text",
    "tag",
]

KEY_LENGTH_MAX = 255
TAG_LENGTH_MAX = 255
ATTRIBUTE_VALUE_LENGTH_MAX = 4096


def normalized_text(text: str) -> str:
    """NFC form; the fast path returns ASCII (and already-NFC) text unchanged."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def external_id(value: object, length_max: int, field: str = "external_id") -> str:
    """A participant's external id: a string of 1 to ``length_max`` characters, in NFC."""
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "invalid", f"{field} must be a string")
    text = value if value.isascii() else normalized_text(value)  # ASCII inline: every admitted event comes here
    if not 1 <= len(text) <= length_max:
        raise ValidationFailed.field(field, "invalid", f"{field} must be 1-{length_max} characters")
    return text


def tag(value: object, field: str = "tags") -> str:
    """A tag: NFC, lowercased, then 1 to 255 characters."""
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "invalid", "tags must be strings")
    text = normalized_text(value).lower()
    if not 1 <= len(text) <= TAG_LENGTH_MAX:
        raise ValidationFailed.field(field, "invalid", f"a tag is 1-{TAG_LENGTH_MAX} characters once lowercased")
    return text


def key(value: object, field: str = "key") -> str:
    """A counter or attribute key: NFC, 1 to 255 characters."""
    if not isinstance(value, str):
        raise ValidationFailed.field(field, "invalid", f"{field} must be a string")
    text = normalized_text(value)
    if not 1 <= len(text) <= KEY_LENGTH_MAX:
        raise ValidationFailed.field(field, "invalid", f"{field} must be 1-{KEY_LENGTH_MAX} characters")
    return text


def attribute_value(value: object, field: str = "value") -> str:
    """An attribute's value: a string of at most 4096 characters."""
    if not isinstance(value, str) or len(value) > ATTRIBUTE_VALUE_LENGTH_MAX:
        raise ValidationFailed.field(
            field, "invalid", f"attribute values are strings of at most {ATTRIBUTE_VALUE_LENGTH_MAX} characters"
        )
    return value


def counter_value(value: Decimal, field: str = "value") -> Decimal:
    """A counter's value: finite, |value| < 10**36, at most 18 decimals; ``-0`` is stored as ``0``."""
    return check_counter(value, field)
