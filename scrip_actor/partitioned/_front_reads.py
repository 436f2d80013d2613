"""Reads through the front: each GET goes to the partition holding its data, or to all of them, merged.

Every partition's engine serves the embedded API's GET routes on its own reader (``_engine_reads.py``), found
through ``<partitions dir>/partition-<n>/reader.json``. The front authenticates the client with its own keys,
then, by the route (:func:`_routed`):

* **one partition** when the request names one participant or one record: ``/v1/participants/{id}`` and
  everything under it, ``/v1/events/{id}``, ``/v1/journal-entries/{id}``, ``/v1/redemptions/{id}`` and its
  reversals (the id's first 8 hex digits are its partition, ``_partition_ids.py``; a redemption's are named by
  the front), and the lists when filtered to one participant or event
  (``external_id=``, NFC: :func:`~scrip_actor.partitioned._routing.partition_for`; ``participant_id=``,
  ``event_id=``: the id's partition). The reader's answer is passed through unchanged: status, body,
  ``Content-Type``, ``Retry-After``; cursors are the partition's own. An id that names no partition is the
  embedded 404.
* **every partition, merged** for ``GET /v1/events``, ``/v1/participants`` and ``/v1/journal-entries``
  otherwise (:class:`_FanOut`): each partition is asked for a page with the client's filters and ``limit``,
  and the pages are merged newest first (or oldest first, ``sort_dir=asc``) by ``created_at``, ties by
  partition number, each partition's own order kept. The cursor is the front's: per partition, the partition's
  own cursor just after the last item this page took from it (or "exhausted"), so the next page resumes each
  partition exactly there and the pages, end to end, hold every item exactly once.
* **any one partition** for the catalog (programs, their assets and tiers, assets, rules and rule history):
  every partition is seeded with the same catalog, so any reader's answer is the answer; the first one that
  answers is used.
* **every partition, added up** for the reports (``/v1/reports/ledger-summary``, ``/expiration-schedule``,
  ``/program-activity``): each partition's report, summed exactly (``_front_reports.py``).
* a program's rewards fanned out with their redeemed counts added up (_front_rewards.py);
* **501 not_routed** for the rest (program balances, automations, backtests, webhooks):
  they would need a merge the front does not do yet.

A partition without an answering reader is a 503 ``partition_unavailable`` naming it, for a routed read and a
fanned-out one alike: never a partial list.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio
from quart import Response, request

from scrip_actor import cursors, values
from scrip_actor.errors import NotFound, ValidationFailed
from scrip_actor.http.app import _error
from scrip_actor.http.errors import NotRouted, PartitionUnavailable
from scrip_actor.http.routing import decode_query
from scrip_actor.http.schemas import EventQuery, JournalQuery, ParticipantQuery
from scrip_actor.partitioned._engine_reads import ReaderAdvert, read_advert
from scrip_actor.partitioned._engine_role import partition_data_dir
from scrip_actor.partitioned._front_reports import REPORTS, PartitionRefused, merged_report
from scrip_actor.partitioned._front_rewards import REWARDS, merged_rewards
from scrip_actor.partitioned._partition_ids import partition_of
from scrip_actor.partitioned._routing import partition_for
from scrip_actor.report_totals import micros
from scrip_actor.store import be64

__all__ = ["PartitionReaders", "open_readers", "serve_read"]

_JSON = "application/json"
_PASSED_HEADERS = ("Retry-After",)
_REFILL_ROUNDS_PER_PARTITION = 2  # a page waits at most this many extra fetches per partition, then comes back short
_SEQUENCE_MASK = (1 << 62) - 1
_encoder = msgspec.json.Encoder()


class PartitionReaders:
    """The partitions' readers as the front sees them: found by their ``reader.json``, asked with httpx."""

    def __init__(self, partitions_dir: str | Path, topic: str, partitions: int, client: httpx.AsyncClient) -> None:
        self._dir, self.topic, self.partitions, self._client = Path(partitions_dir), topic, partitions, client
        self._next_any = 0

    def _advert(self, partition: int) -> ReaderAdvert:
        advert = read_advert(partition_data_dir(self._dir, partition))
        if advert is None or advert.partition != partition or advert.topic != self.topic:
            raise _unavailable(partition, "no reader is advertised for it (its engine is down or moving)")
        return advert

    async def get(self, partition: int, target: str, params: dict[str, str] | None = None) -> httpx.Response:
        """``GET target`` (path and query) on partition ``partition``'s reader; PartitionUnavailable if it cannot
        answer. A 401 means the advertisement is stale (another process on the port, or an old token)."""
        advert = self._advert(partition)
        try:
            answer = await self._client.get(
                advert.url + target, params=params, headers={"Authorization": f"Bearer {advert.token}"}
            )
        except httpx.HTTPError as error:
            raise _unavailable(
                partition, f"its reader at {advert.url} did not answer ({type(error).__name__})"
            ) from None
        if answer.status_code == 401:
            raise _unavailable(partition, f"its reader at {advert.url} refused the advertised token (stale)")
        return answer

    async def get_any(self, target: str) -> httpx.Response:
        """``GET target`` on the first partition whose reader answers, starting from a rotating one."""
        start, self._next_any = self._next_any, (self._next_any + 1) % self.partitions
        for step in range(self.partitions):
            try:
                return await self.get((start + step) % self.partitions, target)
            except PartitionUnavailable:
                continue
        raise PartitionUnavailable(
            "no partition's reader answers; catalog reads can use any of them",
            {"partitions": list(range(self.partitions))},
        )


