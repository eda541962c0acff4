"""The metadata cache through the kernel: a remount serves what was seen at once, with at
most the first poll's calls; changes made while unmounted show up; Notion out of reach at
mount time still mounts from the cache; no token and no signed URL ever reach the disk."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import Page

from .mounting import Mount, fusermount, mounted, requires_fuse
from .storecheck import scan_cache
from .test_lifecycle import start_mount, wait_mounted, wait_until

pytestmark = [pytest.mark.e2e, requires_fuse]

FEED = ("--poll-interval", "1")
LISTING_ROUTES = ("GET /v1/pages/{id}", "GET /v1/blocks/{id}/children", "GET /v1/databases/{id}",
                  "POST /v1/data_sources/{id}/query", "POST /v1/databases/{id}/query",
                  "GET /v1/data_sources/{id}", "GET /v1/blocks/{id}")


def walk(root: Path) -> dict[str, int]:
    """find + stat: every path under ``root`` with its size (-1 for folders)."""
    seen: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            seen[os.path.relpath(os.path.join(folder, name), root)] = -1
        for name in files:
            path = os.path.join(folder, name)
            seen[os.path.relpath(path, root)] = os.stat(path).st_size
    return seen


def _unmount(m: Mount) -> None:
    subprocess.run([fusermount(), "-u", str(m.path)], check=True, timeout=30)
    assert m.proc.wait(timeout=30) == 0


@contextmanager
def remounted(m: Mount, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
              *args: str) -> Iterator[Path]:
    """Mount ``m``'s emulator again at the same place with the same metadata cache."""
    monkeypatch.setenv("NOTIONFS_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / f"{name}.log"
    proc = start_mount(m.emulator, m.path, log, "--poll-interval", "1", *args)
    try:
        wait_mounted(proc, m.path, log)
        yield log
    finally:
        subprocess.run([fusermount(), "-u", str(m.path)], check=False, timeout=30)
        assert proc.wait(timeout=30) == 0, log.read_text()


def test_a_remount_serves_what_was_seen_with_only_the_feeds_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mounted(tmp_path, samples.nested_files(), args=FEED) as m:
        first = walk(m.path)
        assert len(first) > 20
        first_calls = m.emulator.counters.total
        _unmount(m)
        before = m.emulator.counters.snapshot()
        with remounted(m, tmp_path, monkeypatch, "second") as log:
            started = time.monotonic()
            again = walk(m.path)
            elapsed_s = time.monotonic() - started
            after = m.emulator.counters.snapshot()
            assert "folders from the metadata cache" in log.read_text()
        assert again == first
        calls = after.log[len(before.log):]
        routes = [r.route for r in calls]
        assert not [r for r in routes if r in LISTING_ROUTES], routes
        # users/me at start and the feed's first poll(s): nothing per folder
        assert len(calls) <= 4, routes
        assert first_calls > 3 * len(calls)
        print(f"\nfirst walk {first_calls} calls; remount walk {len(calls)} calls "
              f"({', '.join(routes)}) in {elapsed_s * 1000:.0f} ms")


def test_changes_made_while_unmounted_show_up_after_the_remount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = samples.nested_files()
    with mounted(tmp_path, workspace, args=FEED) as m:
        walk(m.path)
        _unmount(m)
        top = next(p for p in workspace.pages if p.title == "Nested files")
        child = next(c for c in top.children if isinstance(c, Page) and c.title == "Same title")
        m.emulator.changes.rename(child, "Renamed while away")
        with remounted(m, tmp_path, monkeypatch, "second"):
            folder = m.path / "Nested files"
            assert wait_until(lambda: "Renamed while away" in os.listdir(folder), 10)


def test_notion_out_of_reach_mounts_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = samples.nested_files()
    with mounted(tmp_path, workspace, args=FEED) as m:
        page = m.path / "Nested files"
        seen = walk(m.path)
        text = (page / "index.md").read_bytes()
        never_read = page / "report.pdf"
        _unmount(m)
        m.emulator.pause_api()
        with remounted(m, tmp_path, monkeypatch, "offline", "--deadline", "10") as log:
            assert "mounting from the metadata cache" in log.read_text()
            assert walk(m.path) == seen
            assert (page / "index.md").read_bytes() == text
            started = time.monotonic()
            with pytest.raises(OSError) as failed:
                never_read.read_bytes()
            assert failed.value.errno == errno.EIO
            assert time.monotonic() - started < 5  # fast, not after the deadline
            m.emulator.resume_api()
            top = next(p for p in workspace.pages if p.title == "Nested files")
            m.emulator.changes.add_page(top, "Made after Notion came back")
            assert wait_until(lambda: "Made after Notion came back" in os.listdir(page), 15)
            assert never_read.read_bytes()[:4] == b"%PDF"


def test_the_cache_holds_no_secret_and_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mounted(tmp_path, samples.nested_files(), args=FEED) as m:
        for path, size in walk(m.path).items():
            if size > 0:
                (m.path / path).read_bytes()  # signed URLs everywhere in memory
        token = m.emulator.token
        _unmount(m)
    root = tmp_path / "cache" / "metadata"
    files = list(root.iterdir())
    assert any(f.name.endswith(".sqlite3") for f in files)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    hits = scan_cache(root, token)
    assert hits == [], [str(h) for h in hits]
