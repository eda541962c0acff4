"""The bench's thinnest FUSE file (scripts/benchlib/thinpipe.py) reads the host's bytes right:
a bound that answered wrong or short bytes would make notionfs look slow beside it."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.emulator.filehost import FileHost
from notionfs.emulator.model import FileSpec

from .mounting import requires_fuse

pytestmark = [pytest.mark.e2e, requires_fuse]

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchlib.procs import mount_thinpipe  # noqa: E402

MiB = 1 << 20


@pytest.fixture
def host() -> Iterator[FileHost]:
    with FileHost() as running:
        yield running


def test_the_thin_pipe_reads_the_whole_file_and_any_piece_of_it(
    host: FileHost, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(5 * MiB + 12345)
    spec = FileSpec(name="big.bin", data=data, id="0f0f0f0f-0000-4000-8000-0000000000c1")
    host.register(spec)
    url, _ = host.signed_url(spec, 3600)
    with mount_thinpipe(url, len(data), tmp_path / "mnt", tmp_path / "thin.log") as mount:
        path = mount.path / "big.bin"
        assert os.listdir(mount.path) == ["big.bin"] and path.stat().st_size == len(data)
        # Out of order first, as a program that seeks would, then the whole file.
        fd = os.open(path, os.O_RDONLY)
        try:
            for offset in (4 * MiB, 100, 3 * MiB + 7, len(data) - 10):
                assert os.pread(fd, 4096, offset) == data[offset : offset + 4096]
        finally:
            os.close(fd)
        read = subprocess.run(["cat", str(path)], capture_output=True, check=True, timeout=60)
        assert read.stdout == data
        # The signed URL came on standard input, not on the command line.
        query = url.split("?", 1)[1]
        assert query and query.encode() not in Path(f"/proc/{mount.proc.pid}/cmdline").read_bytes()
    assert "ranged requests" in (tmp_path / "thin.log").read_text()