def _unavailable(partition: int, why: str) -> PartitionUnavailable:
    return PartitionUnavailable(f"partition {partition} cannot be read: {why}", {"partition": partition})


@asynccontextmanager
async def open_readers(
    partitions_dir: str | Path, topic: str, partitions: int, *, timeout_s: float = 10.0
) -> AsyncIterator[PartitionReaders]:
    """:class:`PartitionReaders` with one pooled httpx client for the front's lifetime."""
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        yield PartitionReaders(partitions_dir, topic, partitions, client)


# --- which partitions a read needs ---------------------------------------------------------------------------

_CATALOG = re.compile(r"programs(/[^/]+(/(assets|tiers)(/[^/]+)?)?)?|assets(/[^/]+)?|rules(/[^/]+(/history)?)?")
_BY_ID = re.compile(r"(participants|events|journal-entries|redemptions)/([^/]+)(/.+)?")
_LOG_RECORD = re.compile(r"log-records/([0-9]{1,9})/[0-9]{1,19}")
_KINDS = {
    "participants": "participant",
    "events": "event",
    "journal-entries": "journal entry",
    "redemptions": "redemption",
}


class _Key(msgspec.Struct):
    """What the merge reads of a listed item (every list item has both); the rest is passed on as it came."""

    id: str
    created_at: datetime


@dataclass(frozen=True)
class _Listed:
    """A list the front fans out: its query type (validated here, as the embedded server does) and how to resume
    a partition just after one of its items: that partition's own cursor for it (scrip_actor/engine/_queries.py
    keys: be64(sequence) for events and entries, be64(created µs) + id for participants)."""

    route: str
    query: Any
    resume_after: Callable[[_Key], str] = field(repr=False)


def _after_sequence(item: _Key) -> str:
    return cursors.encode((be64(int(item.id.replace("-", ""), 16) & _SEQUENCE_MASK),))


def _after_created(item: _Key) -> str:
    return cursors.encode((be64(micros(item.created_at)) + item.id.encode(),))


_LISTS = {
    "events": _Listed("events", EventQuery, _after_sequence),
    "participants": _Listed("participants", ParticipantQuery, _after_created),
    "journal-entries": _Listed("journal-entries", JournalQuery, _after_sequence),
}


def _routed_list(readers: PartitionReaders, route: str, args: dict[str, str]) -> int | None:
    """The one partition a list filtered to one participant or event lives in, or None to fan out."""
    if args.get("external_id"):  # in the engine's own spelling (NFC), as the front routed its events
        return partition_for(values.normalized_text(args["external_id"]), readers.partitions)
    for name in ("participant_id", "event_id") if route != "participants" else ():
        partition = partition_of(args.get(name, ""))
        if partition is not None and partition < readers.partitions:
            return partition
    return None


