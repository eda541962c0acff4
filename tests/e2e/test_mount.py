"""End to end through the kernel: a mounted workspace shows every page and file, byte-exact."""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.demo import build_demo
from notionfs.emulator.media import pattern_bytes
from notionfs.emulator.model import FileSpec, Page, file_block

from .expect import expected_view, walk_mount
from .mounting import mounted, requires_fuse, sha256_file

pytestmark = [pytest.mark.e2e, requires_fuse]

VERSIONS = ["2022-06-28", "2025-09-03", "2026-03-11"]


def assert_complete(mnt: Path, workspace) -> None:
    want = expected_view(workspace)
    seen = walk_mount(mnt, sha256_file)
    assert seen.pages == want.pages
    assert seen.databases == want.databases
    assert seen.files == want.files


@pytest.mark.parametrize("version", VERSIONS)
def test_nested_files_walk_is_complete_and_byte_exact(
    tmp_path: Path, version: str, fuse_binding: str
) -> None:
    workspace = samples.nested_files()
    with mounted(tmp_path, workspace, version=version) as m:
        assert_complete(m.path, workspace)


@pytest.mark.parametrize("version", VERSIONS)
def test_demo_walk_is_complete_and_byte_exact(
    tmp_path: Path, demo_data_dir: Path, version: str
) -> None:
    workspace = build_demo(demo_data_dir)
    with mounted(tmp_path, workspace, version=version) as m:
        assert_complete(m.path, workspace)


