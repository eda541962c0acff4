"""Pagination: opaque cursors, short pages, page_size and cursor validation."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest

from notionfs.emulator.api import (
    MAX_PAGE_SIZE,
    SHORT_PAGE_DEFICIT,
    ApiFailure,
    paginate,
)
from tests.emulator.conftest import (
    BIG_PAGE_CHILDREN,
    TASK_ROWS,
    UUID_DASHED,
    World,
    assert_error,
    search_all,
    start_world,
)


def key(position: int, item: str) -> str:
    return item


ITEMS = [f"item-{i}" for i in range(50)]


def walk_pages(page_size: int, short_pages: bool) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        part = paginate(
            ITEMS, key, start_cursor=cursor, page_size=page_size, short_pages=short_pages
        )
        pages.append(part.items)
        if not part.has_more:
            assert part.next_cursor is None
            return pages
        assert part.next_cursor is not None
        cursor = part.next_cursor


def test_paginate_covers_everything_once_with_short_pages() -> None:
    pages = walk_pages(10, short_pages=True)
    assert [len(p) for p in pages] == [
        10,
        10 - SHORT_PAGE_DEFICIT,
        10,
        10,
        10 - SHORT_PAGE_DEFICIT,
        10,
        4,
    ]
    assert [item for page in pages for item in page] == ITEMS


def test_paginate_full_pages_without_short_pages() -> None:
    pages = walk_pages(10, short_pages=False)
    assert [len(p) for p in pages] == [10] * 5


def test_paginate_short_page_never_empty() -> None:
    pages = walk_pages(3, short_pages=True)
    assert all(pages) and [i for p in pages for i in p] == ITEMS


def test_paginate_empty_list() -> None:
    part = paginate([], key, start_cursor=None, page_size=10, short_pages=True)
    assert part.items == [] and part.has_more is False and part.next_cursor is None


def test_cursor_is_an_opaque_uuid_as_notions() -> None:
    cursor = paginate(ITEMS, key, start_cursor=None, page_size=10, short_pages=False).next_cursor
    assert cursor is not None
    assert UUID_DASHED.fullmatch(cursor)  # Notion's cursors are UUIDs (recorded)
    assert "item-10" not in cursor


def _cursor_for(page_no: int, item: str) -> str:
    """A well-formed cursor for ``item`` at page ``page_no``, made the way paginate does."""
    raw = f"{page_no:08x}" + hashlib.sha256(item.encode()).hexdigest()[:24]
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def test_cursor_names_the_next_item() -> None:
    cursor = paginate(ITEMS, key, start_cursor=None, page_size=10, short_pages=False).next_cursor
    assert cursor == _cursor_for(1, "item-10")
    part = paginate(ITEMS, key, start_cursor=cursor, page_size=10, short_pages=False)
    assert part.items[0] == "item-10"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "10",
        base64.urlsafe_b64encode(b"1:item-3").decode(),  # the old, non-UUID form
        _cursor_for(1, "not-an-item"),
        _cursor_for(0, "item-3"),  # page 0 is never a "next" page
        _cursor_for(1, "item-3").upper(),
    ],
)
def test_paginate_rejects_bad_cursors(cursor: str) -> None:
    with pytest.raises(ApiFailure) as failure:
        paginate(ITEMS, key, start_cursor=cursor, page_size=10, short_pages=False)
    assert failure.value.status == 400 and failure.value.code == "validation_error"


# ---- over HTTP ----------------------------------------------------------------------------


def list_children(
    client: httpx.Client, block_id: str, page_size: int | None = None
) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {} if page_size is None else {"page_size": page_size}
    while True:
        body = client.get(f"/v1/blocks/{block_id}/children", params=params).json()
        pages.append(body)
        if not body["has_more"]:
            return pages
        params["start_cursor"] = body["next_cursor"]


def test_children_past_100_with_a_short_page(world: World) -> None:
    pages = list_children(world.client(), world.refs.big_page.id)
    sizes = [len(p["results"]) for p in pages]
    assert sizes[0] == MAX_PAGE_SIZE
    assert sum(sizes) == BIG_PAGE_CHILDREN
    texts = [b["paragraph"]["rich_text"][0]["plain_text"] for p in pages for b in p["results"]]
    assert texts == [f"line {i}" for i in range(BIG_PAGE_CHILDREN)]
    for page in pages:
        assert page["object"] == "list" and page["type"] == "block" and page["block"] == {}
        assert page["request_id"]


def test_short_page_still_has_more(world: World) -> None:
    pages = list_children(world.client(), world.refs.big_page.id, page_size=20)
    short = [p for p in pages if len(p["results"]) < 20 and p["has_more"]]
    assert short, "a page shorter than page_size that is not the last one"
    assert sum(len(p["results"]) for p in pages) == BIG_PAGE_CHILDREN


def test_short_pages_can_be_turned_off(world: World) -> None:
    world.emulator.short_pages = False
    pages = list_children(world.client(), world.refs.big_page.id, page_size=20)
    assert [len(p["results"]) for p in pages] == [20] * 6 + [10]


def test_short_pages_off_from_the_constructor() -> None:
    world = start_world(short_pages=False)
    try:
        pages = list_children(world.client(), world.refs.big_page.id, page_size=30)
        assert [len(p["results"]) for p in pages] == [30, 30, 30, 30, 10]
    finally:
        world.close()
        world.emulator.stop()


@pytest.mark.parametrize("size", ["101", "0", "-1", "abc"])
def test_bad_page_size_in_query_is_400(world: World, size: str) -> None:
    response = world.client().get(
        f"/v1/blocks/{world.refs.big_page.id}/children", params={"page_size": size}
    )
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("size", [101, 0, "10", True])
def test_bad_page_size_in_body_is_400(world: World, size: object) -> None:
    assert_error(
        world.client().post("/v1/search", json={"page_size": size}), 400, "validation_error"
    )


def test_bad_cursor_is_400(world: World) -> None:
    client = world.client()
    response = client.get(
        f"/v1/blocks/{world.refs.big_page.id}/children", params={"start_cursor": "nonsense"}
    )
    assert_error(response, 400, "validation_error")
    assert_error(
        client.post("/v1/search", json={"start_cursor": "nonsense"}), 400, "validation_error"
    )


def test_cursor_from_another_listing_is_400(world: World) -> None:
    client = world.client()
    first = client.get(f"/v1/blocks/{world.refs.big_page.id}/children").json()
    ds_id = world.refs.tasks.data_sources[0].id
    response = client.post(
        f"/v1/data_sources/{ds_id}/query", json={"start_cursor": first["next_cursor"]}
    )
    assert_error(response, 400, "validation_error")


def test_search_pages_through_everything(world: World) -> None:
    client = world.client()
    small = search_all(client, page_size=25)
    whole = search_all(client)
    assert [r["id"] for r in small] == [r["id"] for r in whole]
    assert len({r["id"] for r in small}) == len(small)
    assert len(small) > TASK_ROWS  # rows are pages too, and search returns them


def test_query_rows_past_100(world: World) -> None:
    client = world.client("2022-06-28")
    ids: list[str] = []
    body: dict[str, Any] = {}
    sizes = []
    while True:
        page = client.post(f"/v1/databases/{world.refs.tasks.id}/query", json=body).json()
        ids.extend(r["id"] for r in page["results"])
        sizes.append(len(page["results"]))
        if not page["has_more"]:
            break
        body = {"start_cursor": page["next_cursor"]}
    assert ids == [row.id for row in world.refs.rows]
    assert sizes == [100, TASK_ROWS - 100]