async def serve_read(readers: PartitionReaders, rest: str) -> Response:
    """Answer ``GET /v1/<rest>`` (the client already authenticated) from the partition(s) holding it."""
    raw_path = request.scope.get("raw_path") or request.path.encode()
    target = bytes(raw_path).decode("latin-1")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    args = request.args.to_dict()
    if rest in _LISTS:
        partition = _routed_list(readers, rest, args)
        if partition is None:
            return await _FanOut(readers, _LISTS[rest], args).page()
        return _passed_through(await readers.get(partition, target))
    by_id = _BY_ID.fullmatch(rest)
    if by_id is not None:
        kind, identifier = by_id.group(1), by_id.group(2)
        partition = partition_of(identifier)
        if partition is None or partition >= readers.partitions:
            raise NotFound(_KINDS[kind], identifier)
        return _passed_through(await readers.get(partition, target))
    log_record = _LOG_RECORD.fullmatch(rest)
    if log_record is None and rest.startswith("log-records/"):
        raise ValidationFailed.field("path", "invalid", "GET /v1/log-records/{partition}/{offset}: whole numbers")
    if log_record is not None:  # the receipt of a 202: its partition is in the path
        partition = int(log_record.group(1))
        if partition >= readers.partitions:
            raise NotFound("log record", rest.removeprefix("log-records/"))
        return _passed_through(await readers.get(partition, target))
    if _CATALOG.fullmatch(rest):
        return _passed_through(await readers.get_any(target))
    if REWARDS.fullmatch(rest):  # the catalog, with each reward's redeemed count added up (_front_rewards.py)
        try:
            return Response(await merged_rewards(readers, rest, args), status=200, content_type=_JSON)
        except PartitionRefused as refused:
            return _passed_through(refused.answer)
    if rest in REPORTS:
        try:
            return Response(await merged_report(readers, rest, args), status=200, content_type=_JSON)
        except PartitionRefused as refused:
            return _passed_through(refused.answer)
    return _not_routed(rest)


def _not_routed(rest: str) -> Response:
    return _error(
        NotRouted(
            f"the front does not route GET /v1/{rest} yet: it would need a merge of every partition's answer",
            {"path": f"/v1/{rest}"},
        )
    )


def _passed_through(answer: httpx.Response) -> Response:
    headers = {name: answer.headers[name] for name in _PASSED_HEADERS if name in answer.headers}
    content_type = answer.headers.get("content-type", _JSON)
    return Response(answer.content, status=answer.status_code, content_type=content_type, headers=headers)


# --- fanned-out lists ----------------------------------------------------------------------------------------


