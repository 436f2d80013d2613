"""The ledger reports through the front: every partition's own report, merged exactly (docs/reports.md).

``GET /v1/reports/ledger-summary``, ``/expiration-schedule`` and ``/program-activity`` are answered by asking every
partition's reader the same query, concurrently, and adding their answers up. Each figure is a sum over the
partitions because each partition's report counts only its own journal, lots and participants, and a participant
(with everything it holds) lives on exactly one partition:

* **amounts** (``total_issued``, ``current_balance``, ``opening_balance``, a bucket's ``amount``, ...) are decoded
  to integer minor units at the row's ``scale`` (``amounts.to_minor``, never a float), added, and written back with
  ``amounts.format_minor``. Each partition's figures add up exactly (``current_balance`` is its total formula,
  ``closing = opening + period``, the schedule's parts are its outstanding total), and a sum of exact identities
  is one: the merged report adds up exactly too.
* **counts** (``participant_count``, ``total_lot_count``, a bucket's ``lot_count``, ``event_count``,
  ``journal_count``, ``unique_participants``) are added: nothing is counted on two partitions.
* **the catalog** (asset and program names, symbols, scales, ``asset_count``, ``rule_count``, ``reward_count``,
  ``tier_count``, the list of rows and of buckets) is the same on every partition (each is seeded with the same
  catalog), so it is taken as it is, after checking that every partition says the same: if one does not, the
  answer is a 502 ``partitions_disagree``, never a guess.
* ``last_activity_at`` is the latest of the partitions'. ``since`` (program activity) is not sent on: a partition
  leaves out a program idle *there* since then, which would drop its figures from the sum, so the front asks for
  every program and applies ``since`` to the merged ``last_activity_at``.
* Program activity has no ``scale``: its amounts are each written at their asset's scale (the program's finest,
  for ``total_issued``/``total_redeemed``), the same on every partition, so each is decoded at the number of
  decimals it is written with, which must agree across partitions.

The query is decoded first with the embedded query type (an unknown or malformed parameter is the same 400,
before any partition is asked); what the engine itself refuses (``from`` after ``to``, an unknown ``program_id``,
too many buckets) comes back from the partitions, and the lowest-numbered partition's refusal is the answer. A
partition without an answering reader is a 503 ``partition_unavailable`` naming it: never a partial sum.

Each partition's report is as of the moment it answered (docs/reports.md, consistency): the merged one is a sum
of the partitions' reports, each exact, taken a few milliseconds apart, not one snapshot of all partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import trio

from scrip_actor.amounts import format_minor, parse_decimal, to_minor
from scrip_actor.errors import ScripError
from scrip_actor.http.errors import PartitionsDisagree, PartitionUnavailable
from scrip_actor.http.routes_reports import ExpirationScheduleQuery, LedgerSummaryQuery, ProgramActivityQuery
from scrip_actor.http.routing import decode_query
from scrip_actor.http.schemas import DataOf
from scrip_actor.report_model import ActivityAsset, ExpirationSchedule, LedgerSummary, ProgramActivity
from scrip_actor.report_totals import micros

if TYPE_CHECKING:
    from scrip_actor.partitioned._front_reads import PartitionReaders

__all__ = ["REPORTS", "PartitionRefused", "ask_every_partition", "merged_report"]

_encoder = msgspec.json.Encoder()


class PartitionRefused(Exception):
    """A partition's reader answered the request with something other than a 200 (a 4xx for the query): its
    answer is the front's, passed through."""

    def __init__(self, answer: httpx.Response) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


async def ask_every_partition(
    readers: PartitionReaders, path: str, params: dict[str, str] | None = None
) -> list[httpx.Response]:
    """``GET path`` on every partition's reader concurrently; the answers in partition order, all 200s.

    The lowest-numbered partition without an answering reader is raised (503), else the lowest-numbered refusal
    (:class:`PartitionRefused`): an answer is built from all partitions or from none."""
    answers: dict[int, httpx.Response] = {}
    failures: list[PartitionUnavailable] = []

    async def one(partition: int) -> None:
        try:
            answers[partition] = await readers.get(partition, path, params)
        except PartitionUnavailable as error:
            failures.append(error)

    async with trio.open_nursery() as nursery:
        for partition in range(readers.partitions):
            nursery.start_soon(one, partition)
    if failures:
        raise min(failures, key=lambda error: error.details["partition"])
    ordered = [answers[partition] for partition in range(readers.partitions)]
    for answer in ordered:
        if answer.status_code != 200:
            raise PartitionRefused(answer)
    return ordered


