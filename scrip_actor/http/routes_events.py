"""``/v1/events`` and ``/v1/journal-entries``: ingest (202 once durable), read outcomes, read the ledger.

``POST /v1/events`` answers 202 only after the event is committed to disk; processing continues in the
background, so poll ``GET /v1/events/{id}`` until ``status`` is COMPLETED or FAILED. Replaying the same
``idempotency_key`` with the same payload answers the original event (202 again); a different payload is a 409
``idempotency_conflict``.

A batch is decoded item by item: a malformed item is that item's error, never a 400 for the whole request. The
valid items go to the engine in one call and share one durability wait.
"""

from __future__ import annotations

import contextlib

import msgspec

from scrip_actor.errors import NotFound, ScripError, ValidationFailed
from scrip_actor.http.errors import validation_failed
from scrip_actor.http.hosted import EventRecord, JournalEntryRecord, event_record, journal_entry_record
from scrip_actor.http.routing import Call, Endpoint, listing
from scrip_actor.http.schemas import (
    BatchItem,
    BatchResult,
    EventAccepted,
    EventBatch,
    EventGetQuery,
    EventQuery,
    EventRetried,
    ItemError,
    JournalQuery,
    ListOf,
)
from scrip_actor.model import Event, EventSubmit, JournalEntry, Page

__all__ = ["accepted", "endpoints", "entry_records", "event_records"]

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
    """Accept one event; 202 once durable, with status PENDING (or the current status on a replay)."""
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


async def list_events(call: Call) -> ListOf[EventRecord]:
    """Events, newest first (``sort_dir=asc``: oldest first), filtered; ``from``/``to`` bound ``created_at``.

    Each carries its rule evaluations as ``GET /v1/events/{id}`` shows them by default (an extension: the hosted
    list leaves them out)."""
    query: EventQuery = call.query
    page = await call.engine.list_events(
        program_id=query.program_id,
        status=query.status,
        external_id=query.external_id,
        participant_id=query.participant_id,
        created_from=query.created_from,
        created_to=query.created_to,
        event_from=query.event_from,
        event_to=query.event_to,
        rule_id=query.rule_id,
        event_type=query.event_type,
        descending=query.sort_dir == "desc",
        limit=query.limit,
        cursor=query.cursor,
    )
    return event_records(page)


def event_records(page: Page) -> ListOf[EventRecord]:
    """A page of events in the hosted shape (error and timeout skips left out, as by default on one event)."""
    records = [event_record(event, include_skipped=False) for event in page.data]
    return listing(msgspec.structs.replace(page, data=records))


async def get_event(call: Call) -> EventRecord:
    """An event with its outcome: status, rule evaluations (error and timeout skips with
    ``include_skipped=true``), journal entry ids, error message."""
    query: EventGetQuery = call.query
    return event_record(await call.engine.get_event(call.path["event_id"]), include_skipped=query.include_skipped)


async def list_journal_entries(call: Call) -> ListOf[JournalEntryRecord]:
    """Journal entries, newest first; every given filter applies (``external_id`` names the participant;
    ``group_id`` finds nothing: groups are not built)."""
    query: JournalQuery = call.query
    participant_id = query.participant_id
    if query.external_id is not None:
        try:
            named = (await call.engine.get_participant_by_external_id(query.external_id)).id
        except NotFound:
            named = None
        if named is None or participant_id not in (None, named):
            return listing(Page(data=[], has_more=False, next_cursor=None))
        participant_id = named
    if query.group_id is not None:
        return listing(Page(data=[], has_more=False, next_cursor=None))
    page = await call.engine.list_journal_entries(
        program_id=query.program_id,
        event_id=query.event_id,
        rule_id=query.rule_id,
        participant_id=participant_id,
        asset_id=query.asset_id,
        bucket=query.bucket,
        reference_id=query.reference_id,
        action_type=query.action_type,
        min_amount=query.min_amount,
        max_amount=query.max_amount,
        created_from=query.created_from,
        created_to=query.created_to,
        limit=query.limit,
        cursor=query.cursor,
    )
    return listing(msgspec.structs.replace(page, data=await entry_records(call, page.data)))


async def entry_records(call: Call, entries: list[JournalEntry]) -> list[JournalEntryRecord]:
    """Entries in the hosted shape: asset symbols and program names looked up once per page."""
    symbols: dict[str, str] = {}
    programs: dict[str, str] = {}
    for entry in entries:
        if entry.program_id is not None and entry.program_id not in programs:
            with contextlib.suppress(NotFound):
                programs[entry.program_id] = (await call.engine.get_program(entry.program_id)).name
        for posting in entry.postings:
            if posting.asset_id not in symbols:
                with contextlib.suppress(NotFound):
                    symbols[posting.asset_id] = (await call.engine.get_asset(posting.asset_id)).symbol
    return [journal_entry_record(entry, symbols, programs) for entry in entries]


async def get_journal_entry(call: Call) -> JournalEntryRecord:
    """One journal entry with its postings (they sum to zero per asset) and its hash-chain link."""
    (record,) = await entry_records(call, [await call.engine.get_journal_entry(call.path["entry_id"])])
    return record


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
        Endpoint(
            "GET", "/v1/events", list_events, "List events", "Events", query=EventQuery, response=ListOf[EventRecord]
        ),
        Endpoint(
            "GET",
            "/v1/events/{event_id}",
            get_event,
            "Get an event and its outcome",
            "Events",
            query=EventGetQuery,
            response=EventRecord,
        ),
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
            response=ListOf[JournalEntryRecord],
        ),
        Endpoint(
            "GET",
            "/v1/journal-entries/{entry_id}",
            get_journal_entry,
            "Get a journal entry",
            "Journal",
            response=JournalEntryRecord,
        ),
    ]