class _FanOutCursor(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The front's cursor of a merged list: per partition, the partition's own cursor to resume at (None: from
    its start) and whether it is exhausted. Opaque to clients: base64url of this as a JSON array."""

    route: str
    descending: bool
    after: list[str | None]
    done: list[bool]


_cursor_decoder = msgspec.json.Decoder(_FanOutCursor, strict=True)


def _encode_cursor(cursor: _FanOutCursor) -> str:
    return base64.urlsafe_b64encode(_encoder.encode(cursor)).decode()


def _decode_cursor(text: str, route: str, descending: bool, partitions: int) -> _FanOutCursor:
    try:
        cursor = _cursor_decoder.decode(base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True))
    except (UnicodeEncodeError, binascii.Error, msgspec.DecodeError):
        raise cursors.invalid_cursor() from None
    shaped = len(cursor.after) == len(cursor.done) == partitions
    if not shaped or cursor.route != route or cursor.descending != descending:
        raise cursors.invalid_cursor()  # another list's, another direction's, or another partition count's
    return cursor


class _Page(msgspec.Struct):
    data: list[msgspec.Raw]
    pagination: dict[str, Any]


_page_decoder = msgspec.json.Decoder(_Page)
_key_decoder = msgspec.json.Decoder(_Key)


@dataclass
class _Stream:
    """One partition's items as the merge consumes them: the page in hand, and where it came from."""

    partition: int
    base: str | None  # the cursor the page in hand was asked with
    items: list[tuple[_Key, msgspec.Raw]] = field(default_factory=list)
    taken: int = 0
    has_more: bool = True
    next_cursor: str | None = None

    def head(self) -> _Key | None:
        return self.items[self.taken][0] if self.taken < len(self.items) else None

    def resume(self, resume_after: Callable[[_Key], str]) -> tuple[str | None, bool]:
        """(cursor, exhausted) for the next page: just after the last item taken from the page in hand."""
        if self.taken < len(self.items):
            return (self.base if self.taken == 0 else resume_after(self.items[self.taken - 1][0])), False
        if self.has_more:
            return self.next_cursor, False
        return None, True


class _FanOut:
    """One page of a list merged over every partition (see the module docstring)."""

    def __init__(self, readers: PartitionReaders, listed: _Listed, args: dict[str, str]) -> None:
        query = decode_query(listed.query, args)  # the embedded 400s, before anything is asked
        self._readers, self._listed, self._limit = readers, listed, query.limit
        self._descending = getattr(query, "sort_dir", "desc") == "desc"
        self._args = {name: value for name, value in args.items() if name not in ("cursor", "limit")}
        partitions = readers.partitions
        if query.cursor:
            self._cursor = _decode_cursor(query.cursor, listed.route, self._descending, partitions)
        else:
            self._cursor = _FanOutCursor(listed.route, self._descending, [None] * partitions, [False] * partitions)

    async def _fill(self, streams: list[_Stream], cursors_by_stream: list[str | None]) -> None:
        """Fetch the next page of each stream concurrently; a partition's refusal is raised, not grouped."""
        failures: list[Exception] = []
        answers: dict[int, httpx.Response] = {}

        async def one(stream: _Stream, cursor: str | None) -> None:
            params = {**self._args, "limit": str(self._limit), **({"cursor": cursor} if cursor else {})}
            try:
                answers[stream.partition] = await self._readers.get(
                    stream.partition, "/v1/" + self._listed.route, params
                )
            except PartitionUnavailable as error:
                failures.append(error)

        async with trio.open_nursery() as nursery:
            for stream, cursor in zip(streams, cursors_by_stream, strict=True):
                nursery.start_soon(one, stream, cursor)
        if failures:
            raise min(failures, key=lambda error: error.details["partition"])
        for stream, cursor in zip(streams, cursors_by_stream, strict=True):
            answer = answers[stream.partition]
            if answer.status_code != 200:
                raise PartitionRefused(answer)
            page = _page_decoder.decode(answer.content)
            stream.base, stream.taken = cursor, 0
            stream.items = [(_key_decoder.decode(raw), raw) for raw in page.data]
            stream.has_more = bool(page.pagination.get("has_more"))
            stream.next_cursor = page.pagination.get("next_cursor")

    def _best(self, streams: list[_Stream]) -> _Stream | None:
        heads = [(stream.head(), stream) for stream in streams]
        ready = [(micros(head.created_at), stream.partition, stream) for head, stream in heads if head is not None]
        if not ready:
            return None
        pick = max if self._descending else min
        return pick(ready, key=lambda entry: (entry[0], entry[1]))[2]

    async def page(self) -> Response:
        try:
            data, streams = await self._merge()
        except PartitionRefused as refused:
            return _passed_through(refused.answer)
        resumes = [stream.resume(self._listed.resume_after) for stream in streams]
        after, done = list(self._cursor.after), list(self._cursor.done)
        for stream, (cursor, exhausted) in zip(streams, resumes, strict=True):
            after[stream.partition], done[stream.partition] = cursor, exhausted
        more = not all(done)
        next_cursor = _encode_cursor(_FanOutCursor(self._listed.route, self._descending, after, done)) if more else None
        body = {"data": data, "pagination": {"has_more": more, "next_cursor": next_cursor}}
        return Response(_encoder.encode(body), status=200, content_type=_JSON)

    async def _merge(self) -> tuple[list[msgspec.Raw], list[_Stream]]:
        live = [p for p in range(self._readers.partitions) if not self._cursor.done[p]]
        streams = [_Stream(partition, self._cursor.after[partition]) for partition in live]
        await self._fill(streams, [stream.base for stream in streams])
        data: list[msgspec.Raw] = []
        refills = _REFILL_ROUNDS_PER_PARTITION * len(streams)
        while len(data) < self._limit:
            # A partition whose page ran out but has more must be asked again before anything is picked: its
            # next item may come before every other partition's head.
            starved = [stream for stream in streams if stream.head() is None and stream.has_more]
            if starved:
                if refills <= 0:
                    break  # a short page, with has_more: the contract of a scan-bounded page
                refills -= len(starved)
                await self._fill(starved, [stream.next_cursor for stream in starved])
                continue
            best = self._best(streams)
            if best is None:
                break
            data.append(best.items[best.taken][1])
            best.taken += 1
        return data, streams
