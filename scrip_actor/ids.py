"""Ids that carry their sequence number, so records can live under append-only keys.

An event id and a journal entry id are UUIDs (version 8, RFC 9562 "custom") whose high half is a per-store random
prefix plus a kind, and whose low half is the record's sequence number. So ``get_event(id)`` reads
``events[be64(sequence)]`` directly and no random-key id index is written per record: with fsync on, every
random-key put dirties its own 4 KiB page, which measurably capped throughput (docs/architecture.md).
Text order equals sequence order for ids of one store and kind.
"""

from __future__ import annotations

import secrets

__all__ = ["KIND_ENTRY", "KIND_EVENT", "KIND_STATE_CHANGE", "SequenceIds", "new_prefix"]

KIND_EVENT = 1
KIND_ENTRY = 2
KIND_STATE_CHANGE = 3  # an entry of a participant's state history (tags, counters, attributes, tiers)
_SEQUENCE_MASK = (1 << 62) - 1
_VARIANT = 0b10 << 62


def new_prefix() -> int:
    """A fresh random 64-bit store prefix (stored once in ``meta``)."""
    return secrets.randbits(64)


def _format(value: int) -> str:
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class SequenceIds:
    """Encode and decode sequence-carrying ids of one store."""

    __slots__ = ("_high", "_high_text")

    def __init__(self, prefix: int) -> None:
        assert 0 <= prefix < 1 << 64
        # Version nibble 8 at bits 12-15 of the third group; kind in the low nibble of the high half.
        base = (prefix & ~0xF00F) | 0x8000
        self._high = {kind: (base | kind) << 64 for kind in (KIND_EVENT, KIND_ENTRY, KIND_STATE_CHANGE)}
        # The first 19 characters ("xxxxxxxx-xxxx-xxxx-") never change for a kind: format them once.
        self._high_text = {kind: _format(high)[:19] for kind, high in self._high.items()}

    def make(self, kind: int, sequence: int) -> str:
        """The id of record ``sequence`` (1-based) of ``kind``."""
        assert 1 <= sequence <= _SEQUENCE_MASK
        low = f"{_VARIANT | sequence:016x}"
        return f"{self._high_text[kind]}{low[:4]}-{low[4:]}"

    def sequence(self, kind: int, identifier: str) -> int | None:
        """The sequence inside ``identifier``, or None when it is not an id of this store and kind."""
        if not isinstance(identifier, str) or len(identifier) != 36:
            return None
        try:
            value = int(identifier.replace("-", ""), 16)
        except ValueError:
            return None
        if value >> 64 != self._high[kind] >> 64 or (value >> 62) & 0b11 != 0b10:
            return None
        sequence = value & _SEQUENCE_MASK
        return sequence if sequence >= 1 and _format(value) == identifier.lower() else None
