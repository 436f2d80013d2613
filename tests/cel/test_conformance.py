"""The CEL spec's conformance suite (cel-spec ``tests/simple/testdata/*.textproto``), run against our compiler.

The data is read from ``<workspace>/shared/cel-spec`` (never copied into the repo); if that
directory is missing the whole module is skipped. Tests whose inputs or expected outputs need
features this compiler deliberately lacks (protobuf messages, proto packages, enums...) are
skipped with a named category; every other test must produce exactly the expected value (same
CEL type, same value) or an error where an error is expected. A per-file table of pass / skip /
fail counts is printed at the end of the session (see ``conftest.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import pytest
from cel_textproto import Message, parse_textproto
from conftest import CONFORMANCE_COUNTS

from scrip_actor.cel import CelCompileError, CelEvaluationError, CelType, CelUint, compile_expression

SPEC_DIRECTORY = Path(__file__).resolve().parents[2].parent / "shared" / "cel-spec"

if not SPEC_DIRECTORY.is_dir():
    pytest.skip(f"cel-spec conformance data not found at {SPEC_DIRECTORY}", allow_module_level=True)


class Unsupported(Exception):
    """A test needs a feature outside this compiler's scope; the message is the skip category."""


# -- skip categories, decided from the test text before running anything ------------------------

PROTO_MESSAGES = "protobuf messages (TestAllTypes, Any, wrappers, message construction)"
CONTAINER = "proto package containers (qualified name resolution)"
ENUMS = "protobuf enums"
NANOS = "sub-microsecond durations/timestamps (we keep microseconds)"
UNBOUND_ERRORS = "error/unknown values as bindings"
BACKTICKS = "backtick-quoted field names (newer CEL syntax, absent from cel-python's grammar)"

#: Searched in the expression with its string literals blanked out (`_outside_strings`): a backtick or a brace
#: inside a quoted string says nothing about the syntax a test needs.
_CODE_SKIPS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"TestAllTypes|NestedTestAllTypes|google\.protobuf\.(?!Timestamp|Duration)"), PROTO_MESSAGES),
    (re.compile(r"\b(GlobalEnum|NestedEnum|TestAllTypes\.)"), ENUMS),
    (re.compile(r"`"), BACKTICKS),
]
#: Searched in the whole text: these are about the content of timestamp / duration strings.
_TEXT_SKIPS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\.\d{7,9}[Zz+-]|['\"]-?\d+ns['\"]"), NANOS),
]
#: ``Name{`` / ``pkg.Name{`` is message construction; ``x in {...}`` (the keyword, then a map) is not.
_MESSAGE_CONSTRUCTION = re.compile(r"(?<![\w.])(\.?[A-Za-z_][\w.]*)\s*\{")
#: One CEL string or bytes literal: optional r / b prefixes, triple or single quotes, escapes skipped over.
_STRING_LITERAL = re.compile(
    r"(?:[rR][bB]?|[bB][rR]?)?"
    r"(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\")",
    re.DOTALL,
)


def _outside_strings(expression: str) -> str:
    """The expression with every string / bytes literal replaced by ``""``: only code is left to inspect."""
    return _STRING_LITERAL.sub('""', expression)


def _static_skip(test: Message) -> str | None:
    text = _string(test, "expr")
    code = _outside_strings(text)
    if any(match.group(1) != "in" for match in _MESSAGE_CONSTRUCTION.finditer(code)):
        return PROTO_MESSAGES
    for pattern, category in _CODE_SKIPS:
        if pattern.search(code):
            return category
    for pattern, category in _TEXT_SKIPS:
        if pattern.search(text):
            return category
    if test.get("container"):
        return CONTAINER
    return None


# -- turning expected protobuf Values into native values ---------------------------------------


def _string(message: Message, field: str) -> str:
    raw: bytes = message[field][0]
    return raw.decode("utf-8")


