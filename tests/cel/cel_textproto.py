"""A small protobuf text-format reader, enough for the cel-spec conformance files.

We read ``/work/shared/cel-spec/*.textproto`` directly rather than vendoring generated protobuf
classes: the files use only messages, scalars, enums, ``[type.url/Name]`` Any expansions and
comments, so a recursive-descent reader of ~100 lines does the job with no new dependency.

A message becomes ``dict[str, list[value]]`` (every field is a list, since any may repeat);
strings stay `bytes` until the caller knows whether the field is ``string`` or ``bytes``.
"""

from __future__ import annotations

import re
from typing import Any

Message = dict[str, list[Any]]

_TOKEN = re.compile(
    r"""
    \s+ | \#[^\n]* |                                  # whitespace and comments (skipped)
    (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*') |
    (?P<bracketed>\[[^\]]*\]) |                       # Any expansion: [type.googleapis.com/X]
    (?P<word>[-+]?(?:[0-9.]+[eE][-+]?[0-9]+|[A-Za-z0-9_.]+)) |
    (?P<punct>[{}<>:,;\[\]])
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, "'": 39, '"': 34, "?": 63}


def _unescape(body: str) -> bytes:
    """C-style escapes of text format -> raw bytes (octal and \\x are single bytes)."""
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out += char.encode("utf-8")
            index += 1
            continue
        kind = body[index + 1]
        if kind in _ESCAPES:
            out.append(_ESCAPES[kind])
            index += 2
        elif kind in "xX":
            match = re.match(r"[0-9a-fA-F]{1,2}", body[index + 2 :])
            assert match is not None
            out.append(int(match.group(), 16))
            index += 2 + len(match.group())
        elif kind in "01234567":
            match = re.match(r"[0-7]{1,3}", body[index + 1 :])
            assert match is not None
            out.append(int(match.group(), 8) & 0xFF)
            index += 1 + len(match.group())
        elif kind in "uU":
            width = 4 if kind == "u" else 8
            out += chr(int(body[index + 2 : index + 2 + width], 16)).encode("utf-8")
            index += 2 + width
        else:
            raise ValueError(f"unknown escape \\{kind}")
    return bytes(out)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot tokenise at {text[position:position + 30]!r}")
        position = match.end()
        kind = match.lastgroup
        if kind is None:
            continue
        value = match.group(kind)
        if kind == "string":
            # Adjacent string literals concatenate, as in C.
            if tokens and tokens[-1][0] == "string":
                tokens[-1] = ("string", tokens[-1][1] + _unescape(value[1:-1]))
                continue
            tokens.append(("string", _unescape(value[1:-1])))
        else:
            tokens.append((kind, value))
    return tokens


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def message(self, closing: str | None) -> Message:
        fields: Message = {}
        while True:
            token = self.peek()
            if token is None:
                if closing is not None:
                    raise ValueError("unexpected end of input")
                return fields
            if token == ("punct", closing):
                self.take()
                return fields
            if token[0] == "punct" and token[1] in ",;":
                self.take()
                continue
            kind, name = self.take()
            if kind not in ("word", "bracketed"):
                raise ValueError(f"expected a field name, got {name!r}")
            if self.peek() == ("punct", ":"):
                self.take()
            fields.setdefault(name, []).extend(self.values())

    def values(self) -> list[Any]:
        kind, value = self.take()
        if kind == "punct" and value in "{<":
            return [self.message("}" if value == "{" else ">")]
        if kind == "punct" and value == "[":
            items: list[Any] = []
            while self.peek() != ("punct", "]"):
                if self.peek() == ("punct", ","):
                    self.take()
                    continue
                items.extend(self.values())
            self.take()
            return items
        if kind in ("string", "word"):
            return [value]
        raise ValueError(f"unexpected token {value!r}")


def parse_textproto(text: str) -> Message:
    """Parse a whole text-format file into nested field dicts."""
    return _Reader(text).message(None)
