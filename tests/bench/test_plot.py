"""bench.plot and bench._png at toy size: the chart is a valid PNG of the right size, the sweep measures every point."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from bench import plot
from bench._png import Canvas, format_number, linear_ticks, log_ticks

POINTS = [
    {"mode": "submit", "events_in_flight": level, "events_per_s": rate, "p99_ms": p99}
    for level, rate, p99 in [(1, 313.0, 8.1), (4, 768.0, 23.5), (16, 1611.0, 17.8), (64, 2269.0, 57.7)]
] + [{"mode": "batch", "events_in_flight": 64, "events_per_s": 1810.0, "p99_ms": 62.5}]


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines (each prefixed by its filter byte) of an 8-bit RGB PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        offset += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, color_type, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type) == (8, 2)
    return width, height, zlib.decompress(chunks[1][1])


def test_chart_is_a_decodable_png_with_something_drawn() -> None:
    canvas = plot.render_chart(POINTS, "fixed data", batch_size=64)
    width, height, raw = decode_png(canvas.png_bytes())
    assert (width, height) == (canvas.width_px, canvas.height_px)
    stride = 1 + width * 3
    assert len(raw) == height * stride
    assert all(raw[row * stride] == 0 for row in range(height))  # filter "none" on every row
    pixels = b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(height))
    assert pixels == bytes(canvas.pixels)
    assert pixels.count(b"\xff\xff\xff") < width * height * 0.97  # axes, text and lines were drawn
    assert bytes((31, 119, 180)) in pixels and bytes((230, 110, 0)) in pixels  # both series


def test_text_and_ticks() -> None:
    canvas = Canvas(40, 20)
    canvas.text(1, 1, "p9", scale=1)
    assert bytes(canvas.pixels) != bytes(Canvas(40, 20).pixels)
    assert linear_ticks(3224.0) == [0, 1000, 2000, 3000, 4000]
    assert log_ticks(5, 1000) == [5, 10, 20, 50, 100, 200, 500, 1000]
    assert [format_number(value) for value in (0.5, 5, 1024, 12345.6)] == ["0.5", "5", "1,024", "12,346"]


def test_tiny_sweep_writes_json_and_png(tmp_path: Path) -> None:
    # A plain (sync) test: main() calls trio.run itself.
    argv = ["--participants", "20", "--events", "24", "--levels", "1,4", "--batch-tasks", "2", "--batch-size", "4"]
    result = plot.main([*argv, "--no-sync", "--no-tune-gc", "--output-dir", str(tmp_path)])
    assert [(point["mode"], point["events_in_flight"]) for point in result["points"]] == [
        ("submit", 1),
        ("submit", 4),
        ("batch", 8),
    ]
    for point in result["points"]:
        assert point["events_per_s"] > 0 and point["p99_ms"] >= point["p50_ms"] > 0
        assert point["events_failed"] == 0
    assert json.loads((tmp_path / "throughput.json").read_text())["points"] == result["points"]
    width, height, _ = decode_png((tmp_path / "throughput.png").read_bytes())
    assert (width, height) == (1060, 840)