def sha256_uncached(path: Path) -> str:
    """Hash a file after dropping its pages from the kernel cache, so bytes come from the host."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return sha256_file(path)


def test_reads_survive_url_expiry(tmp_path: Path, fuse_binding: str) -> None:
    """URLs live 2 s; every file is read three times across expiries, one handle held open."""
    workspace = samples.nested_files()
    large = FileSpec("large.bin", pattern_bytes(6 << 20, 7))  # more than the cache holds
    workspace.pages.append(Page("Large", children=[file_block("file", large)]))
    args = ("--cache-size", "4M")
    with mounted(tmp_path, workspace, emulator_options={"expiry_s": 2.0}, args=args) as m:
        first = walk_mount(m.path, sha256_uncached)
        victim = max(first.file_paths, key=lambda p: p.stat().st_size)
        assert victim.stat().st_size == 6 << 20
        with open(victim, "rb") as held:
            head = held.read(1000)
            for _ in range(2):
                time.sleep(2.5)  # past the URL's expiry
                again = walk_mount(m.path, sha256_uncached)
                assert again.files == first.files
            rest = held.read()
        whole = head + rest
        assert len(whole) == victim.stat().st_size
        assert hashlib.sha256(whole).hexdigest() in first.files
        refreshes = m.emulator.counters.calls("GET /v1/blocks/{id}") + m.emulator.counters.calls(
            "GET /v1/pages/{id}"
        )
        assert refreshes > 0, "no signed URL was refreshed"

        # A URL that the host rejects early (403) is refreshed once and the read goes on.
        m.emulator.filehost.faults.expire_all_now()
        assert walk_mount(m.path, sha256_uncached).files == first.files
        assert m.emulator.filehost.counters.by_status.get(403, 0) >= 1


def test_wide_page_and_big_database_list_completely_and_cache(tmp_path: Path) -> None:
    workspace = samples.wide_page(250)
    workspace.pages.extend(samples.big_database(150).pages)
    with mounted(tmp_path, workspace, args=("--metadata-ttl", "300")) as m:
        counters = m.emulator.counters
        roots = sorted(os.listdir(m.path))
        assert len(roots) == 2
        kinds = {os.getxattr(m.path / r, "user.notion.type"): m.path / r for r in roots}
        page_dir, db_dir = kinds[b"page"], kinds[b"database"]

        before = counters.calls("GET /v1/blocks/{id}/children")
        listed = os.listdir(page_dir)
        cost = counters.calls("GET /v1/blocks/{id}/children") - before
        child_pages = [n for n in listed if (page_dir / n).is_dir()]
        want_children = [c for c in workspace.pages[0].children]
        assert len(child_pages) == sum(1 for c in want_children if type(c).__name__ == "Page")
        assert cost == math.ceil(len(want_children) / 100)

        entries = os.listdir(db_dir)
        rows = [n for n in entries if (db_dir / n).is_dir()]
        assert len(rows) == 150
        assert set(entries) - set(rows) == {"index.csv"}

        snapshot = counters.total
        assert sorted(os.listdir(page_dir)) == sorted(listed)
        assert len(os.listdir(db_dir)) == 151
        for name in rows[:20]:
            (db_dir / name).stat()
        assert counters.total == snapshot, "a second listing within the TTL must cost nothing"


def test_big_file_read_keeps_memory_near_cache_bound(tmp_path: Path, big_data_dir: Path) -> None:
    size = 256 << 20
    workspace = samples.big_file(big_data_dir, size_bytes=size)
    spec = workspace.pages[0].children[0].file
    assert spec is not None
    cache = 64 << 20
    with mounted(tmp_path, workspace, args=("--cache-size", str(cache))) as m:
        (path,) = walk_mount(m.path, lambda p: "").file_paths
        peak = [0]
        failures: list[BaseException] = []
        done = threading.Event()

        def sample() -> None:
            try:
                while not done.is_set():
                    rss = _rss_bytes(m.proc.pid)
                    peak[0] = max(peak[0], rss)
                    done.wait(0.05)
            except BaseException as exc:  # reported by the test, not lost with the thread
                failures.append(exc)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            digest = sha256_file(path)
        finally:
            done.set()
            sampler.join()
        assert digest == spec.sha256()
        print(f"\npeak RSS of the mount reading {size >> 20} MiB with a {cache >> 20} MiB cache: "
              f"{peak[0] / (1 << 20):.1f} MiB")
        assert not failures, f"measuring the mount's memory failed: {failures[0]!r}"
        assert peak[0] > 0, "the mount's memory was never measured"
        assert peak[0] < cache + (100 << 20)


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    # No VmRSS (a zombie, or a kernel without it): no measurement, never a reading of 0.
    raise AssertionError(f"/proc/{pid}/status has no VmRSS line")


def test_errors_reach_programs_with_the_right_errno(tmp_path: Path, fuse_binding: str) -> None:
    """The adapter's errno mapping through the kernel, under each binding."""
    import errno
    import subprocess

    with mounted(tmp_path, samples.nested_files(), args=("--read-only",)) as m:
        page = m.path / "Nested files"
        assert (page / "top.png").stat().st_size > 0
        cases = [
            (lambda: (page / "no such file").stat(), errno.ENOENT),
            (lambda: open(page / "top.png", "wb"), errno.EROFS),
            (lambda: (page / "new folder").mkdir(), errno.EROFS),
            (lambda: os.listdir(page / "top.png"), errno.ENOTDIR),
            (lambda: os.getxattr(page / "top.png", "user.notion.nothing"), errno.ENODATA),
        ]
        for call, expected in cases:
            with pytest.raises(OSError) as caught:
                call()
            assert caught.value.errno == expected, (call, caught.value)
        assert os.getxattr(page, "user.notion.type") == b"page"
        log = m.log_text()
        binding = subprocess.run(
            ["grep", "-c", f"with {fuse_binding} over libfuse", str(m.log_path)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert binding.stdout.strip() == "1", log[-2000:]


def test_libfuse_3_mounts_read_in_large_requests(tmp_path: Path, fuse_binding: str) -> None:
    """Under libfuse 3 the mount's read-ahead is raised to 1 MiB (the kernel then sends 1 MiB
    reads); libfuse 2 cannot go past 128 KiB and is left as it is."""
    workspace = samples.nested_files()
    with mounted(tmp_path, workspace) as m:
        device = os.stat(m.path).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
        want = "1024" if fuse_binding == "mfusepy" else "128"
        deadline = time.monotonic() + 10
        while knob.read_text().strip() != want and time.monotonic() < deadline:
            time.sleep(0.05)
        assert knob.read_text().strip() == want
        assert_complete(m.path, workspace)
