"""The benchmark driver cannot rot silently: its dry run, its table and BENCHMARKS.md upkeep."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notionfs.emulator.filehost import FileHost
from notionfs.emulator.model import FileSpec

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from benchlib import report  # noqa: E402


def test_dry_run_prints_the_whole_table(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--quick", "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert "| Cold sequential read, 64 MiB | MB/s |" in done.stdout
    assert "x curl" in done.stdout
    text = out.read_text()
    assert text.startswith("# Benchmarks") and "made-up numbers" in text
    assert report.HAND_WRITTEN_MARKER in text


def results(**medians: float) -> report.Results:
    r = report.Results()
    for key, value in medians.items():
        r.add(key, value)
    return r


def row_of(table: str, label: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_targets_are_judged_from_medians() -> None:
    r = results(seq_cold_mbps=900, curl_mbps=1000, rclone_seq_mbps=500, ls_warm_ms=60)
    r.add("seq_cold_mbps", 100)
    r.add("seq_cold_mbps", 950)  # median 900: 0.9 x curl
    table = report.table(r, report.rows(256, 1000, 256))
    cells = row_of(table, "Cold sequential read, 256 MiB")
    assert cells[2:6] == ["900", "1,000", "n/a", "500"] and cells[-1] == "yes"
    assert row_of(table, "ls -l of 1000 files, warm")[-1] == "**no**"
    assert "Warm re-read" not in table  # measured nothing: no row


def test_hand_written_part_survives_a_rewrite() -> None:
    first = report.document("# Benchmarks\n\nold table", None)
    edited = first + "\n## What each setting bought\n\nnotes by hand\n"
    second = report.document("# Benchmarks\n\nnew table", edited)
    assert "new table" in second and "old table" not in second
    assert second.endswith("## What each setting bought\n\nnotes by hand\n")


@pytest.fixture
def filehost() -> Iterator[FileHost]:
    with FileHost() as host:
        yield host


def test_external_directory_lists_its_file_for_rclone(filehost: FileHost) -> None:
    spec = FileSpec(name="big file.bin", data=b"x" * 10, id="0f0f0f0f-0000-4000-8000-0000000000b1")
    filehost.register(spec)
    url = filehost.external_url(spec)
    directory = url.rsplit("/", 1)[0] + "/"
    page = httpx.get(directory)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="big%20file.bin"' in page.text
    assert httpx.get(directory + "big%20file.bin").content == b"x" * 10
