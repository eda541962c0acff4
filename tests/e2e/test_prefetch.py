"""The next click is already listed: opening a folder lists its subfolders in the
background, so opening one of them next costs no API call and no wait."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from notionfs.emulator.model import Page, Workspace

from .mounting import mounted, requires_fuse
from .test_lifecycle import wait_until

pytestmark = [pytest.mark.e2e, requires_fuse]


def test_the_next_folder_is_listed_before_it_is_opened(tmp_path: Path) -> None:
    rooms = [Page(f"Room {i}", children=[Page(f"Shelf {i}.{j}") for j in range(2)])
             for i in range(4)]
    workspace = Workspace(name="House", pages=[Page("House", children=rooms)])
    with mounted(tmp_path, workspace, args=("--prefetch", "10")) as m:
        counters = m.emulator.counters
        house = m.path / "House"
        assert sorted(os.listdir(house)) == ["Room 0", "Room 1", "Room 2", "Room 3", "index.md"]
        # In the background: the four rooms, then (depth 2) their shelves, within the budget.
        children_calls = lambda: counters.calls("GET /v1/blocks/{id}/children")  # noqa: E731
        assert wait_until(lambda: children_calls() >= 1 + 4 + 6, 15)
        before = counters.snapshot()
        for i in range(4):
            assert sorted(os.listdir(house / f"Room {i}")) == [
                f"Shelf {i}.0", f"Shelf {i}.1", "index.md"]
        after = counters.snapshot()
        # Each room was listed ahead: opening it asked Notion nothing. (Listing a room makes
        # it the focus: its shelves may be prefetched meanwhile, if not already.)
        opened = [r for r in after.log[len(before.log):]
                  if any(room.id.replace("-", "") in r.path.replace("-", "") for room in rooms)]
        assert opened == [], [r.path for r in opened]
