"""A backtest's tally: what each replayed event's entries moved, per asset and per rule, beside what happened.

Both sides are counted by the same function (:func:`entry_amounts`) from journal entries: the sandbox's for the
proposed rules, the live journal's for what happened. So a backtest of the unchanged rule set gives equal sides by
construction of the replay, not by a second way of counting. Every amount is an integer in minor units; decimal
text appears only in :meth:`Tally.fill`.

What counts: an entry made by the event's rules (``entry.event_id`` set; the step's lot settlement is the lots'
own, not the event's). Per entry and asset, the net change of participants' balances: positive is *credited*,
negative *debited* (a hold or a transfer between participants nets to zero, and counts as neither). The program's
wallet draw is the net of the entry's postings to ``PROGRAM`` accounts of this program, negated.
"""

from __future__ import annotations

from collections.abc import Iterable

from scrip_actor.amounts import format_minor
from scrip_actor.backtest_model import (
    AssetAmounts,
    AssetReport,
    Backtest,
    Distribution,
    HistogramBucket,
    RuleReport,
    SampleEvent,
)
from scrip_actor.budgets import BUDGET_EXCEEDED
from scrip_actor.model import Asset, Event, JournalEntry, RuleEvaluation

__all__ = ["EventSide", "Tally", "entry_amounts"]

SAMPLE_EVENTS_MAX = 20
HISTOGRAM_DECADES = 6  # buckets [0,1), [1,10), ... [10^4, ∞) in the asset's major units
_WALLET_REASON = "program wallet for asset"


def entry_amounts(entries: Iterable[JournalEntry], program_id: str) -> dict[str, list[int]]:
    """Per asset ``[credited, debited, wallet_draw]`` in minor units, of the entries (see the module docstring)."""
    amounts: dict[str, list[int]] = {}
    for entry in entries:
        participants: dict[str, int] = {}
        wallet: dict[str, int] = {}
        for posting in entry.postings:
            if posting.entity_type == "PARTICIPANT":
                participants[posting.asset_id] = participants.get(posting.asset_id, 0) + posting.amount_minor
            elif posting.entity_type == "PROGRAM" and posting.entity_id == program_id:
                wallet[posting.asset_id] = wallet.get(posting.asset_id, 0) + posting.amount_minor
        for asset_id in participants.keys() | wallet.keys():
            row = amounts.setdefault(asset_id, [0, 0, 0])
            net = participants.get(asset_id, 0)
            row[0 if net > 0 else 1] += abs(net)
            row[2] -= wallet.get(asset_id, 0)
    return amounts


class EventSide:
    """One event on one side (proposed or actual): its rule entries, evaluations and failure."""

    __slots__ = ("by_rule", "evaluations", "failure", "participants", "participants_by_rule", "totals")

    def __init__(
        self, entries: list[JournalEntry], evaluations: list[RuleEvaluation], failure: str | None, program_id: str
    ) -> None:
        rule_entries = [entry for entry in entries if entry.event_id is not None]
        self.totals = entry_amounts(rule_entries, program_id)
        rules: dict[str | None, list[JournalEntry]] = {}
        for entry in rule_entries:
            rules.setdefault(entry.rule_id, []).append(entry)
        self.by_rule = {rule_id: entry_amounts(group, program_id) for rule_id, group in rules.items()}
        self.participants_by_rule = {rule_id: _participants(group) for rule_id, group in rules.items()}
        self.participants = _participants(rule_entries)
        self.evaluations = evaluations
        self.failure = failure


def _participants(entries: list[JournalEntry]) -> set[tuple[str, str]]:
    """(participant id, asset id) of every participant posting of ``entries``."""
    return {
        (posting.entity_id, posting.asset_id)
        for entry in entries
        for posting in entry.postings
        if posting.entity_type == "PARTICIPANT"
    }


class _RuleRow:
    __slots__ = ("actual_matches", "assets", "budget_hits", "matches", "participants")

    def __init__(self) -> None:
        self.matches = 0
        self.actual_matches = 0
        self.budget_hits = 0
        self.assets: dict[str, list[int]] = {}  # asset -> [credited, debited, actual credited, actual debited]
        self.participants: dict[str, set[str]] = {}


