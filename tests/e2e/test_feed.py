"""The change feed through the kernel: what changes in Notion shows up within the poll
interval plus the kernel's timeout, what did not change costs no call, an idle mount costs
one call per poll."""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notionfs.emulator.media import pattern_bytes
from notionfs.emulator.model import FileSpec, Page, Workspace, file_block
from notionfs.fusebind import auto_binding, libfuse_paths

from .mounting import Mount, mounted, requires_fuse
from .test_lifecycle import wait_until

pytestmark = [pytest.mark.e2e, requires_fuse]

POLL_S = 1.0
# Within the poll interval plus the kernel's timeout (2 s), and the time a poll takes.
SHOWS_UP_S = POLL_S + 2.0 + 5.0
SEARCH = "POST /v1/search"


@dataclass
class Feeding:
    mount: Mount
    desk: Page
    shelf: Page

    def names(self, *parts: str) -> list[str]:
        folder = self.mount.path.joinpath(*parts)
        return sorted(n for n in os.listdir(folder) if n != "index.md")


def _old(page: Page, hours: float = 2.0) -> Page:
    page.last_edited_time = datetime.now(UTC) - timedelta(hours=hours)
    return page


@pytest.fixture
def feeding(tmp_path: Path) -> Iterator[Feeding]:
    desk = _old(Page("Desk", children=[
        _old(Page("Alpha")), _old(Page("Beta")),
        file_block("file", FileSpec("notes.bin", pattern_bytes(4096, "notes/1"))),
    ]))  # fmt: skip
    shelf = _old(Page("Shelf", children=[_old(Page("Gamma"))]))
    workspace = Workspace(name="Feeding", pages=[desk, shelf])
    # A metadata TTL of 1 s: without the feed every revisit would re-list.
    args = ("--poll-interval", str(POLL_S), "--metadata-ttl", "1")
    with mounted(tmp_path, workspace, args=args) as m:
        yield Feeding(m, desk, shelf)


def test_revisits_cost_nothing_and_one_edit_relists_only_its_folder(feeding: Feeding) -> None:
    counters = feeding.mount.emulator.counters
    assert feeding.names("Desk") == ["Alpha", "Beta", "notes.bin"]
    assert feeding.names("Shelf") == ["Gamma"]
    time.sleep(3.5)  # past the metadata TTL and the kernel's timeout, polls going on
    before = counters.snapshot()
    assert feeding.names("Desk") == ["Alpha", "Beta", "notes.bin"]
    assert feeding.names("Shelf") == ["Gamma"]
    after = counters.snapshot()
    assert _non_poll_calls(before, after) == 0

    # One page's text edited: only that page's folder is listed again.
    beta = feeding.desk.children[1]
    assert isinstance(beta, Page)
    beta.children.append(Page("Beta's child"))
    before = counters.snapshot()
    feeding.mount.emulator.touch(beta)
    assert wait_until(lambda: feeding.names("Desk", "Beta") == ["Beta's child"], SHOWS_UP_S)
    time.sleep(POLL_S + 0.5)
    assert feeding.names("Desk") == ["Alpha", "Beta", "notes.bin"]
    assert feeding.names("Shelf") == ["Gamma"]
    after = counters.snapshot()
    relisted = {r.path for r in after.log[len(before.log):] if not _is_poll(r)}
    beta_id = beta.id.replace("-", "")
    assert relisted and all(beta_id in path.replace("-", "") for path in relisted), relisted
    # Renamed: the folder that lists it shows the new name.
    alpha = feeding.desk.children[0]
    assert isinstance(alpha, Page)
    alpha.title = "Alpha renamed"
    feeding.mount.emulator.touch(alpha)
    assert wait_until(lambda: feeding.names("Desk") == ["Alpha renamed", "Beta", "notes.bin"],
                      SHOWS_UP_S)


def _is_poll(request) -> bool:  # type: ignore[no-untyped-def]
    """The feed's own search (sorted by last edit); a root listing searches unsorted."""
    return request.route == SEARCH and isinstance(request.body, dict) and "sort" in request.body


def _non_poll_calls(before, after) -> int:  # type: ignore[no-untyped-def]
    """API calls other than the feed's polls between two counter snapshots."""
    return sum(1 for r in after.log[len(before.log):] if not _is_poll(r))


def test_new_moved_trashed_and_replaced_show_up(feeding: Feeding) -> None:
    emulator = feeding.mount.emulator
    assert feeding.names("Desk") == ["Alpha", "Beta", "notes.bin"]
    notes = feeding.mount.path / "Desk" / "notes.bin"
    assert notes.read_bytes() == pattern_bytes(4096, "notes/1")
    # a new child page (the parent's content changed, as in Notion)
    feeding.desk.children.append(Page("Delta"))
    emulator.touch(feeding.desk)
    assert wait_until(lambda: "Delta" in feeding.names("Desk"), SHOWS_UP_S)
    # a replaced file
    block = feeding.desk.children[2]
    assert block.file is not None
    block.file = FileSpec("notes.bin", pattern_bytes(4096, "notes/2"))
    emulator.touch(block)
    emulator.touch(feeding.desk)
    assert wait_until(lambda: notes.read_bytes() == pattern_bytes(4096, "notes/2"), SHOWS_UP_S)
    # a page moved from Desk to Shelf
    beta = feeding.desk.children.pop(1)
    feeding.shelf.children.append(beta)
    emulator.touch(beta)
    assert wait_until(
        lambda: "Beta" in feeding.names("Shelf") and "Beta" not in feeding.names("Desk"),
        SHOWS_UP_S,
    )
    # a page moved to the trash: gone from search, its parent edited
    gamma = feeding.shelf.children[0]
    assert isinstance(gamma, Page)
    gamma.in_trash = True
    emulator.touch(feeding.shelf)
    assert wait_until(lambda: "Gamma" not in feeding.names("Shelf"), SHOWS_UP_S)