# --- adding figures up ---------------------------------------------------------------------------------------


def _disagree(what: str, values: Sequence[Any]) -> PartitionsDisagree:
    return PartitionsDisagree(
        f"the partitions' reports do not agree on {what}, so they cannot be added up",
        {"field": what, "values": [str(value) for value in values]},  # per partition, in partition order
    )


def _same(what: str, values: Sequence[Any]) -> Any:
    """The one value every partition gives (catalog figures), or PartitionsDisagree."""
    if any(value != values[0] for value in values[1:]):
        raise _disagree(what, values)
    return values[0]


def _minor(text: str, scale: int, what: str) -> int:
    try:
        return to_minor(parse_decimal(text, what), scale, what)
    except ScripError:  # not ours to blame on the client: a partition wrote a figure we cannot read
        raise _disagree(f"{what} (not a decimal at scale {scale})", [text]) from None


def _sum_amounts(texts: Sequence[str], scale: int, what: str) -> str:
    """The exact sum of decimal strings at ``scale``, as a decimal string at ``scale``."""
    return format_minor(sum(_minor(text, scale, what) for text in texts), scale)


def _sum_optional(texts: Sequence[str | None], scale: int, what: str) -> str | None:
    """Period figures: absent (no window) on every partition or present on every one."""
    if all(text is None for text in texts):
        return None
    if any(text is None for text in texts):
        raise _disagree(what, texts)
    return _sum_amounts([text for text in texts if text is not None], scale, what)


def _written_scale(texts: Sequence[str], what: str) -> int:
    """The decimals the amounts are written with (``format_minor`` writes exactly the scale), the same on all."""
    return _same(f"{what} (decimals written)", [len(text.partition(".")[2]) for text in texts])


def _sum_written(texts: Sequence[str], what: str) -> str:
    return _sum_amounts(texts, _written_scale(texts, what), what)


def _rows(answers: list[list[Any]], key: Callable[[Any], str], what: str) -> list[list[Any]]:
    """Per row (in the partitions' shared order) the partitions' versions of it: the same rows on every one."""
    _same(what, [[key(row) for row in rows] for rows in answers])
    return [list(versions) for versions in zip(*answers, strict=True)]


# --- the three reports ---------------------------------------------------------------------------------------

_SUMMARY_AMOUNTS = (
    "total_issued",
    "total_redeemed",
    "total_expired",
    "total_forfeited",
    "total_other_adjustments_net",
    "current_balance",
)
_SUMMARY_PERIOD = (
    "opening_balance",
    "closing_balance",
    "period_issued",
    "period_redeemed",
    "period_expired",
    "period_forfeited",
    "other_adjustments_net",
)


def _merge_summary(versions: list[LedgerSummary]) -> LedgerSummary:
    first = versions[0]
    scale = _same("scale", [row.scale for row in versions])
    _same("asset_name", [(row.asset_name, row.asset_symbol) for row in versions])
    merged = msgspec.structs.replace(first, participant_count=sum(row.participant_count for row in versions))
    for name in _SUMMARY_AMOUNTS:
        setattr(merged, name, _sum_amounts([getattr(row, name) for row in versions], scale, name))
    for name in _SUMMARY_PERIOD:
        setattr(merged, name, _sum_optional([getattr(row, name) for row in versions], scale, name))
    return merged


def _merge_schedule(versions: list[ExpirationSchedule]) -> ExpirationSchedule:
    scale = _same("scale", [row.scale for row in versions])
    _same("asset_name", [(row.asset_name, row.asset_symbol) for row in versions])
    buckets = []
    for bucket in _rows([row.buckets for row in versions], lambda b: f"{b.bucket_start}..{b.bucket_end}", "buckets"):
        amount = _sum_amounts([b.amount for b in bucket], scale, "amount")
        buckets.append(msgspec.structs.replace(bucket[0], amount=amount, lot_count=sum(b.lot_count for b in bucket)))
    return ExpirationSchedule(
        asset_id=versions[0].asset_id,
        asset_name=versions[0].asset_name,
        asset_symbol=versions[0].asset_symbol,
        scale=scale,
        total_outstanding=_sum_amounts([row.total_outstanding for row in versions], scale, "total_outstanding"),
        total_lot_count=sum(row.total_lot_count for row in versions),
        never_expiring=_sum_amounts([row.never_expiring for row in versions], scale, "never_expiring"),
        expiring_before_window=_sum_amounts([r.expiring_before_window for r in versions], scale, "before_window"),
        expiring_after_window=_sum_amounts([r.expiring_after_window for r in versions], scale, "after_window"),
        buckets=buckets,
    )