class Tally:
    """The running report of one backtest: fed event by event, turned into the job's fields by :meth:`fill`."""

    def __init__(self, program_id: str, assets: dict[str, Asset], rule_names: dict[str, tuple[str, str]]) -> None:
        """``rule_names``: rule id -> (name, change) for every rule of either side (new rules: their made-up id)."""
        self._program_id = program_id
        self._assets = assets
        self._rule_names = rule_names
        self._assets_rows: dict[str, list[int]] = {}  # [credited, debited, draw, actual c, actual d, actual draw]
        self._wallet_failures: dict[str, int] = {}
        self._per_event: dict[str, list[int]] = {}
        self._participants: dict[str, set[str]] = {}
        self._rules: dict[str, _RuleRow] = {}
        self._sample: list[SampleEvent] = []
        self._sample_alike: list[SampleEvent] = []
        self.failed = 0
        self.failed_actual = 0
        self.affected: set[str] = set()

    def add(self, event: Event, proposed: EventSide, actual: EventSide) -> None:
        """Count one replayed window event."""
        self.failed += proposed.failure is not None
        self.failed_actual += actual.failure is not None
        for column, side in ((0, proposed), (3, actual)):
            for asset_id, (credited, debited, draw) in side.totals.items():
                row = self._assets_rows.setdefault(asset_id, [0] * 6)
                row[column] += credited
                row[column + 1] += debited
                row[column + 2] += draw
        for asset_id, (credited, _, _) in proposed.totals.items():
            if credited:
                self._per_event.setdefault(asset_id, []).append(credited)
        for participant_id, asset_id in proposed.participants:
            self._participants.setdefault(asset_id, set()).add(participant_id)
            self.affected.add(participant_id)
        if proposed.failure is not None and _WALLET_REASON in proposed.failure:
            for asset in self._assets.values():
                if f"asset {asset.symbol} has" in proposed.failure:
                    self._wallet_failures[asset.id] = self._wallet_failures.get(asset.id, 0) + 1
        self._add_rules(proposed, actual)
        self._add_sample(event, proposed, actual)

    def _add_rules(self, proposed: EventSide, actual: EventSide) -> None:
        for evaluation in actual.evaluations:  # a rule that ran live and is not in the proposed set: removed
            if evaluation.rule_id not in self._rule_names:
                self._rule_names[evaluation.rule_id] = (evaluation.rule_name, "removed")
        for evaluations, counter in ((proposed.evaluations, "matches"), (actual.evaluations, "actual_matches")):
            for evaluation in evaluations:
                row = self._rules.setdefault(evaluation.rule_id, _RuleRow())
                if evaluation.status == "MATCHED":
                    setattr(row, counter, getattr(row, counter) + 1)
                elif evaluation.status == "SKIPPED" and evaluation.reason == BUDGET_EXCEEDED and counter == "matches":
                    row.budget_hits += 1
        for column, side in ((0, proposed), (2, actual)):
            for rule_id, amounts in side.by_rule.items():
                if rule_id is None:
                    continue
                row = self._rules.setdefault(rule_id, _RuleRow())
                for asset_id, (credited, debited, _) in amounts.items():
                    values = row.assets.setdefault(asset_id, [0, 0, 0, 0])
                    values[column] += credited
                    values[column + 1] += debited
        for rule_id, participants in proposed.participants_by_rule.items():
            if rule_id is not None:
                for participant_id, asset_id in participants:
                    self._rules[rule_id].participants.setdefault(asset_id, set()).add(participant_id)

    def _add_sample(self, event: Event, proposed: EventSide, actual: EventSide) -> None:
        differs = proposed.totals != actual.totals or (proposed.failure is None) != (actual.failure is None)
        if not differs and not proposed.totals:
            return
        target = self._sample if differs else self._sample_alike
        if len(target) >= SAMPLE_EVENTS_MAX:
            return
        target.append(
            SampleEvent(
                event_id=event.id,
                participant_id=event.participant_id,
                external_id=event.external_id,
                event_timestamp=event.event_timestamp,
                failure=proposed.failure,
                actual_failure=actual.failure,
                amounts=self._amounts({key: value[:2] for key, value in proposed.totals.items()}),
                actual_amounts=self._amounts({key: value[:2] for key, value in actual.totals.items()}),
                evaluations=proposed.evaluations,
            )
        )

    def _text(self, asset_id: str, minor: int) -> str:
        asset = self._assets.get(asset_id)
        return format_minor(minor, asset.scale if asset is not None else 0)

    def _amounts(self, amounts: dict[str, list[int]]) -> list[AssetAmounts]:
        return [
            AssetAmounts(asset_id=asset_id, credited=self._text(asset_id, c), debited=self._text(asset_id, d))
            for asset_id, (c, d) in sorted(amounts.items())
        ]

    def fill(self, job: Backtest) -> None:
        """Write the report into ``job`` (called as the run goes, and at its end)."""
        rows = sorted(self._assets_rows.items())
        job.totals = self._amounts({asset_id: row[0:2] for asset_id, row in rows})
        job.actual = self._amounts({asset_id: row[3:5] for asset_id, row in rows})
        job.difference = self._amounts({asset_id: [row[0] - row[3], row[1] - row[4]] for asset_id, row in rows})
        job.assets = [self._asset_report(asset_id, row) for asset_id, row in rows]
        job.rules = self._rule_reports()
        job.sample = (self._sample + self._sample_alike)[:SAMPLE_EVENTS_MAX]
        job.events_failed = self.failed
        job.events_failed_actual = self.failed_actual
        job.participants_affected = len(self.affected)

    def _asset_report(self, asset_id: str, row: list[int]) -> AssetReport:
        text = lambda minor: self._text(asset_id, minor)  # noqa: E731 - a local shorthand
        return AssetReport(
            asset_id=asset_id,
            credited=text(row[0]),
            debited=text(row[1]),
            actual_credited=text(row[3]),
            actual_debited=text(row[4]),
            difference_credited=text(row[0] - row[3]),
            difference_debited=text(row[1] - row[4]),
            wallet_draw=text(row[2]),
            actual_wallet_draw=text(row[5]),
            wallet_failures=self._wallet_failures.get(asset_id, 0),
            participants_affected=len(self._participants.get(asset_id, ())),
            distribution=self._distribution(asset_id),
        )

    def _distribution(self, asset_id: str) -> Distribution:
        values = sorted(self._per_event.get(asset_id, []))
        scale = self._assets[asset_id].scale if asset_id in self._assets else 0
        unit = 10**scale
        buckets = [0] * HISTOGRAM_DECADES
        for value in values:
            decade = 0
            while decade < HISTOGRAM_DECADES - 1 and value >= unit * 10**decade:
                decade += 1
            buckets[decade] += 1
        histogram = [
            HistogramBucket(
                lower="0" if index == 0 else str(10 ** (index - 1)),
                upper=str(10**index) if index < HISTOGRAM_DECADES - 1 else None,
                count=count,
            )
            for index, count in enumerate(buckets)
        ]

        def rank(fraction_percent: int) -> str | None:  # nearest rank: the smallest value with that share at or below
            if not values:
                return None
            index = max(0, -(-len(values) * fraction_percent // 100) - 1)
            return self._text(asset_id, values[index])

        return Distribution(
            count=len(values),
            min=rank(0),
            p50=rank(50),
            p90=rank(90),
            max=self._text(asset_id, values[-1]) if values else None,
            histogram=histogram,
        )

    def _rule_reports(self) -> list[RuleReport]:
        reports = []
        for rule_id, (name, change) in self._rule_names.items():
            row = self._rules.get(rule_id, _RuleRow())
            assets = sorted(row.assets.items()) or [(None, [0, 0, 0, 0])]
            for asset_id, (credited, debited, actual_credited, actual_debited) in assets:
                text = lambda minor, a=asset_id: self._text(a, minor) if a else str(minor)  # noqa: E731
                reports.append(
                    RuleReport(
                        rule_id=None if change == "new" else rule_id,
                        name=name,
                        change=change,  # type: ignore[arg-type]
                        asset_id=asset_id,
                        matches=row.matches,
                        budget_hits=row.budget_hits,
                        participants_affected=len(row.participants.get(asset_id, ())) if asset_id else 0,
                        credited=text(credited),
                        debited=text(debited),
                        actual_matches=row.actual_matches,
                        actual_credited=text(actual_credited),
                        actual_debited=text(actual_debited),
                    )
                )
        return reports
