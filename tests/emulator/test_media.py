"""Media generators: valid files per real programs, deterministic, and pattern files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import wave
import zlib
from collections import Counter
from pathlib import Path

import pytest

from notionfs.emulator import media


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed; this check needs it to open the file")
    return path


def _run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    _require(args[0])
    return subprocess.run(args, input=data, capture_output=True, check=True, timeout=60)


def _decode_rgb(image: bytes, kind: str) -> bytes:
    """Decode with ImageMagick to packed 8-bit RGB."""
    return _run(["convert", f"{kind}:-", "-depth", "8", "rgb:-"], image).stdout


def _psnr(a: bytes, b: bytes) -> float:
    assert len(a) == len(b)
    mse = sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) / len(a)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def _ffprobe(data: bytes, tmp_path: Path, name: str) -> dict[str, object]:
    path = tmp_path / name
    path.write_bytes(data)
    out = _run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format",
                "-of", "json", str(path)]).stdout
    return dict(json.loads(out))


# ---- pictures --------------------------------------------------------------------------------


def test_render_scene_is_packed_rgb_and_deterministic() -> None:
    first = media.render_scene(40, 30, "s")
    assert len(first) == 40 * 30 * 3
    assert first == media.render_scene(40, 30, "s")
    assert first != media.render_scene(40, 30, "t")
    # A picture, not a flat fill: many distinct colours.
    pixels = {bytes(first[i:i + 3]) for i in range(0, len(first), 3)}
    assert len(pixels) > 20


@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 5), (320, 200)])
def test_png_is_lossless_and_readable(width: int, height: int) -> None:
    data = media.png(width, height, "p")
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (width, height)
    info = _run(["identify", "-format", "%m %w %h", "png:-"], data).stdout.decode()
    assert info == f"PNG {width} {height}"
    assert _decode_rgb(data, "png") == media.render_scene(width, height, "p")


def test_png_is_compressed_and_deterministic() -> None:
    data = media.png(640, 480, 1)
    assert data == media.png(640, 480, 1)
    assert data != media.png(640, 480, 2)
    assert len(data) < 640 * 480 * 3 // 10


def _column(rgb: bytearray, width: int, height: int, x: int) -> list[bytes]:
    return [bytes(rgb[(y * width + x) * 3:(y * width + x) * 3 + 3]) for y in range(height)]


def test_chart_bars_follow_their_values() -> None:
    width, height = 200, 100
    rgb = media.render_chart(width, height, [1.0, 3.0], "c")
    assert len(rgb) == width * height * 3
    assert rgb == media.render_chart(width, height, [1.0, 3.0], "c")
    bar_heights = []
    for x in (width // 10 + 40, width // 10 + 120):  # the middle of each of the two bars
        column = _column(rgb, width, height, x)
        bar_color = column[height - height // 8 - 1]
        bar_heights.append(column.count(bar_color) + 2)  # plus the 2-row highlight on top
    assert bar_heights[1] == pytest.approx(3 * bar_heights[0], abs=3)
    png = media.encode_png(rgb, width, height)
    assert _decode_rgb(png, "png") == rgb


def test_diagram_draws_distinct_nodes() -> None:
    rgb = media.render_diagram(160, 120, 5, "d")
    assert rgb == media.render_diagram(160, 120, 5, "d") != media.render_diagram(160, 120, 3, "d")
    colors = Counter(bytes(rgb[i:i + 3]) for i in range(0, len(rgb), 3))
    node_colors = [c for c, n in colors.items() if n > 50 and max(c) - min(c) > 60]
    assert len(node_colors) >= 5


def test_file_recognises_generated_pictures() -> None:
    _require("file")
    png_info = _run(["file", "-b", "-"], media.png(64, 48, 0)).stdout.decode()
    assert "PNG image data, 64 x 48" in png_info
    jpeg_info = _run(["file", "-b", "-"], media.jpeg(64, 48, 0)).stdout.decode()
    assert "JPEG image data" in jpeg_info and "baseline" in jpeg_info and "64x48" in jpeg_info


@pytest.mark.parametrize(("width", "height", "quality"),
                         [(640, 480, 85), (123, 77, 85), (16, 16, 95), (1, 1, 50), (9, 33, 30)])
def test_jpeg_decodes_close_to_its_source(width: int, height: int, quality: int) -> None:
    source = media.render_scene(width, height, f"j{width}")
    data = media.encode_jpeg(source, width, height, quality)
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    info = _run(["identify", "-format", "%m %w %h %[jpeg:sampling-factor]", "jpeg:-"],
                data).stdout.decode()
    assert info == f"JPEG {width} {height} 2x2,1x1,1x1"
    decoded = _decode_rgb(data, "jpeg")
    assert _psnr(decoded, bytes(source)) > (30 if quality >= 85 else 24)


def test_jpeg_luma_is_exact_enough_at_quality_100() -> None:
    """Gray noise has no chroma to lose: only DCT and rounding error remain."""
    rng = random.Random(7)
    width, height = 48, 40
    gray = bytes(v for v in (rng.randrange(256) for _ in range(width * height)) for _ in range(3))
    decoded = _decode_rgb(media.encode_jpeg(gray, width, height, 100), "jpeg")
    assert _psnr(decoded, gray) > 45


def test_jpeg_quality_changes_size_and_is_deterministic() -> None:
    low, high = media.jpeg(200, 150, "q", quality=20), media.jpeg(200, 150, "q", quality=95)
    assert len(low) < len(high)
    assert high == media.jpeg(200, 150, "q", quality=95)
    assert high != media.jpeg(200, 150, "r", quality=95)


def test_jpeg_declares_the_standard_tables() -> None:
    data = media.jpeg(32, 32, 0)
    dht = data.index(b"\xff\xc4")
    length = struct.unpack(">H", data[dht + 2:dht + 4])[0]
    tables = data[dht + 4:dht + 2 + length]
    # Table class/id, 16 code counts, then symbols: DC luma (12), AC luma (162), ...
    assert tables[0] == 0x00 and sum(tables[1:17]) == 12
    ac = tables[17 + 12:]
    assert ac[0] == 0x10 and list(ac[1:17]) == [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125]
    # Annex K.3.3.2 starts 01 02 03 00 04 11 05 12 and ends ... F9 FA.
    assert ac[17:25] == bytes([1, 2, 3, 0, 4, 0x11, 5, 0x12])
    assert ac[17 + 160:17 + 162] == b"\xf9\xfa"


def test_jpeg_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        media.encode_jpeg(b"\x00" * 5, 2, 2)
    with pytest.raises(ValueError):
        media.encode_jpeg(b"", 0, 0)


# ---- PDF -------------------------------------------------------------------------------------


def _check_xref(data: bytes) -> int:
    """Every xref entry points at its object header; returns the object count."""
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data).group(1))  # type: ignore[union-attr]
    assert data[startxref:startxref + 4] == b"xref"
    match = re.match(rb"xref\n0 (\d+)\n", data[startxref:])
    assert match is not None
    count = int(match.group(1))
    entries = data[startxref + match.end():startxref + match.end() + 20 * count]
    assert entries[:20] == b"0000000000 65535 f \n"
    for number in range(1, count):
        entry = entries[20 * number:20 * number + 20]
        assert entry.endswith(b" 00000 n \n")
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)
    return count - 1


def test_pdf_is_valid_and_text_extracts(tmp_path: Path) -> None:
    long_line = " ".join(f"word{i}" for i in range(60))
    pages = [("First (page)", ["Hello, world.", "Back\\slash and (parens)"]),
             ("Second", ["Café, naïve, 10 €", long_line]),
             ("Third", [f"Line {i}" for i in range(50)])]
    data = media.pdf(pages, title="Test doc")
    assert data.startswith(b"%PDF-1.4\n")
    _check_xref(data)
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    info = _run(["pdfinfo", str(path)])
    assert info.stderr == b""  # poppler reports repaired xref tables on stderr
    fields = dict(line.split(":", 1) for line in info.stdout.decode().splitlines() if ":" in line)
    # 50 lines on the third page overflow onto a continuation page.
    assert int(fields["Pages"]) == 4
    assert fields["Title"].strip() == "Test doc"
    text = _run(["pdftotext", "-enc", "UTF-8", str(path), "-"]).stdout.decode()
    for expected in ("First (page)", "Hello, world.", "Back\\slash and (parens)",
                     "Café, naïve, 10 €", "word0", "word59", "Third (continued)", "Line 49"):
        assert expected in text
    assert data == media.pdf(pages, title="Test doc")


def test_pdf_needs_pages() -> None:
    with pytest.raises(ValueError):
        media.pdf([])


# ---- sound and video -------------------------------------------------------------------------


def test_wav_header_and_samples(tmp_path: Path) -> None:
    data = media.wav(1.5, "w", rate=16000)
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnchannels() == 1 and reader.getsampwidth() == 2
        assert reader.getframerate() == 16000
        assert reader.getnframes() == 24000
        frames = reader.readframes(reader.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    peak = max(abs(s) for s in samples)
    assert 2000 < peak < 32767  # audible, not clipped
    assert data == media.wav(1.5, "w", rate=16000)
    probe = _ffprobe(data, tmp_path, "tone.wav")
    stream = probe["streams"][0]  # type: ignore[index]
    assert stream["codec_name"] == "pcm_s16le"
    assert float(probe["format"]["duration"]) == pytest.approx(1.5, abs=0.01)  # type: ignore[index]


def test_mjpeg_avi_has_the_right_frames(tmp_path: Path) -> None:
    frames, fps = 12, 6
    data = media.mjpeg_avi(frames, 64, 48, fps, "v")
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI "
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    probe = _ffprobe(data, tmp_path, "clip.avi")
    (stream,) = probe["streams"]  # type: ignore[misc]
    assert stream["codec_type"] == "video" and stream["codec_name"] == "mjpeg"
    assert (stream["width"], stream["height"]) == (64, 48)
    assert int(stream["nb_read_frames"]) == frames
    assert float(probe["format"]["duration"]) == pytest.approx(frames / fps, abs=0.01)  # type: ignore[index]
    # Every frame decodes without complaint, and the ball moves.
    decode = _run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "clip.avi"), "-f", "framemd5",
                   "-"])
    assert decode.stderr == b""
    hashes = [line.split(",")[-1].strip() for line in decode.stdout.decode().splitlines()
              if line and not line.startswith("#")]
    assert len(hashes) == frames and len(set(hashes)) > frames // 2
    assert data == media.mjpeg_avi(frames, 64, 48, fps, "v")


# ---- text ------------------------------------------------------------------------------------


def test_csv_text_round_trips() -> None:
    rows = [["a", 1, "with, comma"], ["b", 2.5, 'quote "x"'], ["ü", "", "line\nbreak"]]
    data = media.csv_text(["name", "value", "note"], rows)
    assert data.startswith(b"name,value,note\r\n")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert parsed == [["name", "value", "note"]] + [[str(c) for c in row] for row in rows]


def test_prose_is_deterministic_sentences() -> None:
    text = media.prose(5, "x")
    assert text == media.prose(5, "x") != media.prose(5, "y")
    assert text.count(".") == 5 and text[0].isupper()


# ---- pattern files ---------------------------------------------------------------------------


def test_pattern_range_agrees_with_itself_across_chunks() -> None:
    mib = media.PATTERN_CHUNK_BYTES
    whole = media.pattern_range(mib - 10, 2 * mib + 20, "p")
    assert len(whole) == 2 * mib + 20
    assert whole[:10] == media.pattern_range(mib - 10, 10, "p")
    assert whole[10:15] == media.pattern_range(mib, 5, "p") != media.pattern_bytes(5, "p")
    assert media.pattern_range(mib + 3, 1, "p") == whole[13:14]
    for size in (0, 1, 3, 4, 5, 4097):
        assert media.pattern_bytes(size, "p") == media.pattern_range(0, mib, "p")[:size]
    assert media.pattern_bytes(64, "p") != media.pattern_bytes(64, "q")


def test_pattern_file_matches_pattern_and_every_mib_differs(tmp_path: Path) -> None:
    mib = media.PATTERN_CHUNK_BYTES
    size = 5 * mib + 12345
    path = tmp_path / "big.bin"
    media.write_pattern_file(path, size, "seed")
    assert path.stat().st_size == size
    data = path.read_bytes()
    rng = random.Random(1)
    for _ in range(20):
        offset = rng.randrange(size)
        length = min(rng.randrange(1, 3 * mib), size - offset)
        assert data[offset:offset + length] == media.pattern_range(offset, length, "seed")
    heads = {data[i:i + 64] for i in range(0, size, mib)}
    assert len(heads) == 6
    # Shifting by a page or a block never reproduces the same bytes.
    assert data[:4096] != data[4096:8192] and data[:4096] != data[mib:mib + 4096]


def test_pattern_file_is_reused_only_when_it_matches(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    media.write_pattern_file(path, 100_000, "a")
    first = path.stat()
    media.write_pattern_file(path, 100_000, "a")
    assert path.stat().st_ino == first.st_ino and path.stat().st_mtime_ns == first.st_mtime_ns
    media.write_pattern_file(path, 100_001, "a")  # new size: rewritten
    assert path.read_bytes() == media.pattern_bytes(100_001, "a")
    media.write_pattern_file(path, 100_001, "b")  # new seed: rewritten
    assert path.read_bytes() == media.pattern_bytes(100_001, "b")
    path.write_bytes(b"x" * 100_001)
    (tmp_path / ".big.bin.stamp").unlink()  # no stamp: the content is not trusted
    media.write_pattern_file(path, 100_001, "b")
    assert path.read_bytes() == media.pattern_bytes(100_001, "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".big.bin.stamp", "big.bin"]


def test_cached_file_generates_once_per_key(tmp_path: Path) -> None:
    calls: list[str] = []

    def make() -> bytes:
        calls.append("x")
        return b"content %d" % len(calls)

    path = tmp_path / "sub" / "f.bin"
    assert media.cached_file(path, "k1", make) == path
    assert media.cached_file(path, "k1", make) == path
    assert path.read_bytes() == b"content 1" and len(calls) == 1
    media.cached_file(path, "k2", make)
    assert path.read_bytes() == b"content 2" and len(calls) == 2


_SUBPROCESS_DIGEST = """
import hashlib, sys
from notionfs.emulator import media
parts = [media.png(50, 40, "d"), media.jpeg(50, 40, "d"), media.wav(0.2, "d", rate=8000),
         media.mjpeg_avi(2, 32, 32, 2, "d"), media.pdf([("T", ["x"])]),
         media.prose(3, "d").encode(), media.pattern_bytes(5000, "d")]
print(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).hexdigest())
"""


def test_generators_do_not_depend_on_the_process() -> None:
    """Same bytes in another interpreter with another hash seed (no set/hash ordering)."""
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", _SUBPROCESS_DIGEST], env=env, check=True,
                             capture_output=True, timeout=60)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_png_chunks_have_valid_crcs() -> None:
    data = media.png(10, 10, "crc")
    pos = 8
    tags = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(
            tag + body)
        tags.append(tag)
        pos += 12 + length
    assert tags == [b"IHDR", b"IDAT", b"IEND"]
