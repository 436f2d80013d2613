"""The cursor codec: what it issues comes back as it went in; anything else is the one cursor 400, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrip_actor import cursors
from scrip_actor.errors import ValidationFailed

SHAPES: list[Any] = [tuple[str, str], tuple[int, str, str], tuple[str, int], tuple[int], tuple[bytes]]
_ELEMENT = {str: st.text(max_size=40), int: st.integers(-(2**63), 2**63 - 1), bytes: st.binary(min_size=1, max_size=40)}


@st.composite
def _key(draw: st.DrawFn) -> tuple[Any, Any]:
    shape = draw(st.sampled_from(SHAPES))
    return shape, tuple(draw(_ELEMENT[element]) for element in shape.__args__)


@given(_key())
def test_an_issued_cursor_decodes_to_its_key(shape_and_key: tuple[Any, Any]) -> None:
    shape, key = shape_and_key
    assert cursors.decode(cursors.encode(key), shape) == key


@given(
    st.text(max_size=200) | st.binary(max_size=150).map(lambda raw: cursors.encode((raw or b"x",))),
    st.sampled_from(SHAPES),
)
def test_any_text_decodes_to_a_key_of_the_shape_or_is_the_cursor_400(cursor: str, shape: Any) -> None:
    try:
        key = cursors.decode(cursor, shape)
    except ValidationFailed as error:
        assert error.details["fields"][0]["field"] == "cursor"
        return
    assert len(key) == len(shape.__args__)
    assert all(type(element) is kind for element, kind in zip(key, shape.__args__, strict=True))


@pytest.mark.parametrize("shape", SHAPES)
def test_a_key_of_another_shape_is_refused(shape: Any) -> None:
    others = [other for other in SHAPES if other != shape]
    samples = {str: "a", int: 1, bytes: b"a"}
    for other in others:
        cursor = cursors.encode(tuple(samples[element] for element in other.__args__))
        with pytest.raises(ValidationFailed):
            cursors.decode(cursor, shape)