def _double(text: Any) -> float:
    text = text.decode() if isinstance(text, bytes) else text
    lowered = text.lower()
    if lowered in ("inf", "infinity", "+inf"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    if lowered == "nan":
        return math.nan
    return float(text)


def _any_value(any_message: Message) -> Any:
    ((type_url, (payload,)),) = any_message.items()
    if type_url.endswith("google.protobuf.Duration]"):
        seconds = int(payload.get("seconds", ["0"])[0])
        nanos = int(payload.get("nanos", ["0"])[0])
        if nanos % 1000:
            raise Unsupported(NANOS)
        return dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    if type_url.endswith("google.protobuf.Timestamp]"):
        seconds = int(payload.get("seconds", ["0"])[0])
        nanos = int(payload.get("nanos", ["0"])[0])
        if nanos % 1000:
            raise Unsupported(NANOS)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return epoch + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    raise Unsupported(PROTO_MESSAGES)


def to_native(value: Message) -> Any:
    """A cel.expr.Value message -> the native Python value our compiler produces."""
    ((kind, (payload,)),) = value.items()
    if kind == "int64_value":
        return int(payload)
    if kind == "uint64_value":
        return CelUint(int(payload))
    if kind == "double_value":
        return _double(payload)
    if kind == "string_value":
        return payload.decode("utf-8")
    if kind == "bytes_value":
        return payload
    if kind == "bool_value":
        return payload == "true"
    if kind == "null_value":
        return None
    if kind == "list_value":
        return [to_native(item) for item in payload.get("values", [])]
    if kind == "map_value":
        return {to_native(entry["key"][0]): to_native(entry["value"][0]) for entry in payload.get("entries", [])}
    if kind == "type_value":
        name = payload.decode("utf-8")
        if ("." in name and not name.startswith("google.protobuf.")) or name.endswith(("Value", "Any")):
            raise Unsupported(PROTO_MESSAGES)
        return CelType(name)
    if kind == "object_value":
        return _any_value(payload)
    if kind == "enum_value":
        raise Unsupported(ENUMS)
    raise Unsupported(f"value kind {kind}")


def same_value(expected: Any, actual: Any) -> bool:
    """Exact CEL equality of results: same type (int vs uint vs double vs bool), same value."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        return (math.isnan(expected) and math.isnan(actual)) or expected == actual
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(map(same_value, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(same_value(expected[k], actual[k]) for k in expected)
    return bool(expected == actual)


def _bindings(test: Message) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for binding in test.get("bindings", []):
        name = _string(binding, "key")
        expression_value = binding["value"][0]
        if "value" not in expression_value:
            raise Unsupported(UNBOUND_ERRORS)
        variables[name] = to_native(expression_value["value"][0])
    return variables


# -- collection ---------------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for path in sorted(SPEC_DIRECTORY.glob("*.textproto")):
        document = parse_textproto(path.read_text(encoding="utf-8"))
        for section in document.get("section", []):
            section_name = _string(section, "name")
            for test in section.get("test", []):
                test_id = f"{path.stem}/{section_name}/{_string(test, 'name')}"
                cases.append(pytest.param(path.stem, test, id=test_id))
    return cases


@pytest.mark.parametrize(("file_name", "test"), _cases())
def test_conformance(file_name: str, test: Message) -> None:
    counts = CONFORMANCE_COUNTS.setdefault(file_name, {"pass": 0, "skip": 0, "fail": 0})
    counts["fail"] += 1  # undone on success or skip; a failing assert leaves it counted
    try:
        category = _static_skip(test)
        if category is not None:
            raise Unsupported(category)
        variables = _bindings(test)
        expected_error = "eval_error" in test or "any_eval_errors" in test
        expected = None if expected_error else to_native(test["value"][0]) if "value" in test else True
    except Unsupported as skip:
        counts["fail"] -= 1
        counts["skip"] += 1
        pytest.skip(str(skip))
    expression = _string(test, "expr")
    try:
        result = compile_expression(expression).evaluate(variables)
    except CelCompileError as error:
        assert expected_error, f"{expression!r} did not compile: {error}"
        counts["error at compile time"] = counts.get("error at compile time", 0) + 1
    except CelEvaluationError as error:
        assert expected_error, f"{expression!r} failed: {error.message}; expected {expected!r}"
    else:
        assert not expected_error, f"{expression!r} returned {result!r}; expected an error"
        assert same_value(expected, result), f"{expression!r} returned {result!r}; expected {expected!r}"
    counts["fail"] -= 1
    counts["pass"] += 1


# -- the skip classifier itself -----------------------------------------------------------------


def _expression_test(expression: str) -> Message:
    return {"expr": [expression.encode("utf-8")]}


@pytest.mark.parametrize(
    "expression",
    [
        "'key' in {'key': '1'}",
        "3.0 in {1: 1, 2: 2, 3u: 3} && 2u in {1u: 1}",
        "'''a ` b'''",
        "br' \\` '",
        '" \\\\ \\` "',
        "'Name{' + \"pkg.Msg{}\"",
    ],
)
def test_skip_rules_ignore_string_contents_and_map_literals(expression: str) -> None:
    assert _static_skip(_expression_test(expression)) is None


@pytest.mark.parametrize(
    ("expression", "category"),
    [
        ("TestAllTypes{single_int64: 1}", PROTO_MESSAGES),
        ("x in {} || google.protobuf.Int32Value{value: 1} == 1", PROTO_MESSAGES),
        ("pkg.Message{}", PROTO_MESSAGES),
        ("{'a-b': 1}.`a-b`", BACKTICKS),
        ("duration('1ns')", NANOS),
    ],
)
def test_skip_rules_still_catch_what_we_lack(expression: str, category: str) -> None:
    assert _static_skip(_expression_test(expression)) == category