def _merge_activity_asset(versions: list[ActivityAsset]) -> ActivityAsset:
    return ActivityAsset(
        asset_id=versions[0].asset_id,
        asset_symbol=_same("asset_symbol", [row.asset_symbol for row in versions]),
        total_issued=_sum_written([row.total_issued for row in versions], "assets.total_issued"),
        total_redeemed=_sum_written([row.total_redeemed for row in versions], "assets.total_redeemed"),
    )


def _merge_activity(versions: list[ProgramActivity]) -> ProgramActivity:
    latest = [row.last_activity_at for row in versions if row.last_activity_at is not None]
    assets = _rows([row.assets for row in versions], lambda asset: asset.asset_id, "assets")
    return ProgramActivity(
        program_id=versions[0].program_id,
        program_name=_same("program_name", [row.program_name for row in versions]),
        event_count=sum(row.event_count for row in versions),
        journal_count=sum(row.journal_count for row in versions),
        total_issued=_sum_written([row.total_issued for row in versions], "total_issued"),
        total_redeemed=_sum_written([row.total_redeemed for row in versions], "total_redeemed"),
        unique_participants=sum(row.unique_participants for row in versions),
        last_activity_at=max(latest, key=micros) if latest else None,
        asset_count=_same("asset_count", [row.asset_count for row in versions]),
        rule_count=_same("rule_count", [row.rule_count for row in versions]),
        reward_count=_same("reward_count", [row.reward_count for row in versions]),
        tier_count=_same("tier_count", [row.tier_count for row in versions]),
        assets=[_merge_activity_asset(asset) for asset in assets],
    )


@dataclass(frozen=True)
class _Report:
    """One report route: its embedded query type, how to read a partition's answer, the row's key and how the
    partitions' versions of a row add up."""

    query: Any
    decoder: msgspec.json.Decoder[Any] = field(repr=False)
    key: Callable[[Any], str] = field(repr=False)
    merge: Callable[[list[Any]], Any] = field(repr=False)
    local: tuple[str, ...] = ()  # parameters the front applies itself instead of sending them on


REPORTS: dict[str, _Report] = {
    "reports/ledger-summary": _Report(
        LedgerSummaryQuery, msgspec.json.Decoder(DataOf[LedgerSummary]), lambda row: row.asset_id, _merge_summary
    ),
    "reports/expiration-schedule": _Report(
        ExpirationScheduleQuery,
        msgspec.json.Decoder(DataOf[ExpirationSchedule]),
        lambda row: row.asset_id,
        _merge_schedule,
    ),
    "reports/program-activity": _Report(
        ProgramActivityQuery,
        msgspec.json.Decoder(DataOf[ProgramActivity]),
        lambda row: row.program_id,
        _merge_activity,
        local=("since",),
    ),
}


async def merged_report(readers: PartitionReaders, route: str, args: dict[str, str]) -> bytes:
    """The body of ``GET /v1/<route>`` (one of :data:`REPORTS`) merged over every partition: ``{"data": [...]}``.

    Raises the embedded 400 for a bad query, PartitionUnavailable, PartitionRefused, or PartitionsDisagree."""
    report = REPORTS[route]
    query = decode_query(report.query, args)  # the embedded 400s, before anything is asked
    sent = {name: value for name, value in args.items() if name not in report.local}
    answers = await ask_every_partition(readers, "/v1/" + route, sent)
    try:
        per_partition = [report.decoder.decode(answer.content).data for answer in answers]
    except msgspec.DecodeError as error:
        raise _disagree("data", [f"not a {route} answer: {error}"]) from None
    rows = [report.merge(versions) for versions in _rows(per_partition, report.key, "data")]
    since: datetime | None = getattr(query, "since", None)
    if since is not None:  # as the engine filters: drop programs idle since then (or never active)
        rows = [
            row for row in rows if row.last_activity_at is not None and micros(row.last_activity_at) >= micros(since)
        ]
    return _encoder.encode({"data": rows})
