"""``/v1/events`` and ``/v1/journal-entries``: ingest (202 once durable), read outcomes, read the ledger.

``POST /v1/events`` answers 202 only after the event is committed to disk; processing continues in the
background, so poll ``GET /v1/events/{id}`` until ``status`` is COMPLETED or FAILED. Replaying the same
``idempotency_key`` with the same payload answers the original event (202 again); a different payload is a 409
``idempotency_conflict``.

A batch is decoded item by item: a malformed item is that item's error, never a 400 for the whole request. The
valid items go to the engine in one call and share one durability wait.
"""

from __future__ import annotations

from typing import Any

import msgspec

from scrip_actor.errors import ScripError, ValidationFailed
from scrip_actor.http.errors import validation_failed
from scrip_actor.http.routing import Call, Endpoint, listing
from scrip_actor.http.schemas import (
    BatchItem,
    BatchResult,
    EventAccepted,
    EventBatch,
    EventQuery,
    EventRetried,
    ItemError,
    JournalQuery,
    ListOf,
)
from scrip_actor.model import Event, EventSubmit, JournalEntry

__all__ = ["accepted", "endpoints"]

_event_decoder = msgspec.json.Decoder(EventSubmit)


def accepted(event: Event) -> EventAccepted:
    """The short 202 shape of an accepted event."""
    return EventAccepted(
        id=event.id,
        program_id=event.program_id,
        external_id=event.external_id,
        participant_id=event.participant_id,
        idempotency_key=event.idempotency_key,
        event_timestamp=event.event_timestamp,
        status=event.status,
    )


async def submit_event(call: Call) -> EventAccepted:
    """Accept one event; 202 once durable, with status RECEIVED (or the current status on a replay)."""
    return accepted(await call.engine.submit(call.body))


def _decode_item(raw: msgspec.Raw) -> EventSubmit | ScripError:
    try:
        return _event_decoder.decode(raw)
    except msgspec.ValidationError as error:
        return validation_failed(error)
    except msgspec.DecodeError as error:  # pragma: no cover - the envelope already parsed as JSON
        return ValidationFailed(f"malformed JSON: {error}")
    except RecursionError:
        return ValidationFailed("malformed JSON: item nested too deeply", {"reason": "too_deep"})
    except UnicodeDecodeError as error:  # the envelope kept the item raw, so its strings were never checked
        return ValidationFailed(
            f"malformed JSON: item is not valid UTF-8 ({error.reason} at byte {error.start})",
            {"reason": "malformed_json"},
        )


async def submit_batch(call: Call, events_max: int) -> BatchResult:
    """Accept up to ``events_max`` events; each is judged on its own and answered at its input index."""
    body: EventBatch = call.body
    if not 1 <= len(body.events) <= events_max:
        raise ValidationFailed.field(
            "events", "invalid", f"a batch holds 1-{events_max} events, got {len(body.events)}"
        )
    decoded = [_decode_item(raw) for raw in body.events]
    valid = [item for item in decoded if isinstance(item, EventSubmit)]
    outcomes = iter(await call.engine.submit_batch(valid))
    results: list[BatchItem] = []
    for index, item in enumerate(decoded):
        outcome = next(outcomes) if isinstance(item, EventSubmit) else item
        if isinstance(outcome, ScripError):
            error = ItemError(code=outcome.code, message=outcome.message, details=outcome.details)
            results.append(BatchItem(index=index, status="error", error=error))
        else:
            results.append(BatchItem(index=index, status="accepted", event=accepted(outcome)))
    success = sum(1 for result in results if result.status == "accepted")
    return BatchResult(total=len(results), success_count=success, error_count=len(results) - success, results=results)


async def retry_event(call: Call) -> EventRetried:
    """Queue a FAILED event again, once its cause is fixed (a wallet funded, a participant re-activated).

    Only FAILED events can be retried (409 otherwise); a FAILED event left no effects, so nothing applies twice.
    """
    event_id = call.path["event_id"]
    previous = await call.engine.get_event(event_id)
    retried = await call.engine.retry_event(event_id)
    return EventRetried(
        event_id=retried.id,
        message="event queued for processing again",
        previous_status="FAILED",
        previous_error=previous.error_message,
        status=retried.status,
    )


async def list_events(call: Call) -> ListOf[Any]:
    """Events, newest first, filtered; ``from``/``to`` bound ``created_at``."""
    query: EventQuery = call.query
    return listing(
        await call.engine.list_events(
            program_id=query.program_id,
            status=query.status,
            external_id=query.external_id,
            participant_id=query.participant_id,
            created_from=query.created_from,
            created_to=query.created_to,
            event_from=query.event_from,
            event_to=query.event_to,
            rule_id=query.rule_id,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_event(call: Call) -> Event:
    """An event with its outcome: status, rule evaluations, journal entry ids, error message."""
    return await call.engine.get_event(call.path["event_id"])


async def list_journal_entries(call: Call) -> ListOf[Any]:
    """Journal entries, newest first; every given filter applies."""
    query: JournalQuery = call.query
    return listing(
        await call.engine.list_journal_entries(
            program_id=query.program_id,
            event_id=query.event_id,
            rule_id=query.rule_id,
            participant_id=query.participant_id,
            asset_id=query.asset_id,
            reference_id=query.reference_id,
            created_from=query.created_from,
            created_to=query.created_to,
            limit=query.limit,
            cursor=query.cursor,
        )
    )


async def get_journal_entry(call: Call) -> JournalEntry:
    """One journal entry with its postings (they sum to zero per asset) and its hash-chain link."""
    return await call.engine.get_journal_entry(call.path["entry_id"])


def endpoints(batch_events_max: int) -> list[Endpoint]:
    """The event and journal routes; the batch size limit is a server setting."""

    async def submit_event_batch(call: Call) -> BatchResult:
        return await submit_batch(call, batch_events_max)

    submit_event_batch.__doc__ = f"Accept 1-{batch_events_max} events; each item succeeds or fails on its own."
    return [
        Endpoint(
            "POST",
            "/v1/events",
            submit_event,
            "Submit an event (202 once durable)",
            "Events",
            body=EventSubmit,
            response=EventAccepted,
            status=202,
        ),
        Endpoint(
            "POST",
            "/v1/events/batch",
            submit_event_batch,
            "Submit a batch of events",
            "Events",
            body=EventBatch,
            response=BatchResult,
            status=202,
            batch=True,
        ),
        Endpoint("GET", "/v1/events", list_events, "List events", "Events", query=EventQuery, response=ListOf[Event]),
        Endpoint("GET", "/v1/events/{event_id}", get_event, "Get an event and its outcome", "Events", response=Event),
        Endpoint(
            "POST",
            "/v1/events/{event_id}/retry",
            retry_event,
            "Retry a FAILED event",
            "Events",
            response=EventRetried,
            status=202,
        ),
        Endpoint(
            "GET",
            "/v1/journal-entries",
            list_journal_entries,
            "List journal entries",
            "Journal",
            query=JournalQuery,
            response=ListOf[JournalEntry],
        ),
        Endpoint(
            "GET",
            "/v1/journal-entries/{entry_id}",
            get_journal_entry,
            "Get a journal entry",
            "Journal",
            response=JournalEntry,
        ),
    ]