def test_an_idle_mount_costs_at_most_one_call_per_poll(feeding: Feeding) -> None:
    counters = feeding.mount.emulator.counters
    feeding.names("Desk")
    before = counters.snapshot()
    time.sleep(5 * POLL_S + 0.5)
    after = counters.snapshot()
    polls = sum(1 for r in after.log[len(before.log):] if _is_poll(r))
    assert 3 <= polls <= 6, polls
    assert _non_poll_calls(before, after) == 0  # nothing but the polls


def test_minute_rounded_times_and_a_lagging_search(tmp_path: Path) -> None:
    """Notion rounds edit times to the minute and its search lags: two renames within one
    minute, a new row and edited text still show up, a few seconds late."""
    from notionfs.emulator.model import Database

    desk = Page("Desk", children=[Page("Alpha"), Page("Notes", children=[])])
    table = Database("Table", rows=[Page("Row one")], properties={"Name": "title"})
    workspace = Workspace(name="Lagging", pages=[desk, table])
    with mounted(tmp_path, workspace, args=("--poll-interval", str(POLL_S))) as m:
        feed = m.emulator.feed
        feed.round_times_to_minute = True
        feed.search_lag_s = 2.0
        changes = m.emulator.changes
        names = lambda *p: sorted(n for n in os.listdir(m.path.joinpath(*p)) if not n.startswith("index."))  # noqa: E501, E731
        assert names("Desk") == ["Alpha", "Notes"]
        assert names("Table") == ["Row one"]
        late = SHOWS_UP_S + feed.search_lag_s
        alpha = desk.children[0]
        assert isinstance(alpha, Page)
        changes.rename(alpha, "Alpha 1")
        assert wait_until(lambda: names("Desk") == ["Alpha 1", "Notes"], late)
        changes.rename(alpha, "Alpha 2")  # within the same minute: the same rounded time
        assert wait_until(lambda: names("Desk") == ["Alpha 2", "Notes"], late)
        changes.add_row(table, "Row two")
        assert wait_until(lambda: names("Table") == ["Row one", "Row two"], late)
        notes = desk.children[1]
        assert isinstance(notes, Page)
        text = m.path / "Desk" / "Notes" / "index.md"
        assert b"Inside notes" not in text.read_bytes()
        changes.add_page(notes, "Inside notes")
        assert wait_until(lambda: "Inside notes" in names("Desk", "Notes"), late)
        assert b"Inside notes" in text.read_bytes()


def test_a_replaced_file_is_read_whole_old_or_new_never_cut(feeding: Feeding) -> None:
    """The kernel keeps a file's size up to 2 s: a read of the new version within them must
    not stop at the old version's size (a copy made then would be silently cut)."""
    emulator = feeding.mount.emulator
    notes = feeding.mount.path / "Desk" / "notes.bin"
    old, new = pattern_bytes(4096, "notes/1"), pattern_bytes(40_000, "notes/2")
    assert notes.read_bytes() == old
    block = feeding.desk.children[2]
    assert block.file is not None
    block.file = FileSpec("notes.bin", new)
    emulator.touch(block)
    emulator.touch(feeding.desk)
    seen: list[int] = []
    deadline = time.monotonic() + SHOWS_UP_S
    while time.monotonic() < deadline:
        data = notes.read_bytes()
        assert data in (old, new), f"read {len(data)} bytes: neither version ({len(seen)} read)"
        seen.append(len(data))
        if data == new:
            break
    assert seen[-1] == len(new)


def test_a_replaced_file_maps_whole_at_once_under_libfuse_3(feeding: Feeding) -> None:
    """libfuse 3: an open of a file the kernel holds the old size of has the kernel drop that
    size and the old pages first, so the file opens through the page cache and a program can
    mmap the new version at once (the kernel maps no file opened past the page cache)."""
    if auto_binding(libfuse_paths()) != "mfusepy":
        pytest.skip("this machine mounts through libfuse 2, which cannot invalidate")
    emulator = feeding.mount.emulator
    notes = feeding.mount.path / "Desk" / "notes.bin"
    old, new = pattern_bytes(4096, "notes/1"), pattern_bytes(40_000, "notes/2")
    assert notes.read_bytes() == old  # the kernel holds 4096 bytes as the size for 2 s
    block = feeding.desk.children[2]
    assert block.file is not None
    block.file = FileSpec("notes.bin", new)
    emulator.touch(block)
    emulator.touch(feeding.desk)
    deadline = time.monotonic() + SHOWS_UP_S
    data = old
    while data != new and time.monotonic() < deadline:
        with open(notes, "rb") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                data = bytes(mapped)
        assert data in (old, new), f"mapped {len(data)} bytes: neither version"
    assert data == new
