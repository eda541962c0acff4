"""The official Python SDK (notion-client) against the emulator, for 2022-06-28 and 2025-09-03."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from notion_client import APIErrorCode, APIResponseError, Client
from notion_client.helpers import collect_paginated_api, iterate_paginated_api

from tests.emulator.conftest import (
    BIG_PAGE_CHILDREN,
    TASK_ROWS,
    TOKEN,
    World,
    plain_http_client,
)

V2022, V2025 = "2022-06-28", "2025-09-03"


@pytest.fixture(params=[V2022, V2025])
def sdk(request: pytest.FixtureRequest, world: World) -> Iterator[Client]:
    # notion-client 3.x takes the version as notion_version and appends /v1/ to base_url.
    client = Client(
        auth=TOKEN,
        base_url=world.emulator.api_url,
        notion_version=request.param,
        client=plain_http_client(),
    )
    try:
        yield client
    finally:
        client.close()


def test_users_me(sdk: Client) -> None:
    me = sdk.users.me()
    assert me["type"] == "bot"
    assert me["bot"]["workspace_name"] == "Test Space"


def test_search_over_several_pages(sdk: Client, world: World) -> None:
    calls_before = world.emulator.counters.calls("POST /v1/search")
    results = collect_paginated_api(sdk.search, page_size=20)
    calls = world.emulator.counters.calls("POST /v1/search") - calls_before
    assert calls >= 7  # more than 120 results at 20 per page, some pages short
    ids = [r["id"] for r in results]
    assert len(ids) == len(set(ids))
    refs = world.refs
    expected_pages = {refs.home.id, refs.nested.id, refs.secret_child.id, refs.big_page.id}
    expected_pages |= {row.id for row in refs.rows}
    assert expected_pages <= set(ids)
    assert refs.secret.id not in ids and refs.trashed_page.id not in ids
    containers = {r["object"] for r in results} - {"page"}
    assert containers == ({"database"} if sdk.options.notion_version == V2022 else {"data_source"})


def test_children_past_100(sdk: Client, world: World) -> None:
    blocks = collect_paginated_api(sdk.blocks.children.list, block_id=world.refs.big_page.id)
    assert len(blocks) == BIG_PAGE_CHILDREN
    assert blocks[-1]["paragraph"]["rich_text"][0]["plain_text"] == f"line {BIG_PAGE_CHILDREN - 1}"
    lazily = iterate_paginated_api(
        sdk.blocks.children.list, block_id=world.refs.big_page.id.replace("-", ""), page_size=50
    )
    assert [b["id"] for b in lazily] == [b["id"] for b in blocks]


def query_rows(sdk: Client, world: World) -> list[dict[str, Any]]:
    if sdk.options.notion_version == V2022:
        # notion-client 3.x dropped databases.query; the raw request still works.
        def query(**body: Any) -> Any:
            return sdk.request(
                path=f"databases/{world.refs.tasks.id}/query", method="POST", body=body
            )

        return collect_paginated_api(query)
    data_source_id = world.refs.tasks.data_sources[0].id
    return collect_paginated_api(sdk.data_sources.query, data_source_id=data_source_id)


def test_query_more_than_100_rows(sdk: Client, world: World) -> None:
    rows = query_rows(sdk, world)
    assert len(rows) == TASK_ROWS > 100
    assert [r["id"] for r in rows] == [row.id for row in world.refs.rows]
    parent_type = rows[0]["parent"]["type"]
    assert parent_type == (
        "database_id" if sdk.options.notion_version == V2022 else "data_source_id"
    )


def test_file_block_url_downloads_the_spec_bytes(sdk: Client, world: World) -> None:
    blocks = collect_paginated_api(sdk.blocks.children.list, block_id=world.refs.home.id)
    image = next(b for b in blocks if b["type"] == "image")
    with plain_http_client() as http:
        response = http.get(image["image"]["file"]["url"])
    assert response.status_code == 200
    assert response.content == world.refs.image.data


def test_sdk_understands_emulator_errors(sdk: Client) -> None:
    with pytest.raises(APIResponseError) as raised:
        sdk.pages.retrieve(page_id="0123456789abcdef0123456789abcdef")
    assert raised.value.code == APIErrorCode.ObjectNotFound
    assert raised.value.status == 404


def test_sdk_retries_a_forced_429(sdk: Client, world: World) -> None:
    world.emulator.faults.force_429 = 1
    world.emulator.faults.retry_after_s = 0
    assert sdk.users.me()["type"] == "bot"
    assert world.emulator.counters.by_status[429] == 1
