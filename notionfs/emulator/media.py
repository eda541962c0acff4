"""Deterministic media generators (PNG, JPEG, PDF, WAV, MJPEG AVI, CSV, text, pattern files)."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import random
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MiB",
    "PATTERN_CHUNK_BYTES",
    "render_scene",
    "render_chart",
    "render_diagram",
    "encode_png",
    "encode_jpeg",
    "png",
    "jpeg",
    "pdf",
    "wav",
    "mjpeg_avi",
    "csv_text",
    "prose",
    "pattern_bytes",
    "pattern_range",
    "write_pattern_file",
    "cached_file",
]

logger = logging.getLogger(__name__)

MiB = 1 << 20
# Every pattern chunk comes from its own seeded generator, so each MiB of a pattern file
# differs from every other and a read at a wrong offset cannot match by accident.
PATTERN_CHUNK_BYTES = MiB

Color = tuple[int, int, int]


# ---- procedural pictures ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Theme:
    sky_top: Color
    sky_horizon: Color
    sun: Color
    ridges: tuple[Color, Color, Color]  # far, middle, near
    water: Color
    stars: bool


_THEMES = (
    _Theme((38, 70, 140), (250, 176, 120), (255, 236, 180),
           ((130, 100, 140), (86, 64, 104), (42, 34, 62)), (40, 60, 110), False),  # dusk
    _Theme((80, 150, 225), (205, 232, 250), (255, 252, 225),
           ((130, 165, 195), (72, 122, 112), (38, 82, 58)), (50, 110, 150), False),  # noon
    _Theme((8, 12, 38), (44, 56, 110), (236, 236, 212),
           ((46, 52, 92), (30, 34, 64), (14, 16, 34)), (16, 24, 54), True),  # night
    _Theme((250, 140, 118), (255, 216, 164), (255, 250, 222),
           ((196, 126, 136), (144, 84, 104), (82, 50, 72)), (124, 92, 124), False),  # dawn
    _Theme((140, 196, 188), (238, 240, 218), (255, 255, 240),
           ((134, 172, 152), (92, 132, 112), (50, 90, 70)), (90, 140, 140), False),  # mist
)


def _mix(a: Color, b: Color, t: float) -> Color:
    return (
        int(a[0] + (b[0] - a[0]) * t + 0.5),
        int(a[1] + (b[1] - a[1]) * t + 0.5),
        int(a[2] + (b[2] - a[2]) * t + 0.5),
    )


def _jitter(rng: random.Random, color: Color, amount: int = 14) -> Color:
    r, g, b = (min(255, max(0, c + rng.randint(-amount, amount))) for c in color)
    return (r, g, b)


def _ridge(rng: random.Random, width: int, base_y: float, amplitude: float) -> list[int]:
    """A mountain silhouette: the top y of the ridge in every column (sum of sines)."""
    waves = [
        (rng.uniform(0.6, 1.6) * (k + 1), rng.uniform(0.0, math.tau), 1.0 / (k + 1))
        for k in range(4)
    ]
    norm = sum(w for _, _, w in waves)
    scale = math.tau / max(1, width)
    return [
        int(base_y - amplitude * sum(w * math.sin(f * x * scale + p) for f, p, w in waves) / norm)
        for x in range(width)
    ]


def _disc_span(cx: float, cy: float, radius: float, y: int, width: int) -> tuple[int, int]:
    """Columns [x0, x1) of row ``y`` covered by a disc (empty if x0 >= x1)."""
    dy = y + 0.5 - cy
    if abs(dy) >= radius:
        return 0, 0
    half = math.sqrt(radius * radius - dy * dy)
    return max(0, int(cx - half + 0.5)), min(width, int(cx + half + 0.5))


# Palette slots of a scene row.
_SKY, _HALO, _SUN, _FAR, _MID, _NEAR, _STAR = range(7)


def render_scene(width: int, height: int, seed: object) -> bytearray:
    """Draw a landscape (sky gradient, sun, three ridges, a lake) as packed 8-bit RGB.

    Rows are built from a small per-row palette, which keeps pure Python fast enough for
    photo-sized pictures and keeps the output smooth enough to compress well.
    """
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    rng = random.Random(f"scene/{seed}")
    theme = _THEMES[rng.randrange(len(_THEMES))]
    sky_top, sky_horizon = _jitter(rng, theme.sky_top), _jitter(rng, theme.sky_horizon)
    sun, water = _jitter(rng, theme.sun, 6), _jitter(rng, theme.water)
    ridge_colors = [_jitter(rng, c) for c in theme.ridges]
    horizon = max(1, int(height * rng.uniform(0.62, 0.74)))
    sun_x, sun_y = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.4) * horizon
    sun_r = max(1.5, min(width, height) * rng.uniform(0.05, 0.09))
    far = _ridge(rng, width, horizon - 0.27 * height, 0.12 * height)
    mid = _ridge(rng, width, horizon - 0.16 * height, 0.09 * height)
    near = _ridge(rng, width, horizon - 0.07 * height, 0.05 * height)
    stars: dict[int, list[int]] = {}
    if theme.stars:
        for _ in range(width * height // 400):
            stars.setdefault(rng.randrange(horizon), []).append(rng.randrange(width))
    shimmer = rng.randrange(7)

    def index_row(y: int) -> list[int]:
        idx = [_SKY] * width
        for x in stars.get(y, ()):
            idx[x] = _STAR
        for radius, slot in ((sun_r * 1.7, _HALO), (sun_r, _SUN)):
            x0, x1 = _disc_span(sun_x, sun_y, radius, y, width)
            if x0 < x1:
                idx[x0:x1] = [slot] * (x1 - x0)
        return [
            _NEAR if y >= c else _MID if y >= b else _FAR if y >= a else s
            for s, a, b, c in zip(idx, far, mid, near, strict=True)
        ]

    def colors(y: int) -> list[Color]:
        t = y / horizon
        sky = _mix(sky_top, sky_horizon, t**0.9)
        # Farther ridges fade into the sky (aerial perspective); lower parts darken a little.
        ridges = [
            _mix(_mix(c, sky, 0.3 * (2 - k) / 2), (0, 0, 0), 0.18 * t)
            for k, c in enumerate(ridge_colors)
        ]
        return [sky, _mix(sky, sun, 0.35), sun, *ridges, (250, 250, 236)]

    index_rows = [index_row(y) for y in range(min(horizon, height))]
    out = bytearray()
    for y in range(height):
        if y < horizon:
            idx, row_colors = index_rows[y], colors(y)
        else:
            # The lake mirrors the scene above the horizon, tinted and with light streaks.
            src = max(0, 2 * horizon - 1 - y)
            idx = index_rows[min(src, len(index_rows) - 1)]
            depth = (y - horizon) / max(1, height - horizon)
            row_colors = [_mix(c, water, 0.45 + 0.4 * depth) for c in colors(src)]
            if (y + shimmer) % 7 == 0:
                row_colors = [_mix(c, (255, 255, 255), 0.12) for c in row_colors]
        palette = [bytes(c) for c in row_colors]
        out += b"".join(map(palette.__getitem__, idx))
    return out


def _draw_disc(rgb: bytearray, width: int, height: int, cx: float, cy: float,
               radius: float, color: Color) -> None:
    pixel = bytes(color)
    for y in range(max(0, int(cy - radius)), min(height, int(cy + radius) + 1)):
        x0, x1 = _disc_span(cx, cy, radius, y, width)
        if x0 < x1:
            start = (y * width + x0) * 3
            rgb[start:start + (x1 - x0) * 3] = pixel * (x1 - x0)


def _fill_rect(rgb: bytearray, width: int, box: tuple[int, int, int, int], color: Color) -> None:
    x0, y0, x1, y1 = box
    x0, x1 = max(0, x0), min(width, x1)
    if x0 >= x1:
        return
    row = bytes(color) * (x1 - x0)
    for y in range(max(0, y0), min(len(rgb) // (3 * width), y1)):
        rgb[(y * width + x0) * 3:(y * width + x1) * 3] = row


def _paper(width: int, height: int) -> bytearray:
    """A soft vertical gradient background for charts and diagrams."""
    return bytearray(b"".join(bytes(_mix((248, 249, 252), (226, 232, 241), y / max(1, height)))
                              * width for y in range(height)))


_CHART_COLORS = ((66, 133, 196), (236, 124, 70), (94, 170, 110), (178, 102, 180),
                 (230, 186, 64), (80, 176, 190))


def render_chart(width: int, height: int, values: Sequence[float], seed: object) -> bytearray:
    """A bar chart (bars, grid lines and a baseline; no text) as packed 8-bit RGB."""
    rng = random.Random(f"chart/{seed}")
    rgb = _paper(width, height)
    left, right, top, bottom = width // 10, width - width // 20, height // 10, height - height // 8
    for k in range(1, 5):
        y = bottom - (bottom - top) * k // 4
        _fill_rect(rgb, width, (left, y, right, y + 1), (204, 210, 222))
    peak = max(values, default=1.0) or 1.0
    slot = (right - left) / max(1, len(values))
    offset = rng.randrange(len(_CHART_COLORS))
    for i, value in enumerate(values):
        x0 = int(left + slot * i + slot * 0.15)
        x1 = int(left + slot * (i + 1) - slot * 0.15)
        y0 = bottom - int((bottom - top) * max(0.0, value) / peak)
        color = _CHART_COLORS[(offset + i) % len(_CHART_COLORS)]
        _fill_rect(rgb, width, (x0, y0, x1, bottom), color)
        _fill_rect(rgb, width, (x0, y0, x1, y0 + 2), _mix(color, (255, 255, 255), 0.35))
    _fill_rect(rgb, width, (left, bottom, right, bottom + 2), (70, 76, 90))
    return rgb


def render_diagram(width: int, height: int, n_nodes: int, seed: object) -> bytearray:
    """Nodes linked to a hub (a network sketch) as packed 8-bit RGB."""
    rng = random.Random(f"diagram/{seed}")
    rgb = _paper(width, height)
    hub = (width / 2, height / 2)
    radius = min(width, height) * 0.07
    nodes = []
    for k in range(n_nodes):
        angle = math.tau * k / max(1, n_nodes) + rng.uniform(-0.2, 0.2)
        reach = min(width, height) * rng.uniform(0.3, 0.4)
        nodes.append((hub[0] + reach * math.cos(angle) * width / height,
                      hub[1] + reach * math.sin(angle)))
    for x, y in nodes:
        steps = int(math.hypot(x - hub[0], y - hub[1]))
        for t in range(steps):
            px = hub[0] + (x - hub[0]) * t / steps
            py = hub[1] + (y - hub[1]) * t / steps
            _fill_rect(rgb, width, (int(px) - 1, int(py) - 1, int(px) + 2, int(py) + 2),
                       (150, 160, 178))
    for k, (x, y) in enumerate(nodes):
        color = _CHART_COLORS[k % len(_CHART_COLORS)]
        _draw_disc(rgb, width, height, x, y, radius * 0.75 + 2, (255, 255, 255))
        _draw_disc(rgb, width, height, x, y, radius * 0.75, color)
    _draw_disc(rgb, width, height, hub[0], hub[1], radius + 3, (255, 255, 255))
    _draw_disc(rgb, width, height, hub[0], hub[1], radius, (52, 60, 78))
    return rgb


# ---- PNG -------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(rgb: bytes | bytearray, width: int, height: int) -> bytes:
    """Packed 8-bit RGB to a truecolor PNG (filter 0, zlib level 9)."""
    stride = width * 3
    if len(rgb) != stride * height:
        raise ValueError("rgb must hold width * height * 3 bytes")
    raw = b"".join(b"\x00" + bytes(rgb[y * stride:(y + 1) * stride]) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


def png(width: int, height: int, seed: object) -> bytes:
    """A procedurally drawn landscape as a PNG."""
    return encode_png(render_scene(width, height, seed), width, height)


# ---- baseline JPEG ---------------------------------------------------------------------------

# ITU-T T.81 Annex K: example quantization tables (natural order) ...
_LUMA_QUANT = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
_CHROMA_QUANT = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip

# ... and typical Huffman tables (K.3): code counts per length 1..16, then symbols.
_DC_LUMA_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_CHROMA_BITS = (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
_AC_LUMA_BITS = (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D)
_AC_CHROMA_BITS = (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77)
# The AC symbol lists are an irregular head followed by every remaining symbol in ascending
# order; the symbols are EOB (0x00), ZRL (0xF0) and run << 4 | size for size 1..10.
_AC_SYMBOLS = frozenset([0x00, 0xF0] + [r << 4 | s for r in range(16) for s in range(1, 11)])
_AC_LUMA_HEAD = (
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51,
    0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1,
    0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16,
)  # fmt: skip
_AC_CHROMA_HEAD = (
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
    0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09,
    0x23, 0x33, 0x52, 0xF0, 0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1,
)  # fmt: skip
_AC_LUMA_VALUES = _AC_LUMA_HEAD + tuple(sorted(_AC_SYMBOLS - set(_AC_LUMA_HEAD)))
_AC_CHROMA_VALUES = _AC_CHROMA_HEAD + tuple(sorted(_AC_SYMBOLS - set(_AC_CHROMA_HEAD)))


def _zigzag() -> tuple[int, ...]:
    order: list[int] = []
    for s in range(15):
        rows = range(max(0, s - 7), min(s, 7) + 1)
        for r in reversed(rows) if s % 2 == 0 else rows:
            order.append(r * 8 + s - r)
    return tuple(order)


_ZIGZAG = _zigzag()
# Arai-Agui-Nakajima scale factors: the float AAN DCT leaves coefficient (v, u) multiplied
# by 8 * s[v] * s[u]; quantization divides that back out (as libjpeg's jfdctflt does).
_AAN_SCALE = tuple(1.0 if k == 0 else math.cos(k * math.pi / 16) * math.sqrt(2) for k in range(8))


def _huffman_codes(bits: Sequence[int], values: Sequence[int]) -> list[tuple[int, int]]:
    """Canonical codes (T.81 Annex C): symbol -> (code, length)."""
    codes = [(0, 0)] * 256
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[values[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def _scaled_quant(base: Sequence[int], quality: int) -> list[int]:
    """IJG quality scaling of a base table (natural order)."""
    quality = min(100, max(1, quality))
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (q * scale + 50) // 100)) for q in base]


def _fdct8(
    d0: float, d1: float, d2: float, d3: float, d4: float, d5: float, d6: float, d7: float
) -> tuple[float, ...]:
    """One 8-point AAN forward DCT (unscaled outputs)."""
    t0, t7 = d0 + d7, d0 - d7
    t1, t6 = d1 + d6, d1 - d6
    t2, t5 = d2 + d5, d2 - d5
    t3, t4 = d3 + d4, d3 - d4
    # Even part.
    t10, t13 = t0 + t3, t0 - t3
    t11, t12 = t1 + t2, t1 - t2
    z1 = (t12 + t13) * 0.707106781
    # Odd part.
    o10, o11, o12 = t4 + t5, t5 + t6, t6 + t7
    z5 = (o10 - o12) * 0.382683433
    z2 = 0.541196100 * o10 + z5
    z4 = 1.306562965 * o12 + z5
    z3 = o11 * 0.707106781
    z11, z13 = t7 + z3, t7 - z3
    return (t10 + t11, z11 + z4, t13 + z1, z13 - z2, t10 - t11, z13 + z2, t13 - z1, z11 - z4)


class _Component:
    """Quantization and Huffman tables of one component class (luma or chroma)."""

    def __init__(self, base_quant: Sequence[int], quality: int, dc_bits: Sequence[int],
                 ac_bits: Sequence[int], ac_values: Sequence[int]) -> None:
        self.quant = _scaled_quant(base_quant, quality)
        # For zigzag position z: where its coefficient sits in the transposed AAN output,
        # and the factor that scales and quantizes it in one multiplication.
        self.plan = []
        for k in _ZIGZAG:
            v, u = divmod(k, 8)
            factor = 1.0 / (self.quant[k] * _AAN_SCALE[v] * _AAN_SCALE[u] * 8.0)
            self.plan.append((u * 8 + v, factor))
        self.dc_codes = _huffman_codes(dc_bits, _DC_VALUES)
        self.ac_codes = _huffman_codes(ac_bits, ac_values)
        # Synthetic pictures repeat blocks a lot (flat sky rows, unchanged video background):
        # block bytes -> (quantized DC, AC bits, AC bit count).
        self.memo: dict[bytes, tuple[int, int, int]] = {}

    def code(self, block: bytes) -> tuple[int, int, int]:
        entry = self.memo.get(block)
        if entry is None:
            if len(self.memo) > 200_000:
                self.memo.clear()
            entry = self.memo[block] = self._code(block)
        return entry

    def _code(self, block: bytes) -> tuple[int, int, int]:
        rows = [_fdct8(*block[i:i + 8]) for i in range(0, 64, 8)]
        flat = [c for col in zip(*rows, strict=True) for c in _fdct8(*col)]
        flat[0] -= 64 * 128  # level shift: only the DC term (the sum of samples) moves
        coefs = [max(-1023, min(1023, round(flat[j] * f))) for j, f in self.plan]
        last = 63
        while last > 0 and coefs[last] == 0:
            last -= 1
        ac_codes = self.ac_codes
        bits = nbits = run = 0
        for k in range(1, last + 1):
            c = coefs[k]
            if c == 0:
                run += 1
                continue
            while run > 15:
                code, length = ac_codes[0xF0]
                bits, nbits, run = (bits << length) | code, nbits + length, run - 16
            size = (c if c > 0 else -c).bit_length()
            code, length = ac_codes[run << 4 | size]
            extra = c if c > 0 else c + (1 << size) - 1
            bits = (((bits << length) | code) << size) | extra
            nbits += length + size
            run = 0
        if last < 63:
            code, length = ac_codes[0x00]
            bits, nbits = (bits << length) | code, nbits + length
        return coefs[0], bits, nbits


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


class _JpegEncoder:
    """Baseline JPEG, YCbCr 4:2:0, standard tables; reusable so video frames share memos."""

    def __init__(self, quality: int = 85) -> None:
        self.luma = _Component(_LUMA_QUANT, quality, _DC_LUMA_BITS, _AC_LUMA_BITS,
                               _AC_LUMA_VALUES)
        self.chroma = _Component(_CHROMA_QUANT, quality, _DC_CHROMA_BITS, _AC_CHROMA_BITS,
                                 _AC_CHROMA_VALUES)

    def encode(self, rgb: bytes | bytearray, width: int, height: int) -> bytes:
        if width < 1 or height < 1 or width > 65535 or height > 65535:
            raise ValueError("JPEG dimensions must be 1..65535")
        if len(rgb) != width * height * 3:
            raise ValueError("rgb must hold width * height * 3 bytes")
        planes, padded_w, padded_h = _ycbcr420(rgb, width, height)
        return b"".join(
            [b"\xff\xd8", self._headers(width, height),
             self._scan(planes, padded_w, padded_h), b"\xff\xd9"]
        )

    def _headers(self, width: int, height: int) -> bytes:
        jfif = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        dqt = _segment(0xDB, b"".join(
            bytes([table_id]) + bytes(comp.quant[k] for k in _ZIGZAG)
            for table_id, comp in ((0, self.luma), (1, self.chroma))
        ))
        sof = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3)
                       + bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]))
        tables = (
            (0x00, _DC_LUMA_BITS, _DC_VALUES), (0x10, _AC_LUMA_BITS, _AC_LUMA_VALUES),
            (0x01, _DC_CHROMA_BITS, _DC_VALUES), (0x11, _AC_CHROMA_BITS, _AC_CHROMA_VALUES),
        )
        dht = _segment(0xC4, b"".join(
            bytes([tc]) + bytes(bits) + bytes(values) for tc, bits, values in tables
        ))
        sos = _segment(0xDA, bytes([3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]))
        return jfif + dqt + sof + dht + sos

    def _scan(self, planes: tuple[bytes, bytes, bytes], width: int, height: int) -> bytes:
        y_plane, cb_plane, cr_plane = planes
        chroma_w = width // 2
        out = bytearray()
        acc = nbits = 0
        prev = [0, 0, 0]
        units = (
            (0, self.luma, y_plane, width, 0, 0), (0, self.luma, y_plane, width, 8, 0),
            (0, self.luma, y_plane, width, 0, 8), (0, self.luma, y_plane, width, 8, 8),
            (1, self.chroma, cb_plane, chroma_w, 0, 0), (2, self.chroma, cr_plane, chroma_w, 0, 0),
        )
        for mcu_y in range(height // 16):
            for mcu_x in range(width // 16):
                for comp_index, comp, plane, plane_w, dx, dy in units:
                    scale = 16 if comp is self.luma else 8
                    base = (mcu_y * scale + dy) * plane_w + mcu_x * scale + dx
                    block = b"".join([plane[o:o + 8] for o in range(base, base + 8 * plane_w,
                                                                    plane_w)])
                    dc, ac_bits, ac_nbits = comp.code(block)
                    diff = dc - prev[comp_index]
                    prev[comp_index] = dc
                    size = (diff if diff >= 0 else -diff).bit_length()
                    code, length = comp.dc_codes[size]
                    extra = diff if diff >= 0 else diff + (1 << size) - 1
                    acc = (((((acc << length) | code) << size) | extra) << ac_nbits) | ac_bits
                    nbits += length + size + ac_nbits
                if nbits >= 512:
                    acc, nbits = _flush_bits(out, acc, nbits)
        # Pad the last byte with 1-bits (T.81 F.1.2.3).
        pad = -nbits % 8
        _flush_bits(out, (acc << pad) | ((1 << pad) - 1), nbits + pad)
        return bytes(out)


def _flush_bits(out: bytearray, acc: int, nbits: int) -> tuple[int, int]:
    """Move whole bytes from the bit accumulator to ``out``, stuffing 0x00 after 0xFF."""
    keep = nbits % 8
    whole = nbits - keep
    if whole:
        chunk = (acc >> keep).to_bytes(whole // 8, "big")
        out += chunk.replace(b"\xff", b"\xff\x00")
    return acc & ((1 << keep) - 1), keep


def _ycbcr420(rgb: bytes | bytearray, width: int, height: int
              ) -> tuple[tuple[bytes, bytes, bytes], int, int]:
    """JFIF YCbCr planes; luma padded to whole 16x16 MCUs by edge replication."""
    padded_w, padded_h = -(-width // 16) * 16, -(-height // 16) * 16
    stride = width * 3
    rows = []
    for y in range(padded_h):
        row = bytes(rgb[min(y, height - 1) * stride:(min(y, height - 1) + 1) * stride])
        rows.append(row + row[-3:] * (padded_w - width))
    padded = b"".join(rows)
    r_plane, g_plane, b_plane = padded[0::3], padded[1::3], padded[2::3]
    # Fixed point (16 fractional bits) as in libjpeg's jccolor.c; the weights sum to 1.
    luma = bytes([(19595 * r + 38470 * g + 7471 * b + 32768) >> 16
                  for r, g, b in zip(r_plane, g_plane, b_plane, strict=True)])
    r_half, g_half, b_half = (_halve(p, padded_w, padded_h) for p in (r_plane, g_plane, b_plane))
    cb = bytes([(-11059 * r - 21709 * g + 32768 * b + 8421375) >> 16
                for r, g, b in zip(r_half, g_half, b_half, strict=True)])
    cr = bytes([(32768 * r - 27439 * g - 5329 * b + 8421375) >> 16
                for r, g, b in zip(r_half, g_half, b_half, strict=True)])
    return (luma, cb, cr), padded_w, padded_h


def _halve(plane: bytes, width: int, height: int) -> list[int]:
    """2x2 box-filter downsampling (chroma subsampling)."""
    out: list[int] = []
    for y in range(0, height, 2):
        top, bottom = plane[y * width:(y + 1) * width], plane[(y + 1) * width:(y + 2) * width]
        out.extend([(a + b + c + d + 2) >> 2 for a, b, c, d in
                    zip(top[0::2], top[1::2], bottom[0::2], bottom[1::2], strict=True)])
    return out


def encode_jpeg(rgb: bytes | bytearray, width: int, height: int, quality: int = 85) -> bytes:
    """Packed 8-bit RGB to a baseline JFIF JPEG (YCbCr 4:2:0, standard Huffman tables)."""
    return _JpegEncoder(quality).encode(rgb, width, height)


def jpeg(width: int, height: int, seed: object, quality: int = 85) -> bytes:
    """A procedurally drawn landscape "photo" as a baseline JPEG."""
    return encode_jpeg(render_scene(width, height, seed), width, height, quality)


# ---- MJPEG in AVI ----------------------------------------------------------------------------


def _riff_chunk(fourcc: bytes, data: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _riff_list(kind: bytes, data: bytes) -> bytes:
    return _riff_chunk(b"LIST", kind + data)


def _avi(frames: Sequence[bytes], width: int, height: int, fps: int) -> bytes:
    """An AVI 1.0 file with one MJPG video stream and an idx1 index."""
    count, biggest = len(frames), max(len(f) for f in frames)
    avih = struct.pack("<14I", round(1_000_000 / fps), biggest * fps, 0, 0x10,  # AVIF_HASINDEX
                       count, 0, 1, biggest, width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIiI4h", b"vids", b"MJPG", 0, 0, 0, 0, 1, fps, 0, count,
                       biggest, -1, 0, 0, 0, width, height)
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG",
                       width * height * 3, 0, 0, 0, 0)
    hdrl = _riff_list(b"hdrl", _riff_chunk(b"avih", avih) + _riff_list(
        b"strl", _riff_chunk(b"strh", strh) + _riff_chunk(b"strf", strf)))
    chunks, index = [], []
    offset = 4  # idx1 offsets count from the "movi" fourcc
    for frame in frames:
        chunk = _riff_chunk(b"00dc", frame)
        index.append(struct.pack("<4sIII", b"00dc", 0x10, offset, len(frame)))  # keyframe
        chunks.append(chunk)
        offset += len(chunk)
    movi = _riff_list(b"movi", b"".join(chunks))
    idx1 = _riff_chunk(b"idx1", b"".join(index))
    return _riff_chunk(b"RIFF", b"AVI " + hdrl + movi + idx1)


def mjpeg_avi(frames: int, width: int, height: int, fps: int, seed: object) -> bytes:
    """A short AVI (MJPG frames): a ball bouncing across a landscape."""
    if frames < 1 or fps < 1:
        raise ValueError("frames and fps must be positive")
    background = render_scene(width, height, seed)
    rng = random.Random(f"video/{seed}")
    ball = _jitter(rng, (236, 84, 72), 30)
    radius = max(2.0, min(width, height) * 0.08)
    encoder = _JpegEncoder(80)
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        frame = bytearray(background)
        cx = radius + t * (width - 2 * radius)
        cy = height - radius - abs(math.sin(t * math.pi * 3)) * (height - 2 * radius) * 0.8
        _draw_disc(frame, width, height, cx, cy, radius, ball)
        _draw_disc(frame, width, height, cx - radius * 0.3, cy - radius * 0.3, radius * 0.35,
                   _mix(ball, (255, 255, 255), 0.6))
        out.append(encoder.encode(frame, width, height))
    return _avi(out, width, height, fps)


# ---- WAV -------------------------------------------------------------------------------------

# A I-vi-IV-V progression in semitones above the key's root (triad plus octave).
_PROGRESSION = ((0, 4, 7, 12), (-3, 0, 4, 9), (-7, -3, 0, 5), (-5, -1, 2, 7))


def wav(seconds: float, seed: object, rate: int = 22050) -> bytes:
    """A soft chord progression (16-bit mono PCM WAV), one chord per second."""
    if seconds <= 0 or rate < 1:
        raise ValueError("seconds and rate must be positive")
    rng = random.Random(f"wav/{seed}")
    root_hz = 220.0 * 2 ** (rng.randrange(12) / 12)
    n_samples = int(seconds * rate)
    samples = array("h")
    for start in range(0, n_samples, rate):
        chord = _PROGRESSION[(start // rate) % len(_PROGRESSION)]
        steps = [math.tau * root_hz * 2 ** (semi / 12) / rate for semi in chord]
        for n in range(min(rate, n_samples - start)):
            # 15 ms attack, then an exponential decay: a plucked, bell-like chord.
            envelope = min(1.0, n / (0.015 * rate)) * math.exp(-2.2 * n / rate)
            value = sum(math.sin(s * n) + 0.25 * math.sin(2 * s * n) for s in steps)
            samples.append(int(9000 * envelope * value / len(steps)))
    if sys.byteorder == "big":
        samples.byteswap()
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return _riff_chunk(b"RIFF", b"WAVE" + _riff_chunk(b"fmt ", fmt) + _riff_chunk(b"data", data))


# ---- PDF -------------------------------------------------------------------------------------

_PDF_PAGE_W, _PDF_PAGE_H = 612, 792  # US Letter, points
_PDF_LINES_PER_PAGE = 42
_PDF_WRAP_CHARS = 88


def _pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (what Helvetica's encoding here expects)."""
    raw = text.encode("cp1252", errors="replace")
    out = bytearray(b"(")
    for byte in raw:
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif byte < 32 or byte == 127:
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    return bytes(out + b")")


