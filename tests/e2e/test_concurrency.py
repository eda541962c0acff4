"""Through the kernel: many readers at once get the right bytes without deadlock; a reader
killed mid-request leaves the mount responsive and leaks nothing; SIGTERM during heavy reads
unmounts cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.emulator.model import Workspace

from .faultkit import (
    MiB,
    drop_page_cache,
    files_page,
    open_fds,
    pattern_spec,
    read_all,
    read_at,
    thread_count,
    timed,
    wait_until,
)
from .mounting import Mount, mounted, requires_fuse

pytestmark = [pytest.mark.e2e, requires_fuse]

FILES = [pattern_spec(f"c{i}.bin", 6 * MiB + 4_321 * i, f"concurrency/{i}") for i in range(4)]
# One per killed reader: a file nobody has read yet, so each reader must ask the host (what a
# killed reader's read-ahead brought in after the stall may sit in the mount's cache).
VICTIMS = [pattern_spec(f"victim{i}.bin", 8 * MiB, f"concurrency/victim/{i}") for i in range(5)]
THREADS = 16
JOIN_S = 120.0  # far beyond what the reads need: only a deadlock gets near it


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    workspace = Workspace(name="Concurrency", pages=[
        files_page("Shared", FILES), files_page("Victim", VICTIMS),
    ])
    # A cache smaller than the files: readers evict each other's blocks and fetch again.
    args = ("--cache-size", "8M", "--deadline", "30")
    with mounted(tmp_path_factory.mktemp("busy"), workspace, args=args) as m:
        yield m


def _random_reader(paths: list[tuple[Path, bytes]], seed: int, errors: list[str]) -> None:
    rng = random.Random(seed)
    fds = {path: os.open(path, os.O_RDONLY) for path, _ in paths}
    try:
        for _ in range(40):
            path, data = rng.choice(paths)
            # Overlapping ranges from every thread, often straddling block boundaries.
            offset = rng.choice([0, MiB - 1000, 2 * MiB, 3 * MiB + 17]) + rng.randrange(0, MiB)
            size = rng.choice([1, 4096, 65_536, 300_000, 1_100_000])
            got = os.pread(fds[path], size, offset)
            if got != data[offset : offset + size]:
                errors.append(f"{path.name} [{offset}, +{size}): wrong bytes")
    except OSError as exc:
        errors.append(f"{exc}")
    finally:
        for fd in fds.values():
            os.close(fd)


def _sequential_reader(path: Path, data: bytes, errors: list[str]) -> None:
    try:
        if read_all(path, chunk_bytes=128 * 1024) != data:
            errors.append(f"{path.name}: wrong bytes reading it whole")
    except OSError as exc:
        errors.append(f"{path.name}: {exc}")


def test_sixteen_readers_overlapping_ranges_get_the_right_bytes(busy: Mount) -> None:
    m = busy
    paths = [(m.path / "Shared" / spec.name, spec.data) for spec in FILES]
    for path, data in paths:
        assert path.stat().st_size == len(data)
        drop_page_cache(path)
    # Short stalls and cut bodies keep fetches in flight together, so readers meet inside
    # the cache's single-flight and resume paths, not one after another.
    faults = m.emulator.filehost.faults
    requests_before = m.emulator.filehost.counters.requests
    faults.stall_after_bytes, faults.stall_s, faults.stall_rate = 64 * 1024, 0.05, 0.3
    faults.cut_after_bytes, faults.cut_rate = 200_000, 0.1
    errors: list[str] = []
    threads = []
    for i in range(THREADS):
        if i < 8:  # half on the same file
            target, args = _random_reader, ([paths[0]], i, errors)
        elif i < 12:  # a quarter across all files
            target, args = _random_reader, (paths, i, errors)
        else:  # a quarter streaming whole files
            path, data = paths[i - 12]
            target, args = _sequential_reader, (path, data, errors)
        threads.append(threading.Thread(target=target, args=args, name=f"reader-{i}"))
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(JOIN_S)
        requests = m.emulator.filehost.counters.requests - requests_before
    finally:
        m.emulator.filehost.reset()
    print(f"\n{THREADS} readers: {requests} file host requests")
    assert requests > 20  # the readers met on the network path, not only in caches
    stuck = [t.name for t in threads if t.is_alive()]
    assert stuck == [], f"readers deadlocked: {stuck}"
    assert errors == []


def _reader_process(path: Path) -> subprocess.Popen[bytes]:
    """A child reading ``path`` whole in 1 MiB reads."""
    code = (
        "import sys\n"
        "with open(sys.argv[1], 'rb', buffering=0) as f:\n"
        "    while f.read(1 << 20): pass\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_reader_killed_mid_request_frees_what_it_held(busy: Mount) -> None:
    m = busy
    host = m.emulator.filehost
    victims = [m.path / "Victim" / spec.name for spec in VICTIMS]
    assert [v.stat().st_size for v in victims] == [spec.size for spec in VICTIMS]
    other = m.path / "Shared" / FILES[1].name
    assert read_at(other, 0, 4096) == FILES[1].data[:4096]
    pid = m.proc.pid
    fds_before, threads_before = open_fds(pid), thread_count(pid)
    for victim in victims:
        drop_page_cache(victim)
        requests = host.counters.requests
        host.faults.stall_after_bytes = 256 * 1024  # bodies stop there until reset
        reader = _reader_process(victim)
        try:
            assert host.counters.wait_for(lambda c, r=requests: c.requests > r, timeout_s=20)
            assert reader.poll() is None, "the read should be in flight"
        finally:
            reader.kill()
            reader.wait(timeout=10)
        # The mount answers at once while the killed request's fetch still hangs.
        listing = timed(os.listdir, m.path / "Shared")
        assert listing.error is None and listing.elapsed_s < 3.0
        cached = timed(read_at, other, 0, 4096)
        assert cached.value == FILES[1].data[:4096] and cached.elapsed_s < 3.0
        host.reset()  # the stalled responses end
    assert [read_all(v) for v in victims] == [spec.data for spec in VICTIMS]
    # Five killed readers later, descriptors and threads are back near where they were.
    assert wait_until(lambda: open_fds(pid) <= fds_before + 4, 15), (fds_before, open_fds(pid))
    assert wait_until(lambda: thread_count(pid) <= threads_before + 8, 15), (
        threads_before, thread_count(pid))


def test_sigterm_during_heavy_reads_unmounts_cleanly(tmp_path: Path) -> None:
    big = [pattern_spec(f"s{i}.bin", 24 * MiB, f"concurrency/sigterm/{i}") for i in range(4)]
    workspace = Workspace(name="Sigterm", pages=[files_page("Big", big)])
    with mounted(tmp_path, workspace, args=("--cache-size", "16M")) as m:
        paths = [m.path / "Big" / spec.name for spec in big]
        for path in paths:
            assert path.stat().st_size == 24 * MiB
        m.emulator.filehost.faults.stall_after_bytes = 512 * 1024
        m.emulator.filehost.faults.stall_s = 0.05  # slow enough to be mid-read at the signal
        got: dict[int, bytes] = {}
        failed: dict[int, OSError] = {}

        def reader(i: int) -> None:
            parts = []
            try:
                with open(paths[i % 4], "rb", buffering=0) as f:
                    while chunk := f.read(256 * 1024):
                        parts.append(chunk)
            except OSError as exc:
                failed[i] = exc
            got[i] = b"".join(parts)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        assert m.emulator.filehost.counters.wait_for(lambda c: c.bytes_sent > 8 * MiB, 30)
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=30) == 0
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "a reader hung after the unmount"
        assert not os.path.ismount(m.path)
        assert os.listdir(m.path) == []
        # Open files are served out (or fail once the grace is over): what each reader
        # got is its whole file or, if its read failed, a true prefix. No wrong bytes.
        assert len(got) == 8
        for i, data in got.items():
            want = big[i % 4].data
            assert data == want if i not in failed else want.startswith(data), f"reader {i}"
        log = m.log_text()
        assert "SIGTERM: unmounting" in log
        assert "Traceback" not in log
