"""The batch-size pre-check (before any decoding) gives the answer a token-by-token count gives, on any body:
ordinary batches, nested event data, strings full of brackets and commas, other shapes, malformed JSON."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from scrip_actor.http.routing import _JSON_STRING, _separators_exceed, batch_items_exceed

_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet='ab,[]{}"\\: ', max_size=6)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=12)  # fmt: skip


@settings(max_examples=400)
@given(items=st.lists(_values, max_size=12), items_max=st.integers(1, 12), spaced=st.booleans())
def test_the_fast_count_agrees_on_well_formed_batches(items: list[object], items_max: int, spaced: bool) -> None:
    raw = json.dumps({"events": items}, indent=1 if spaced else None).encode()
    expected = _separators_exceed(_JSON_STRING.sub(b'""', raw), items_max)
    assert batch_items_exceed(raw, items_max) == expected
    assert expected == (len(items) > items_max)


@settings(max_examples=300)
@given(
    raw=st.binary(max_size=60) | st.text(alphabet='[]{},"\\:0 e', max_size=60).map(str.encode),
    items_max=st.integers(1, 5),
)
def test_the_fast_count_agrees_on_anything(raw: bytes, items_max: int) -> None:
    assert batch_items_exceed(raw, items_max) == _separators_exceed(_JSON_STRING.sub(b'""', raw), items_max)


def test_a_flood_of_atoms_is_caught_without_decoding() -> None:
    raw = b'{"events": [' + b"0," * 5000 + b"0]}"
    assert batch_items_exceed(raw, 1000)
    assert not batch_items_exceed(b'{"events": [' + b'{"a": {"b": [1, 2]}},' * 99 + b"{}]}", 100)


@settings(max_examples=300)
@given(raw=st.text(alphabet='ab"\\,[]', max_size=40).map(str.encode))
def test_the_unrolled_string_pattern_blanks_what_the_plain_one_did(raw: bytes) -> None:
    import re

    plain = re.compile(rb'"(?:[^"\\]|\\.)*"')
    assert _JSON_STRING.sub(b'""', raw) == plain.sub(b'""', raw)