def _wrap(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        words, current = line.split(" "), ""
        for word in words:
            if current and len(current) + 1 + len(word) > _PDF_WRAP_CHARS:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        out.append(current)
    return out


def _pdf_page_content(title: str, lines: Sequence[str], number: int, total: int) -> bytes:
    hue = (number * 0.13) % 1.0
    accent = (0.2 + 0.5 * hue, 0.45, 0.75 - 0.4 * hue)
    ops = [
        b"q %.3f %.3f %.3f rg 0 %d %d 64 re f Q" % (*accent, _PDF_PAGE_H - 64, _PDF_PAGE_W),
        # A small bar chart and a circle (four Bezier arcs) as page decoration.
        b"q 0.85 0.88 0.92 rg",
        *(b"%d 40 14 %d re f" % (430 + 20 * i, 12 + (number * 7 + i * 13) % 40) for i in range(6)),
        b"Q q %.3f %.3f %.3f RG 2 w" % accent,
        _pdf_circle(560, 740, 18),
        b"S Q",
        b"BT 1 1 1 rg /F2 22 Tf 50 %d Td %s Tj ET" % (_PDF_PAGE_H - 44, _pdf_string(title)),
        b"BT 0.1 0.1 0.1 rg /F1 11 Tf 15 TL 50 %d Td" % (_PDF_PAGE_H - 100),
        *(_pdf_string(line) + b" Tj T*" for line in lines),
        b"ET",
        b"BT 0.4 0.4 0.4 rg /F1 9 Tf 50 30 Td %s Tj ET" % _pdf_string(f"Page {number} of {total}"),
    ]
    return b"\n".join(ops) + b"\n"


def _pdf_circle(cx: float, cy: float, r: float) -> bytes:
    k = 0.5523 * r
    return (
        b"%.2f %.2f m " % (cx + r, cy)
        + b"%.2f %.2f %.2f %.2f %.2f %.2f c " % (cx + r, cy + k, cx + k, cy + r, cx, cy + r)
        + b"%.2f %.2f %.2f %.2f %.2f %.2f c " % (cx - k, cy + r, cx - r, cy + k, cx - r, cy)
        + b"%.2f %.2f %.2f %.2f %.2f %.2f c " % (cx - r, cy - k, cx - k, cy - r, cx, cy - r)
        + b"%.2f %.2f %.2f %.2f %.2f %.2f c h" % (cx + k, cy - r, cx + r, cy - k, cx + r, cy)
    )


def pdf(pages: list[tuple[str, list[str]]], title: str = "notionfs sample") -> bytes:
    """A multi-page PDF: per page a title bar, Helvetica text lines (wrapped) and shapes.

    A page whose lines do not fit continues on extra pages titled "<title> (continued)".
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    laid_out: list[tuple[str, list[str]]] = []
    for page_title, lines in pages:
        wrapped = _wrap(lines) or [""]
        for i in range(0, len(wrapped), _PDF_LINES_PER_PAGE):
            suffix = "" if i == 0 else " (continued)"
            laid_out.append((page_title + suffix, wrapped[i:i + _PDF_LINES_PER_PAGE]))
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in once the page tree exists
    fonts = [add(b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
                 % name) for name in (b"Helvetica", b"Helvetica-Bold")]
    info = add(b"<< /Title %s /Producer (notionfs emulator) /CreationDate (D:20260105093000Z) >>"
               % _pdf_string(title))
    tree = add(b"")
    kids = []
    for number, (page_title, lines) in enumerate(laid_out, start=1):
        content = zlib.compress(_pdf_page_content(page_title, lines, number, len(laid_out)), 9)
        stream = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
                     % (len(content), content))
        kids.append(add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>"
            % (tree, _PDF_PAGE_W, _PDF_PAGE_H, stream, fonts[0], fonts[1])))
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, info, xref)
    return bytes(out)


# ---- text ------------------------------------------------------------------------------------


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """RFC 4180 CSV (CRLF line ends, minimal quoting) as UTF-8 bytes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


_WORDS = (
    "river stone morning lantern harbor quiet meadow cedar window letter garden bridge "
    "valley pebble orchard compass thread silver evening cabin field ferry island ridge "
    "ember willow kettle atlas north season path tide shelf candle summit copper maple"
).split()
_VERBS = "walks carries remembers follows gathers paints answers crosses keeps finds".split()
_LINKS = "and but while because so although until".split()


def prose(n_sentences: int, seed: object) -> str:
    """Readable filler sentences (deterministic), e.g. for text files and long paragraphs."""
    rng = random.Random(f"prose/{seed}")
    sentences = []
    for _ in range(n_sentences):
        words = [rng.choice(_WORDS), rng.choice(_VERBS), "the", rng.choice(_WORDS)]
        if rng.random() < 0.5:
            words += [rng.choice(_LINKS), "the", rng.choice(_WORDS), rng.choice(_VERBS),
                      rng.choice(("slowly", "again", "at dawn", "by the water", "home"))]
        sentences.append("The " + " ".join(words) + ".")
    return " ".join(sentences)


# ---- big deterministic files -----------------------------------------------------------------


def _pattern_chunk(seed: object, index: int, size_bytes: int) -> bytes:
    """The first ``size_bytes`` of pattern chunk ``index``.

    ``getrandbits`` fills 32-bit words in order, least significant first, so little-endian
    bytes of a request rounded up to whole words are a prefix of the full chunk.
    """
    words_bytes = (size_bytes + 3) & ~3
    rng = random.Random(f"{seed}/{index}")
    return rng.getrandbits(words_bytes * 8).to_bytes(words_bytes, "little")[:size_bytes]


def pattern_range(offset: int, size_bytes: int, seed: object) -> bytes:
    """Bytes [offset, offset + size_bytes) of the pattern ``write_pattern_file`` writes."""
    if offset < 0 or size_bytes < 0:
        raise ValueError("offset and size_bytes must not be negative")
    parts = []
    end = offset + size_bytes
    pos = offset
    while pos < end:
        index, start = divmod(pos, PATTERN_CHUNK_BYTES)
        stop = min(PATTERN_CHUNK_BYTES, end - index * PATTERN_CHUNK_BYTES)
        parts.append(_pattern_chunk(seed, index, stop)[start:])
        pos = index * PATTERN_CHUNK_BYTES + stop
    return b"".join(parts)


def pattern_bytes(size_bytes: int, seed: object) -> bytes:
    """The first ``size_bytes`` of the pattern (same bytes as a pattern file's start)."""
    return pattern_range(0, size_bytes, seed)


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.stamp")


def _is_fresh(path: Path, key: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text("utf-8"))
        return bool(stamp.get("key") == key and stamp.get("size") == path.stat().st_size)
    except (OSError, ValueError, AttributeError):
        return False


def _write_stamp(path: Path, key: str) -> None:
    stamp = json.dumps({"key": key, "size": path.stat().st_size})
    tmp = _stamp_path(path).with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(stamp, "utf-8")
    os.replace(tmp, _stamp_path(path))


def _write_atomically(path: Path, key: str, write: Callable[[io.BufferedWriter], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(path, key)


def write_pattern_file(path: Path, size_bytes: int, seed: object) -> None:
    """Write a deterministic pseudo-random file; reuse it if it is already there.

    An existing file is kept when its size matches and its sidecar stamp
    (``.<name>.stamp``) names the same seed, so repeated runs cost only a stat.
    """
    if size_bytes < 0:
        raise ValueError("size_bytes must not be negative")
    key = f"pattern/v1/{seed}"
    if _is_fresh(path, key) and path.stat().st_size == size_bytes:
        return

    def write(f: io.BufferedWriter) -> None:
        # Writing releases the GIL, so a writer thread overlaps the disk with generation.
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending: Future[int] | None = None
            for index in range(-(-size_bytes // PATTERN_CHUNK_BYTES)):
                remaining = size_bytes - index * PATTERN_CHUNK_BYTES
                chunk = _pattern_chunk(seed, index, min(PATTERN_CHUNK_BYTES, remaining))
                if pending is not None:
                    pending.result()
                pending = writer.submit(f.write, chunk)
            if pending is not None:
                pending.result()

    logger.info("writing %d-byte pattern file %s", size_bytes, path)
    _write_atomically(path, key, write)


def cached_file(path: Path, key: str, make: Callable[[], bytes]) -> Path:
    """``path`` holding ``make()``; generated only if no earlier call stored it for ``key``.

    ``key`` names the content (generator, version and parameters): change it whenever the
    output would change.
    """
    if not _is_fresh(path, key):
        data = make()

        def write(f: io.BufferedWriter) -> None:
            f.write(data)

        _write_atomically(path, key, write)
    return path
