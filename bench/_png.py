"""A tiny pure-Python chart renderer that writes PNG files (zlib + struct, no plotting dependency).

Just enough to draw benchmark charts that read well in a Markdown page:

- :class:`Canvas`: an RGB raster with rectangles, thick lines, point markers and text in a built-in 5×7 bitmap
  font (:data:`FONT`, scaled by whole pixels, horizontal or rotated to read bottom to top);
  :meth:`Canvas.png_bytes` encodes it as an 8-bit RGB PNG (one IDAT chunk, filter 0 on every row);
- :class:`Axis` (linear or log10), :func:`linear_ticks`, :func:`log_ticks`, :func:`format_number`;
- :class:`Panel`: a plot area with a frame, grid, ticks and tick labels, axis labels and a title, and
  :class:`Series` drawn as lines through their points with a marker on each.

No anti-aliasing: lines and glyphs are whole pixels, which keeps the code short and the text crisp.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (100, 100, 100)
GRID: Color = (228, 228, 228)
BLUE: Color = (31, 119, 180)
ORANGE: Color = (230, 110, 0)

GLYPH_WIDTH_PX = 5
GLYPH_HEIGHT_PX = 7
GLYPH_ADVANCE_PX = 6  # one blank column between characters

# Each glyph is 7 rows, top to bottom, two hex digits a row; bit 0x10 is the leftmost of the 5 columns.
# Lowercase letters use rows 2-6; g, p, q and y (:data:`DESCENDERS`) go 2 rows below. Unknown characters draw as "?".
# fmt: off
FONT: dict[str, str] = {
    " ": "00000000000000", "0": "0e11131519110e", "1": "040c040404040e", "2": "0e11010204081f",
    "3": "1f02040201110e", "4": "02060a121f0202", "5": "1f101e0101110e", "6": "0608101e11110e",
    "7": "1f010204080808", "8": "0e11110e11110e", "9": "0e11110f01020c", "A": "0e11111f111111",
    "B": "1e11111e11111e", "C": "0e11101010110e", "D": "1c12111111121c", "E": "1f10101e10101f",
    "F": "1f10101e101010", "G": "0e11101711110f", "H": "1111111f111111", "I": "0e04040404040e",
    "J": "0702020202120c", "K": "11121418141211", "L": "1010101010101f", "M": "111b1515111111",
    "N": "11111915131111", "O": "0e11111111110e", "P": "1e11111e101010", "Q": "0e11111115120d",
    "R": "1e11111e141211", "S": "0f10100e01011e", "T": "1f040404040404", "U": "1111111111110e",
    "V": "11111111110a04", "W": "1111111515150a", "X": "11110a040a1111", "Y": "11110a04040404",
    "Z": "1f01020408101f", "a": "00000e010f110f", "b": "1010161911111e", "c": "00000e1010110e",
    "d": "01010d1311110f", "e": "00000e111f100e", "f": "0609081c080808", "g": "0f1111110f010e",
    "h": "10101619111111", "i": "04000c0404040e", "j": "0200060202120c", "k": "10101214181412",
    "l": "0c04040404040e", "m": "00001a15151111", "n": "00001619111111", "o": "00000e1111110e",
    "p": "1e1111111e1010", "q": "0f1111110f0101", "r": "00001619101010", "s": "00000f100e011e",
    "t": "08081c08080906", "u": "0000111111130d", "v": "00001111110a04", "w": "0000111115150a",
    "x": "0000110a040a11", "y": "111111110f010e", "z": "00001f0204081f", ".": "00000000000c0c",
    ",": "000000000c0408", "-": "0000001f000000", "/": "00010204081000", "(": "02040808080402",
    ")": "08040202020408", ":": "000c0c000c0c00", "%": "18190204081303", "+": "0004041f040400",
    "=": "00001f001f0000", "×": "00110a040a1100", "_": "0000000000001f", "?": "0e110102040004",
    "<": "02040810080402", ">": "08040201020408", ";": "000c0c000c0408", "→": "0004021f020400",
}
DESCENDERS = frozenset("gpqy")  # drawn 2 rows lower: their 7 rows start at the x-height
# fmt: on


def glyph_rows(char: str) -> list[int]:
    """The 7 row bitmaps of ``char`` (5 bits each, bit 0x10 leftmost)."""
    code = FONT.get(char, FONT["?"])
    return [int(code[index : index + 2], 16) for index in range(0, 14, 2)]


def text_width_px(text: str, scale: int) -> int:
    """Width of ``text`` drawn at ``scale`` (no trailing blank column)."""
    return max(0, len(text) * GLYPH_ADVANCE_PX - 1) * scale


def encode_png(width_px: int, height_px: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (rows top to bottom, 3 bytes a pixel, no padding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width_px * 3
    raw = b"".join(b"\x00" + rgb[row * stride : (row + 1) * stride] for row in range(height_px))
    header = struct.pack(">IIBBBBB", width_px, height_px, 8, 2, 0, 0, 0)  # depth 8, RGB, deflate, filter, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


class Canvas:
    """An RGB raster; coordinates are pixels from the top-left corner, anything outside is clipped."""

    def __init__(self, width_px: int, height_px: int, background: Color = WHITE) -> None:
        self.width_px = width_px
        self.height_px = height_px
        self.pixels = bytearray(bytes(background) * (width_px * height_px))

    def fill_rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both included."""
        left, right = max(0, min(x0, x1)), min(self.width_px - 1, max(x0, x1))
        top, bottom = max(0, min(y0, y1)), min(self.height_px - 1, max(y0, y1))
        if left > right or top > bottom:
            return
        span = bytes(color) * (right - left + 1)
        for y in range(top, bottom + 1):
            start = (y * self.width_px + left) * 3
            self.pixels[start : start + len(span)] = span

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width_px: int = 1) -> None:
        """A straight line (Bresenham), ``width_px`` thick."""
        low, high = -((width_px - 1) // 2), width_px // 2
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        step_x, step_y = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        error = dx + dy
        while True:
            self.fill_rect(x0 + low, y0 + low, x0 + high, y0 + high, color)
            if x0 == x1 and y0 == y1:
                return
            doubled = 2 * error
            if doubled >= dy:
                error += dy
                x0 += step_x
            if doubled <= dx:
                error += dx
                y0 += step_y

    def marker(self, x: int, y: int, color: Color, shape: str = "circle", radius_px: int = 5) -> None:
        """A filled ``circle`` or ``square`` centred on (x, y), with a white ring so it stands out from lines."""
        for ring, fill in ((radius_px + 1, WHITE), (radius_px, color)):
            if shape == "square":
                self.fill_rect(x - ring, y - ring, x + ring, y + ring, fill)
                continue
            for dy in range(-ring, ring + 1):
                half = int(math.sqrt(ring * ring - dy * dy) + 0.5)
                self.fill_rect(x - half, y + dy, x + half, y + dy, fill)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        color: Color = BLACK,
        *,
        scale: int = 2,
        align: str = "left",
        vertical: bool = False,
    ) -> None:
        """Draw ``text`` with its top-left at (x, y) (``align`` "center"/"right" moves the anchor along the text).

        ``vertical`` rotates it a quarter turn to read bottom to top; (x, y) is then the left end of its baseline
        side: the text extends upwards from y and rightwards from x by the glyph height.
        """
        offset = {"left": 0, "center": text_width_px(text, scale) // 2, "right": text_width_px(text, scale)}[align]
        for index, char in enumerate(text):
            drop = 2 if char in DESCENDERS else 0
            for row, bits in enumerate(glyph_rows(char), start=drop):
                for column in range(GLYPH_WIDTH_PX):
                    if not bits & (0x10 >> column):
                        continue
                    along = (index * GLYPH_ADVANCE_PX + column) * scale - offset
                    if vertical:
                        px, py = x + row * scale, y - along - scale + 1
                    else:
                        px, py = x + along, y + row * scale
                    self.fill_rect(px, py, px + scale - 1, py + scale - 1, color)

    def png_bytes(self) -> bytes:
        """The canvas as a PNG file's bytes."""
        return encode_png(self.width_px, self.height_px, bytes(self.pixels))

    def save(self, path: Path) -> None:
        """Write the canvas as a PNG file (parent directories are created)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.png_bytes())


@dataclass(frozen=True)
class Axis:
    """A value range mapped onto [0, 1], linearly or by log10 (then both ends must be > 0)."""

    low: float
    high: float
    log: bool = False

    def fraction(self, value: float) -> float:
        """Where ``value`` sits between ``low`` (0.0) and ``high`` (1.0)."""
        if self.log:
            return (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        return (value - self.low) / (self.high - self.low)


def linear_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 up to at least ``high``, about ``count`` intervals (steps of 1, 2, 2.5 or 5 × 10ⁿ)."""
    raw_step = max(high, 1e-12) / count
    power = 10 ** math.floor(math.log10(raw_step))
    step = next(power * factor for factor in (1, 2, 2.5, 5, 10) if power * factor >= raw_step)
    return [step * index for index in range(math.ceil(high / step - 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis between ``low`` and ``high``: 1, 2, 5 × 10ⁿ for ranges up to 3 decades, else 10ⁿ."""
    factors = (1, 2, 5) if math.log10(high / low) <= 3 else (1,)
    ticks = []
    for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [factor * 10.0**power for factor in factors if low <= factor * 10.0**power <= high]
    return ticks


def format_number(value: float) -> str:
    """A short tick label: thousands separated by commas, at most two significant decimals below 10."""
    if value >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}"


@dataclass(frozen=True)
class Series:
    """One line of a chart: its legend label, (x, y) points, colour and marker shape."""

    label: str
    points: Sequence[tuple[float, float]]
    color: Color
    marker: str = "circle"


@dataclass(frozen=True)
class Panel:
    """A plot area: ``box`` is (left, top, right, bottom) in pixels of the frame, ``x``/``y`` its axes."""

    box: tuple[int, int, int, int]
    x: Axis
    y: Axis

    def to_pixels(self, x: float, y: float) -> tuple[int, int]:
        """Canvas pixel of a data point."""
        left, top, right, bottom = self.box
        return round(left + self.x.fraction(x) * (right - left)), round(bottom - self.y.fraction(y) * (bottom - top))

    def draw_axes(
        self,
        canvas: Canvas,
        x_ticks: Sequence[float],
        y_ticks: Sequence[float],
        labels: tuple[str, str, str],
        tick_format: Callable[[float], str] = format_number,
    ) -> None:
        """Grid, frame, ticks with labels, and ``labels`` = (title, x label, y label); an empty label is skipped."""
        left, top, right, bottom = self.box
        for value in x_ticks:
            px, _ = self.to_pixels(value, self.y.low if not self.y.log else self.y.high)
            canvas.line(px, top, px, bottom, GRID)
            canvas.line(px, bottom, px, bottom + 6, BLACK)
            canvas.text(px, bottom + 11, tick_format(value), align="center")
        widest_px = 0
        for value in y_ticks:
            _, py = self.to_pixels(self.x.high, value)
            canvas.line(left, py, right, py, GRID)
            canvas.line(left - 6, py, left, py, BLACK)
            label = tick_format(value)
            widest_px = max(widest_px, text_width_px(label, 2))
            canvas.text(left - 11, py - GLYPH_HEIGHT_PX + 1, label, align="right")
        for x0, y0, x1, y1 in ((left, top, right, top), (left, bottom, right, bottom), (left, top, left, bottom)):
            canvas.line(x0, y0, x1, y1, BLACK)
        canvas.line(right, top, right, bottom, BLACK)
        title, x_label, y_label = labels
        if title:
            canvas.text(left, top - 2 * GLYPH_HEIGHT_PX - 10, title, scale=2)
        if x_label:
            canvas.text((left + right) // 2, bottom + 38, x_label, GREY, align="center")
        if y_label:
            canvas.text(left - 11 - widest_px - 30, (top + bottom) // 2, y_label, GREY, align="center", vertical=True)

    def draw_series(self, canvas: Canvas, series: Series) -> None:
        """A 2-pixel line through the points, in order, and a marker on each."""
        pixels = [self.to_pixels(x, y) for x, y in series.points]
        for (x0, y0), (x1, y1) in itertools.pairwise(pixels):
            canvas.line(x0, y0, x1, y1, series.color, width_px=2)
        for x, y in pixels:
            canvas.marker(x, y, series.color, series.marker)


def draw_legend(canvas: Canvas, x: int, y: int, series: Sequence[Series], gap_px: int = 36) -> None:
    """A one-line legend starting at (x, y): marker, line sample and label for each series."""
    for item in series:
        canvas.line(x, y + 6, x + 28, y + 6, item.color, width_px=2)
        canvas.marker(x + 14, y + 6, item.color, item.marker)
        canvas.text(x + 36, y, item.label)
        x += 36 + text_width_px(item.label, 2) + gap_px
