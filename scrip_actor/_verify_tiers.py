"""``verify``'s checks of the tier definitions, the tiers participants hold, and the durable schedule.

The schedule is what makes a deadline happen at all: a lot's expiry, a tier's period end. A record that names a
participant who does not exist, or an item of a kind no sweep knows, is dead weight at best; a holding whose next
deadline has no schedule record at or before it would never be reviewed (the participant would keep a level
forever). Definitions are checked as the engine checks them before writing (tiers.py): a decodable record under
its own key, a program that exists, levels with distinct keys and ranks from 1 up, lowest rank first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from scrip_actor._records import schedule_key
from scrip_actor.ledger import ParticipantRecord
from scrip_actor.store import unbe64
from scrip_actor.tier_effects import schedule_item
from scrip_actor.tiers import TierDefinition, holding_due, level_by_key

__all__ = ["check_tiers_and_schedule"]

_definition_decoder = msgspec.json.Decoder(TierDefinition)
_record_decoder = msgspec.json.Decoder(ParticipantRecord)
_DUE_BYTES = 8  # a schedule key is be64(due ms) then the item


def check_tiers_and_schedule(snapshot: Any, problem: Callable[[str], None]) -> None:
    """Report every malformed tier definition, every holding of an unknown tier or level or without its next
    deadline scheduled, and every schedule record naming a missing participant or an unknown kind of item."""
    definitions = _definitions(snapshot, problem)
    earliest_due_ms = _schedule(snapshot, problem)
    for key, raw in snapshot.scan("participants"):
        record = _record_decoder.decode(raw)
        assert record.id.encode() == bytes(key), "verify's participants check names a misfiled record"
        for program_id, holdings in record.tiers.items():
            for tier_key, holding in holdings.items():
                where = f"participant {record.id} tier {program_id}/{tier_key!r}"
                definition = definitions.get((program_id, tier_key))
                if definition is None:
                    problem(f"{where}: no such tier definition")
                    continue
                level = level_by_key(definition.levels, holding.level)
                if holding.rank > 0 and (level is None or level.rank != holding.rank):
                    problem(f"{where}: holds level {holding.level!r} rank {holding.rank}, which the tier does not have")
                due = holding_due(holding)
                item = schedule_item(record.id, program_id, tier_key)
                scheduled_ms = earliest_due_ms.get(item)
                if due is not None and (scheduled_ms is None or scheduled_ms > _ms_ceiling(due)):
                    problem(f"{where}: next deadline {due.isoformat()} is not scheduled: it would never be reviewed")


def _definitions(snapshot: Any, problem: Callable[[str], None]) -> dict[tuple[str, str], TierDefinition]:
    found: dict[tuple[str, str], TierDefinition] = {}
    for key, raw in snapshot.scan("tiers"):
        try:
            definition = _definition_decoder.decode(raw)
        except msgspec.DecodeError as error:
            problem(f"tier record {bytes(key)!r}: unreadable ({error})")
            continue
        where = f"tier {definition.program_id}/{definition.key!r}"
        if bytes(key) != f"{definition.program_id}\0{definition.key}".encode():
            problem(f"{where}: stored under the key {bytes(key)!r}")
        if snapshot.get_raw("programs", definition.program_id.encode()) is None:
            problem(f"{where}: its program does not exist")
        ranks = [level.rank for level in definition.levels]
        if len({level.key for level in definition.levels}) != len(ranks):
            problem(f"{where}: two levels share a key")
        if ranks != sorted(set(ranks)) or (ranks and ranks[0] < 1):
            problem(f"{where}: level ranks {ranks} are not distinct, from 1 up, lowest first")
        found[(definition.program_id, definition.key)] = definition
    return found


def _schedule(snapshot: Any, problem: Callable[[str], None]) -> dict[str, int]:
    """Check each schedule record; return the earliest due time (ms) of each tier item."""
    earliest: dict[str, int] = {}
    for key, raw in snapshot.scan("schedule"):
        key = bytes(key)
        due_ms, item = unbe64(key[:_DUE_BYTES]), key[_DUE_BYTES:].decode(errors="replace")
        participant_id = bytes(raw).decode(errors="replace")
        if snapshot.get_raw("participants", participant_id.encode()) is None:
            problem(f"schedule record {item!r} due {due_ms} ms: its participant {participant_id!r} does not exist")
        if item.startswith("tier/"):
            if not item.startswith(f"tier/{participant_id}/") or item.count("/") != 3:
                problem(f"schedule record {item!r}: not a tier item of its participant {participant_id!r}")
            earliest[item] = min(due_ms, earliest.get(item, due_ms))
        elif not _is_lot_id(item):
            problem(f"schedule record {item!r}: neither a lot nor a tier deadline")
    return earliest


def _is_lot_id(item: str) -> bool:
    """Lot ids are generated ids without a slash (a tier item always has three)."""
    return bool(item) and "/" not in item


def _ms_ceiling(moment: datetime) -> int:
    """The schedule's millisecond for ``moment`` (rounded up, as schedule_key rounds)."""
    return unbe64(schedule_key(moment, "")[:_DUE_BYTES])
