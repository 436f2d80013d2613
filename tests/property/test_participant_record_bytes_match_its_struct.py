"""The participant record is written from :meth:`ParticipantState.record_fields` (a plain list, cheaper on every
event) but read back as :class:`ParticipantRecord`: the two must encode to the very same bytes, or a store would
hold records its reader misreads. Also :func:`decimal_text`'s fast path against ``format(value, "f")``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.counters import CounterWindow
from scrip_actor.ledger import ParticipantRecord, ParticipantState, decimal_text
from scrip_actor.store import encode

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
_moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
_counter_values = st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**20), max_value=10**20)


@st.composite
def _records(draw: st.DrawFn) -> ParticipantRecord:
    assets = draw(st.lists(_names, max_size=3, unique=True))
    return ParticipantRecord(
        id="p_" + draw(_names),
        external_id=draw(_names),
        status=draw(st.sampled_from(["ACTIVE", "SUSPENDED"])),
        profile=draw(st.dictionaries(_names, _names, max_size=2)),
        tags=sorted(draw(st.sets(_names, max_size=4))),
        counters={key: str(value) for key, value in draw(st.dictionaries(_names, _counter_values, max_size=3)).items()},
        attributes=draw(st.dictionaries(_names, _names, max_size=3)),
        program_ids=draw(st.lists(_names, max_size=2, unique=True)),
        balances={asset: draw(st.lists(st.integers(-(10**12), 10**12), min_size=3, max_size=3)) for asset in assets},
        overdraft={asset: draw(st.integers(0, 10**6)) for asset in assets},
        lot_numbers={asset: draw(st.integers(0, 100)) for asset in assets},
        created_at=draw(_moments),
        updated_at=draw(_moments),
        counter_windows={
            key: CounterWindow(draw(st.integers(1, 10**12)), draw(_moments))
            for key in draw(st.lists(_names, max_size=2, unique=True))
        },
    )


@settings(max_examples=200, deadline=None)
@given(_records())
def test_record_fields_encode_to_the_struct_bytes(record: ParticipantRecord) -> None:
    state = ParticipantState(record, {})
    assert encode(state.record_fields()) == encode(state.to_record())


@settings(max_examples=500, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_text_is_plain_fixed_point(value: Decimal) -> None:
    assert decimal_text(value) == format(value, "f")
    assert "E" not in decimal_text(value)


def test_decimal_text_of_exponent_forms() -> None:
    assert decimal_text(Decimal("1E+2")) == "100"
    assert decimal_text(Decimal("1E-7")) == "0.0000001"
    assert decimal_text(Decimal("-0")) == "-0"
    assert decimal_text(Decimal("12.50")) == "12.50"
