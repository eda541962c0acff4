"""The change feed over the emulator's search (real loopback HTTP, calls counted), and the
relations that route a change to the listings that show it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.emulator.model import Page, Workspace
from notionfs.emulator.server import Emulator
from notionfs.feed import Change, ChangeFeed
from notionfs.nodes import ROOT_KEY
from notionfs.relations import Relations

SEARCH = "POST /v1/search"


def _edited(page: Page, minutes_ago: float) -> None:
    page.last_edited_time = datetime.now(UTC) - timedelta(minutes=minutes_ago)


@pytest.fixture
def world() -> Iterator[tuple[Emulator, NotionClient, list[Page]]]:
    pages = [Page(f"Page {i}") for i in range(230)]
    for i, page in enumerate(pages):
        _edited(page, 60 + i)  # all edited an hour or more ago
    with Emulator(Workspace(name="Feed", pages=pages)) as emulator:
        settings = Settings(token=emulator.token, api_url=emulator.api_url,
                            rate_limit_rps=1000.0, rate_limit_burst=1000)
        with NotionClient(settings) as client:
            yield emulator, client, pages


def test_an_idle_workspace_costs_one_call_per_poll(world) -> None:
    emulator, client, _ = world
    feed = ChangeFeed(client, lag_window_s=300)
    assert feed.poll() == []
    before = emulator.counters.calls(SEARCH)
    for _ in range(3):
        assert feed.poll() == []
    assert emulator.counters.calls(SEARCH) - before == 3  # one call each, no paging


def test_an_edit_is_reported_and_only_that_one(world) -> None:
    emulator, client, pages = world
    feed = ChangeFeed(client, lag_window_s=300, rounding_window_s=0)
    feed.poll()
    emulator.touch(pages[7])
    changes = feed.poll()
    assert [c.object_id for c in changes] == [pages[7].id]
    assert changes[0].kind == "page" and changes[0].parent_type == "workspace"
    assert feed.poll() == []  # reported once: the same edit time is not news


def test_edits_within_the_rounding_window_are_reported_until_it_closes(world) -> None:
    emulator, client, pages = world
    now = [datetime.now(UTC).timestamp()]
    feed = ChangeFeed(client, lag_window_s=300, rounding_window_s=90,
                      wall_clock=lambda: now[0])
    feed.poll()
    emulator.touch(pages[3])
    assert len(feed.poll()) == 1
    now[0] += 30
    assert len(feed.poll()) == 1  # a second edit in the same minute would look the same
    now[0] += 120
    assert feed.poll() == []


def test_a_late_edit_within_the_lag_window_is_still_found(world) -> None:
    emulator, client, pages = world
    feed = ChangeFeed(client, lag_window_s=300, rounding_window_s=0)
    feed.poll()
    _edited(pages[5], 2)  # appears now, though made two minutes ago (search lagged)
    emulator.refresh()
    assert [c.object_id for c in feed.poll()] == [pages[5].id]


def test_a_restored_mark_reports_what_changed_while_away_paging_as_far_as_needed(world) -> None:
    emulator, client, pages = world
    for page in pages[:110]:
        _edited(page, 20)
    emulator.refresh()
    mark = (datetime.now(UTC) - timedelta(minutes=30)).timestamp()
    feed = ChangeFeed(client, mark=mark, lag_window_s=60)
    before = emulator.counters.calls(SEARCH)
    changes = feed.poll()
    assert len(changes) == 110
    # 230 results in all: the second page reaches older edits, and paging stops there
    assert emulator.counters.calls(SEARCH) - before == 2
    assert feed.mark is not None and feed.mark > mark


def _change(kind: str, object_id: str, parent_type: str, parent_id: str | None,
            database_id: str | None = None, title: str | None = None) -> Change:
    return Change(object_id, kind, 0.0, parent_type, parent_id, database_id, title)


def test_relations_route_a_change_to_its_folders() -> None:
    relations = Relations()
    relations.record(ROOT_KEY, [("page:top", "Top")], [])
    relations.record("page:top", [("page:child", "Child"), ("db:d1", "Table")],
                     ["toggle1", "column1"])
    relations.record("db:d1", [("page:row1", "Row one")], [])
    # a page whose text changed: its own folder only, not the folders around it
    assert relations.affected(_change("page", "child", "page_id", "top", title="Child")) == {
        "page:child"}
    assert relations.affected(_change("page", "top", "workspace", None, title="Top")) == {
        "page:top"}
    # renamed: the folder listing it too
    assert relations.affected(_change("page", "child", "page_id", "top", title="Kid")) == {
        "page:child", "page:top"}
    # moved into a toggle of "top" from elsewhere: its old and its new folder
    relations.record("page:other", [("page:mover", "Mover")], [])
    assert relations.affected(
        _change("page", "mover", "block_id", "toggle1", title="Mover")
    ) == {"page:mover", "page:other", "page:top"}
    # a row: the row's folder and its database's (index.csv shows its properties)
    assert relations.affected(
        _change("page", "row1", "data_source_id", "ds1", "d1", title="Row one")
    ) == {"page:row1", "db:d1", "ds:ds1"}
    # a new row of a single-source database shows in the database's folder
    assert "db:d1" in relations.affected(
        _change("page", "row2", "data_source_id", "ds1", "d1", title="Row two"))
    # a data source (2025-09-03 search): its folder, its database's, and where that sits
    assert relations.affected(
        _change("data_source", "ds1", "database_id", "d1", "d1", title="Table")
    ) == {"ds:ds1", "db:d1", "page:top"}
    # a new top-level page
    assert relations.affected(_change("page", "new", "workspace", None, title="New")) == {
        "page:new", ROOT_KEY}
    # a folder re-listed without a child forgets it
    relations.record("page:top", [("db:d1", "Table")], [])
    assert relations.affected(_change("page", "child", "page_id", "gone", title="Child")) == {
        "page:child", "page:gone"}
