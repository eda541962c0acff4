"""The change-feed switches (rounded times, search lag, API edits) and the workspace edits."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from notionfs.emulator.feed import ChangeFeed
from notionfs.emulator.model import Block, FileSpec, Node, Page, paragraph
from tests.emulator.conftest import BIG_PAGE_CHILDREN, World, children, search_all, start_world
from tests.emulator.writing import Clock

T0 = datetime(2026, 3, 2, 10, 7, 45, 250000, tzinfo=UTC)
T0_ISO = "2026-03-02T10:07:45.250Z"
T0_MINUTE_ISO = "2026-03-02T10:07:00.000Z"
SORT = {"timestamp": "last_edited_time", "direction": "descending"}


@pytest.fixture
def clock(world: World) -> Clock:
    """Set at runtime, as a test of a running mount would."""
    clock = Clock(T0)
    world.emulator.clock = clock
    return clock


def as_block(node: Node) -> Block:
    assert isinstance(node, Block)
    return node


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sorted_search(client: httpx.Client, page_size: int = 4, **body: Any) -> list[dict[str, Any]]:
    """Every result of a search sorted by last edit, newest first, following cursors."""
    return search_all(client, sort=SORT, page_size=page_size, **body)


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in results]


def by_id(results: list[dict[str, Any]], object_id: str) -> dict[str, Any]:
    return next(r for r in results if r["id"] == object_id)


def edited(client: httpx.Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return str(response.json()["last_edited_time"])


def times_in(body: Any) -> list[str]:
    """Every created_time / last_edited_time string in an answer, nested ones too."""
    if isinstance(body, list):
        return [t for item in body for t in times_in(item)]
    if not isinstance(body, dict):
        return []
    found = []
    for key, value in body.items():
        if key in ("created_time", "last_edited_time") and isinstance(value, str):
            found.append(value)
        else:
            found.extend(times_in(value))
    return found


def title_of(result: dict[str, Any]) -> str:
    if result["object"] == "page":
        prop = next(p for p in result["properties"].values() if p["type"] == "title")
        return "".join(run["plain_text"] for run in prop["title"])
    return "".join(run["plain_text"] for run in result["title"])


# ---- minute-rounded times -----------------------------------------------------------------


def answers_with_times(world: World) -> list[Any]:
    """One answer of each kind that carries times."""
    refs, new, old = world.refs, world.client(), world.client("2022-06-28")
    source = refs.tasks.data_sources[0]
    return [
        new.get(f"/v1/pages/{refs.home.id}").json(),
        new.get(f"/v1/pages/{refs.rows[0].id}").json(),  # Created / Edited properties
        new.get(f"/v1/blocks/{refs.image_block.id}").json(),
        children(new, refs.home.id),
        new.get(f"/v1/databases/{refs.tasks.id}").json(),
        old.get(f"/v1/databases/{refs.tasks.id}").json(),
        new.get(f"/v1/data_sources/{source.id}").json(),
        new.post(f"/v1/data_sources/{source.id}/query", json={"page_size": 5}).json(),
        sorted_search(new, page_size=50),
        sorted_search(old, page_size=50),
    ]


def test_times_are_exact_by_default(world: World, clock: Clock) -> None:
    times = times_in(answers_with_times(world))
    assert any(not t.endswith(":00.000Z") for t in times)
    world.emulator.touch(world.refs.home)
    assert edited(world.client(), f"/v1/pages/{world.refs.home.id}") == T0_ISO


def test_rounding_rounds_every_answer_down_to_the_minute(world: World, clock: Clock) -> None:
    feed = world.emulator.feed
    feed.round_times_to_minute = True
    world.emulator.touch(world.refs.home)
    answers = answers_with_times(world)
    times = times_in(answers)
    assert len(times) > 100
    rounded = re.compile(r":00\.000(Z|\+00:00)$")
    assert all(rounded.search(t) for t in times), [t for t in times if not rounded.search(t)]
    row = answers[1]["properties"]
    assert row["Edited"]["last_edited_time"].endswith(":00.000Z")
    assert row["Created"]["created_time"].endswith(":00.000Z")
    client = world.client()
    assert edited(client, f"/v1/pages/{world.refs.home.id}") == T0_MINUTE_ISO  # down, not up
    # A signed URL keeps its exact expiry: only object times are rounded.
    world.emulator.filehost.clock = lambda: T0.timestamp()
    image = client.get(f"/v1/blocks/{world.refs.image_block.id}").json()["image"]["file"]
    assert image["expiry_time"] == "2026-03-02T11:07:45.000Z"
    feed.round_times_to_minute = False
    assert edited(client, f"/v1/pages/{world.refs.home.id}") == T0_ISO


def test_search_sorts_by_the_rounded_time(world: World, clock: Clock) -> None:
    refs, client = world.refs, world.client()
    for page in (refs.big_page, refs.nested, refs.in_column):  # in this order, 5 s apart
        world.emulator.touch(page)
        clock.advance(seconds=5)
    exact = sorted_search(client)
    assert ids(exact)[:3] == [refs.in_column.id, refs.nested.id, refs.big_page.id]

    world.emulator.feed.round_times_to_minute = True
    rounded = sorted_search(client)
    # Tied, so no longer newest first: in the emulator's fixed order (the workspace's).
    assert ids(rounded)[:3] == [refs.nested.id, refs.in_column.id, refs.big_page.id]
    assert {r["last_edited_time"] for r in rounded[:3]} == {T0_MINUTE_ISO}
    times = [r["last_edited_time"] for r in rounded]
    assert times == sorted(times, reverse=True)
    assert sorted(ids(rounded)) == sorted(ids(exact))


def test_sorted_pages_lose_and_repeat_nothing_when_times_tie(
    world: World, clock: Clock
) -> None:
    world.emulator.feed.round_times_to_minute = True
    clock.now = T0.replace(second=0)
    tied = world.refs.rows[:40]
    for row in tied:
        world.emulator.touch(row)
        clock.advance(seconds=1)
    client = world.client()
    whole = sorted_search(client, page_size=100)
    for page_size in (1, 3, 8):  # short pages on: page sizes vary along the way
        paged = sorted_search(client, page_size=page_size)
        assert ids(paged) == ids(whole)
    assert len(set(ids(whole))) == len(whole)
    assert set(ids(whole)[:40]) == {row.id for row in tied}
    assert {r["last_edited_time"] for r in whole[:40]} == {T0_MINUTE_ISO}


# ---- search lags behind edits -------------------------------------------------------------


def test_without_lag_an_edit_leads_search_at_once(world: World, clock: Clock) -> None:
    page = world.refs.big_page
    world.emulator.changes.edit_text(as_block(page.children[0]), "line 0, edited")
    first = sorted_search(world.client())[0]
    assert (first["id"], first["last_edited_time"]) == (page.id, T0_ISO)


def test_a_lagging_edit_leads_sorted_search_only_after_the_lag(
    world: World, clock: Clock
) -> None:
    world.emulator.feed.search_lag_s = 30
    client = world.client()
    page = world.refs.big_page
    before = sorted_search(client)
    assert ids(before)[0] != page.id
    old_time = by_id(before, page.id)["last_edited_time"]

    world.emulator.changes.edit_text(as_block(page.children[0]), "line 0, edited")
    # Reading the page and its blocks shows the edit at once.
    assert edited(client, f"/v1/pages/{page.id}") == T0_ISO
    first_block = children(client, page.id)[0]
    assert first_block["paragraph"]["rich_text"][0]["plain_text"] == "line 0, edited"
    # Search still has the page as it was, where it was.
    during = sorted_search(client)
    assert ids(during) == ids(before)
    assert by_id(during, page.id)["last_edited_time"] == old_time

    clock.advance(seconds=29.9)
    assert ids(sorted_search(client)) == ids(before)
    clock.advance(seconds=0.1)
    after = sorted_search(client)
    assert (ids(after)[0], after[0]["last_edited_time"]) == (page.id, T0_ISO)
    assert sorted(ids(after)) == sorted(ids(before))


def test_edits_within_the_lag_show_together_after_the_last(
    world: World, clock: Clock
) -> None:
    world.emulator.feed.search_lag_s = 30
    client = world.client()
    page = world.refs.big_page
    old_time = by_id(sorted_search(client), page.id)["last_edited_time"]
    world.emulator.changes.edit_text(as_block(page.children[0]), "first edit")
    clock.advance(seconds=20)
    world.emulator.changes.rename(page, "Big page, renamed")
    clock.advance(seconds=20)  # 40 s after the first edit, 20 s after the second
    result = by_id(sorted_search(client), page.id)
    assert (title_of(result), result["last_edited_time"]) == ("Big page", old_time)
    clock.advance(seconds=10)
    result = sorted_search(client)[0]
    assert (title_of(result), result["last_edited_time"]) == (
        "Big page, renamed", iso(T0 + timedelta(seconds=20))
    )


def test_a_new_page_enters_search_after_the_lag(world: World, clock: Clock) -> None:
    world.emulator.feed.search_lag_s = 10
    client = world.client()
    home = world.refs.home
    page = world.emulator.changes.add_page(home, "Fresh page", [paragraph("hello")])
    body = client.get(f"/v1/pages/{page.id}").json()
    assert (body["created_time"], body["last_edited_time"]) == (T0_ISO, T0_ISO)
    assert page.id in ids(children(client, home.id))
    assert search_all(client, query="Fresh page") == []
    assert page.id not in ids(sorted_search(client))
    clock.advance(seconds=10)
    assert ids(search_all(client, query="Fresh page")) == [page.id]
    # Its parent's content changed too: both lead, at the same time.
    assert set(ids(sorted_search(client))[:2]) == {page.id, home.id}


def test_a_rename_reaches_search_after_the_lag(world: World, clock: Clock) -> None:
    world.emulator.feed.search_lag_s = 10
    client = world.client()
    nested = world.refs.nested
    world.emulator.changes.rename(nested, "Renamed nested")
    assert title_of(client.get(f"/v1/pages/{nested.id}").json()) == "Renamed nested"
    assert search_all(client, query="Renamed nested") == []
    [old] = search_all(client, query="Nested in toggle")
    assert (old["id"], title_of(old)) == (nested.id, "Nested in toggle")
    clock.advance(seconds=10)
    assert search_all(client, query="Nested in toggle") == []
    [new] = search_all(client, query="Renamed nested")
    assert (new["id"], new["last_edited_time"]) == (nested.id, T0_ISO)


def test_a_new_row_enters_search_after_the_lag(world: World, clock: Clock) -> None:
    world.emulator.feed.search_lag_s = 10
    client = world.client()
    source = world.refs.tasks.data_sources[0]
    row = world.emulator.changes.add_row(world.refs.tasks, "New task", {"Count": 7})
    listed = search_all_rows(client, source.id)
    assert by_id(listed, row.id)["properties"]["Name"]["title"][0]["plain_text"] == "New task"
    assert by_id(listed, row.id)["properties"]["Count"]["number"] == 7
    assert search_all(client, query="New task") == []
    clock.advance(seconds=10)
    [found] = search_all(client, query="New task")
    assert found["parent"]["data_source_id"] == source.id


def search_all_rows(client: httpx.Client, source_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    body: dict[str, Any] = {}
    while True:
        page = client.post(f"/v1/data_sources/{source_id}/query", json=body).json()
        rows.extend(page["results"])
        if not page["has_more"]:
            return rows
        body["start_cursor"] = page["next_cursor"]


@pytest.mark.parametrize("version", ["2022-06-28", "2025-09-03"])
def test_a_database_rename_reaches_search_after_the_lag(
    world: World, clock: Clock, version: str
) -> None:
    world.emulator.feed.search_lag_s = 10
    client = world.client(version)
    tasks = world.refs.tasks
    kind = "database" if version == "2022-06-28" else "data_source"
    found_id = tasks.id if kind == "database" else tasks.data_sources[0].id
    [before] = search_all(client, query="Tasks", filter={"property": "object", "value": kind})
    world.emulator.changes.rename(tasks, "Todo")
    assert title_of(client.get(f"/v1/databases/{tasks.id}").json()) == "Todo"
    assert search_all(client, query="Todo") == []
    [during] = search_all(client, query="Tasks", sort=SORT)
    assert (during["id"], during["last_edited_time"]) == (found_id, before["last_edited_time"])
    clock.advance(seconds=10)
    [after] = search_all(client, query="Todo", sort=SORT)
    assert (after["id"], title_of(after), after["last_edited_time"]) == (found_id, "Todo", T0_ISO)


# ---- trash --------------------------------------------------------------------------------


def test_a_trashed_page_leaves_search_at_once(world: World, clock: Clock) -> None:
    world.emulator.feed.search_lag_s = 30  # removal does not wait for the index
    refs, client = world.refs, world.client()
    below = {refs.nested.id, refs.in_column.id, refs.rows[0].id}  # pages and rows under home
    before = set(ids(sorted_search(client, page_size=50)))
    assert {refs.home.id, *below} <= before
    world.emulator.changes.trash(refs.home)
    after = set(ids(sorted_search(client, page_size=50)))
    assert not ({refs.home.id, *below} & after)
    assert refs.big_page.id in after
    body = client.get(f"/v1/pages/{refs.home.id}").json()
    assert (body["in_trash"], body["last_edited_time"]) == (True, T0_ISO)


def test_trashing_a_child_page_edits_its_parent(world: World, clock: Clock) -> None:
    refs, client = world.refs, world.client()
    world.emulator.changes.trash(refs.nested)  # in a toggle on the home page
    assert refs.nested.id not in ids(search_all(client))
    assert refs.nested.id not in ids(children(client, refs.toggle_block.id))
    assert edited(client, f"/v1/pages/{refs.home.id}") == T0_ISO
    assert sorted_search(client)[0]["id"] == refs.home.id


def test_trashing_a_file_block(world: World, clock: Clock) -> None:
    refs, client = world.refs, world.client()
    world.emulator.changes.trash(refs.image_block)
    assert refs.image_block.id not in ids(children(client, refs.home.id))
    assert edited(client, f"/v1/pages/{refs.home.id}") == T0_ISO


# ---- who edits ----------------------------------------------------------------------------


def test_api_content_edits_move_the_page_time_by_default(world: World, clock: Clock) -> None:
    home, client = world.refs.home, world.client()
    world.emulator.changes.edit_text(as_block(home.children[0]), "Welcome back", by="api")
    assert edited(client, f"/v1/pages/{home.id}") == T0_ISO


def test_api_content_edits_can_leave_the_page_time_alone(
    world: World, clock: Clock
) -> None:
    world.emulator.feed.api_edits_move_edit_time = False
    changes, home, client = world.emulator.changes, world.refs.home, world.client()
    old = edited(client, f"/v1/pages/{home.id}")
    order = ids(sorted_search(client))
    welcome = as_block(home.children[0])
    changes.edit_text(welcome, "Welcome back", by="api")
    block = client.get(f"/v1/blocks/{welcome.id}").json()
    assert block["paragraph"]["rich_text"][0]["plain_text"] == "Welcome back"
    assert block["last_edited_time"] == T0_ISO  # the block itself is edited
    added = changes.add_file(home, FileSpec("api.txt", data=b"by api"), by="api")
    assert added.id in ids(children(client, home.id))
    assert edited(client, f"/v1/pages/{home.id}") == old
    assert ids(sorted_search(client)) == order

    clock.advance(seconds=60)
    changes.edit_text(welcome, "Welcome, person", by="person")
    assert edited(client, f"/v1/pages/{home.id}") == iso(T0 + timedelta(seconds=60))


def test_a_change_inside_a_child_page_leaves_its_parent_alone(
    world: World, clock: Clock
) -> None:
    refs, changes, client = world.refs, world.emulator.changes, world.client()
    old = edited(client, f"/v1/pages/{refs.home.id}")
    changes.edit_text(as_block(refs.nested.children[0]), "deeper")
    changes.add_file(refs.nested, FileSpec("inner.txt", data=b"inner"))
    changes.rename(refs.nested, "Nested, renamed")
    assert edited(client, f"/v1/pages/{refs.nested.id}") == T0_ISO
    assert edited(client, f"/v1/pages/{refs.home.id}") == old


# ---- the edits ----------------------------------------------------------------------------


def test_move_a_page(world: World, clock: Clock) -> None:
    refs, client = world.refs, world.client()
    [columns] = [c for c in refs.home.children if isinstance(c, Block) and c.type == "column_list"]
    column = as_block(columns.children[0])
    world.emulator.changes.move(refs.in_column, refs.big_page)
    body = client.get(f"/v1/pages/{refs.in_column.id}").json()
    assert body["parent"] == {"type": "page_id", "page_id": refs.big_page.id}
    assert body["last_edited_time"] == T0_ISO
    assert ids(children(client, refs.big_page.id))[-1] == refs.in_column.id
    assert refs.in_column.id not in ids(children(client, column.id))
    # Both pages whose content changed are edited; the moved page is found under its new one.
    assert edited(client, f"/v1/pages/{refs.home.id}") == T0_ISO
    assert edited(client, f"/v1/pages/{refs.big_page.id}") == T0_ISO
    [found] = search_all(client, query="In a column")
    assert found["parent"]["page_id"] == refs.big_page.id


def test_move_to_the_top_level_and_into_itself(world: World, clock: Clock) -> None:
    refs, changes, client = world.refs, world.emulator.changes, world.client()
    changes.move(refs.nested, None)
    body = client.get(f"/v1/pages/{refs.nested.id}").json()
    assert body["parent"] == {"type": "workspace", "workspace": True}
    with pytest.raises(ValueError):
        changes.move(refs.home, refs.in_column)
    with pytest.raises(ValueError):
        changes.move(refs.home, refs.home)


def test_add_and_replace_a_file(world: World, clock: Clock) -> None:
    page, changes, client = world.refs.big_page, world.emulator.changes, world.client()
    block = changes.add_file(page, FileSpec("data.bin", data=b"one"), caption="v1")
    last = children(client, page.id)[-1]
    assert (last["id"], last["type"], last["file"]["name"]) == (block.id, "file", "data.bin")
    assert (last["created_time"], last["last_edited_time"]) == (T0_ISO, T0_ISO)
    first_url = last["file"]["file"]["url"]
    assert world.download(first_url) == b"one"
    assert edited(client, f"/v1/pages/{page.id}") == T0_ISO

    clock.advance(seconds=90)
    spec = changes.replace_file(block, b"two, longer")
    assert spec.id and spec is block.file
    body = client.get(f"/v1/blocks/{block.id}").json()
    new_url = body["file"]["file"]["url"]
    assert urlsplit(new_url).path != urlsplit(first_url).path
    assert body["file"]["name"] == "data.bin"
    assert world.download(new_url) == b"two, longer"
    later = iso(T0 + timedelta(seconds=90))
    assert (body["created_time"], body["last_edited_time"]) == (T0_ISO, later)
    assert edited(client, f"/v1/pages/{page.id}") == later


def test_edit_text_needs_a_text_block(world: World, clock: Clock) -> None:
    with pytest.raises(ValueError):
        world.emulator.changes.edit_text(world.refs.image_block, "no text here")


def test_touch_stamps_the_feed_clock(world: World, clock: Clock) -> None:
    world.emulator.touch(world.refs.image_block)
    assert edited(world.client(), f"/v1/blocks/{world.refs.image_block.id}") == T0_ISO


@pytest.fixture
def built_with_switches() -> Iterator[tuple[World, Clock]]:
    clock = Clock(T0)
    world = start_world(feed=ChangeFeed(round_times_to_minute=True, search_lag_s=5))
    world.emulator.clock = clock
    try:
        yield world, clock
    finally:
        world.close()
        world.emulator.stop()


def test_switches_from_the_constructor(built_with_switches: tuple[World, Clock]) -> None:
    world, clock = built_with_switches
    client = world.client()
    page = world.emulator.changes.add_page(None, "Top level", [Page("Under it")])
    assert edited(client, f"/v1/pages/{page.id}") == T0_MINUTE_ISO
    assert search_all(client, query="Top level") == []
    assert not world.emulator.feed.settled()
    clock.advance(seconds=5)
    assert world.emulator.feed.settled()
    [found] = search_all(client, query="Top level")
    assert found["last_edited_time"] == T0_MINUTE_ISO
    assert ids(search_all(client, query="Under it")) == [page.children[0].id]


def test_a_remote_edit_reaches_search_after_the_lag(world: World, clock: Clock) -> None:
    """Emulator.remote_edit (the writes' conflicting edit by a person) lags in search too."""
    world.emulator.feed.search_lag_s = 10
    client = world.client()
    nested = world.refs.nested
    world.emulator.remote_edit(nested.id, title="Edited elsewhere")
    assert title_of(client.get(f"/v1/pages/{nested.id}").json()) == "Edited elsewhere"
    assert search_all(client, query="Edited elsewhere") == []
    clock.advance(seconds=10)
    assert ids(search_all(client, query="Edited elsewhere")) == [nested.id]


def test_requests_never_see_half_an_edit(world: World) -> None:
    """Listings running while pages are added and moved answer 200 throughout."""
    home, statuses, done = world.refs.home, [], threading.Event()

    def list_home() -> None:
        client = world.client()
        while not done.is_set():
            statuses.append(client.get(f"/v1/blocks/{home.id}/children").status_code)

    reader = threading.Thread(target=list_home)
    reader.start()
    try:
        for i in range(30):
            page = world.emulator.changes.add_page(home, f"Busy {i}")
            world.emulator.changes.move(page, world.refs.big_page)
    finally:
        done.set()
        reader.join()
    assert statuses and set(statuses) == {200}
    assert len(children(world.client(), world.refs.big_page.id)) == BIG_PAGE_CHILDREN + 30
