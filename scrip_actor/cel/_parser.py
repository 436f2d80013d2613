"""Parsing CEL text into a lark tree, with the limits applied before any compilation.

We reuse cel-python's grammar file (``celpy/cel.lark``) but build our *own* `lark.Lark` LALR
parser from it instead of `celpy.celparser.CELParser`: that class keeps one process-wide parser
singleton whose tree class depends on which cel-python runner created it first, so sharing it
with a cel-python evaluator (the differential tests, the benchmark) can break either side.
LALR parsing in lark is iterative, so deep nesting cannot overflow the Python stack while
parsing; the compiler's own recursion is bounded by `NESTING_DEPTH_MAX` / `AST_DEPTH_MAX`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

import celpy
import lark
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ._errors import CelCompileError

#: Longest accepted expression, in characters.
EXPRESSION_LENGTH_MAX: Final = 4096
#: Deepest nesting of brackets: ``( )``, ``[ ]``, ``{ }`` and call argument lists.
NESTING_DEPTH_MAX: Final = 32
#: Deepest operator tree (``a + b + c`` is depth 3); bounds the compiler's recursion.
AST_DEPTH_MAX: Final = 160


@functools.cache
def _parser() -> lark.Lark:
    grammar = (Path(celpy.__file__).parent / "cel.lark").read_text()
    return lark.Lark(
        grammar,
        parser="lalr",
        start="expr",
        g_regex_flags=re.M,
        lexer_callbacks={"IDENT": _keyword_literals},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
    )


def _keyword_literals(token: lark.Token) -> lark.Token:
    """``true`` / ``false`` lex as IDENT in this grammar; turn them into BOOL_LIT."""
    if token.value in ("true", "false"):
        return lark.Token("BOOL_LIT", token.value)
    return token


_RESERVED: Final = frozenset(
    "as break const continue else for function if import let loop package namespace return var " "void while in".split()
)


def parse(text: str) -> lark.Tree[lark.Token]:
    """Parse `text` into a lark tree, or raise `CelCompileError` with a 1-based position."""
    if not isinstance(text, str):
        raise CelCompileError("expression must be a string", 1, 1)
    if len(text) > EXPRESSION_LENGTH_MAX:
        raise CelCompileError(f"expression longer than {EXPRESSION_LENGTH_MAX} characters", 1, EXPRESSION_LENGTH_MAX)
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as error:
        token = error.token
        what = "end of input" if token.type == "$END" else repr(str(token))
        raise CelCompileError(f"syntax error: unexpected {what}", *_position(error)) from None
    except UnexpectedCharacters as error:
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else "?"
        raise CelCompileError(f"syntax error: unexpected character {char!r}", *_position(error)) from None
    except UnexpectedInput as error:
        raise CelCompileError("syntax error", *_position(error)) from None
    except (LarkError, RecursionError) as error:
        raise CelCompileError(f"syntax error: {type(error).__name__}", 1, 1) from None
    return tree


def _position(error: UnexpectedInput) -> tuple[int, int]:
    line = error.line if isinstance(error.line, int) and error.line > 0 else 1
    column = error.column if isinstance(error.column, int) and error.column > 0 else 1
    return line, column


def position_of(node: lark.Tree[lark.Token] | lark.Token) -> tuple[int, int]:
    """1-based (line, column) of a tree node or token, (1, 1) when lark did not record one."""
    if isinstance(node, lark.Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    if getattr(meta, "empty", True):
        return 1, 1
    return meta.line, meta.column


def check_identifier(token: lark.Token) -> None:
    """Reserved words may not be used as identifiers."""
    if str(token) in _RESERVED:
        raise CelCompileError(f"reserved identifier: {token}", *position_of(token))


_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "`": "`",
    "?": "?",
}


def decode_string_literal(token: lark.Token) -> str | bytes:
    """Decode a STRING_LIT / MLSTRING_LIT / BYTES_LIT token into its value.

    Handles raw prefixes, triple quotes and CEL's escapes (``\\n``, ``\\x41``, ``\\101``,
    ``\\u00e9``, ``\\U0001F600``). In bytes literals ``\\x`` and octal escapes are single bytes.
    """
    raw = str(token)
    is_bytes = raw[0] in "bB"
    if is_bytes:
        raw = raw[1:]
    is_raw = raw[0] in "rR"
    if is_raw:
        raw = raw[1:]
    quote = raw[:3] if raw[:3] in ('"""', "'''") else raw[0]
    body = raw[len(quote) : -len(quote)]
    if is_raw:
        return body.encode() if is_bytes else body
    out_bytes = bytearray()
    out_chars: list[str] = []
    index = 0
    line, column = position_of(token)

    def fail(reason: str) -> CelCompileError:
        return CelCompileError(f"invalid escape in literal: {reason}", line, column)

    def emit_char(char: str) -> None:
        if is_bytes:
            out_bytes.extend(char.encode("utf-8"))
        else:
            out_chars.append(char)

    while index < len(body):
        char = body[index]
        if char != "\\":
            emit_char(char)
            index += 1
            continue
        if index + 1 >= len(body):
            raise fail("trailing backslash")
        kind = body[index + 1]
        if kind in _SIMPLE_ESCAPES:
            emit_char(_SIMPLE_ESCAPES[kind])
            index += 2
        elif kind in "xX":
            digits = body[index + 2 : index + 4]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                raise fail("\\x needs two hex digits")
            if is_bytes:
                out_bytes.append(int(digits, 16))
            else:
                out_chars.append(chr(int(digits, 16)))
            index += 4
        elif kind in "uU":
            width = 4 if kind == "u" else 8
            digits = body[index + 2 : index + 2 + width]
            if is_bytes or not re.fullmatch(rf"[0-9a-fA-F]{{{width}}}", digits):
                raise fail(f"\\{kind} needs {width} hex digits")
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise fail("code point out of range")
            out_chars.append(chr(code))
            index += 2 + width
        elif kind in "0123":
            digits = body[index + 1 : index + 4]
            if not re.fullmatch(r"[0-3][0-7]{2}", digits):
                raise fail("octal escape needs three digits")
            if is_bytes:
                out_bytes.append(int(digits, 8))
            else:
                out_chars.append(chr(int(digits, 8)))
            index += 4
        else:
            raise fail(f"\\{kind}")
    if is_bytes:
        return bytes(out_bytes)
    text = "".join(out_chars)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise fail("not valid UTF-8") from None
    return text


def integer_literal_value(token: lark.Token, text: str) -> int:
    """The value of an INT_LIT (or a UINT_LIT without its ``u``): decimal, or hex after ``0x``.

    CEL's grammar is ``-? DIGIT+ | -? 0x HEXDIGIT+`` and cel-go parses the digits in base 10, so
    ``010`` is ten: leading zeros do not mean octal (Python's ``int(text, 0)`` refuses them).
    Range checks are the caller's (int64 and uint64 differ).
    """
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    base = 10
    if digits[:2] in ("0x", "0X"):
        base = 16
        digits = digits[2:]
    if not digits or not digits.isascii() or not digits.isalnum():
        raise CelCompileError(f"invalid integer literal: {text}", *position_of(token))
    try:
        magnitude = int(digits, base)
    except ValueError:
        raise CelCompileError(f"invalid integer literal: {text}", *position_of(token)) from None
    return -magnitude if negative else magnitude
