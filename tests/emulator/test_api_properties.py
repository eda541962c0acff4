"""Property values as Notion publishes them: every type, the 25-reference cap, property items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import Workspace
from notionfs.emulator.render import person_user_id, property_id
from notionfs.emulator.server import Emulator

from .conftest import UUID_DASHED, plain_http_client

VERSIONS = ["2022-06-28", "2025-09-03", "2026-03-11"]


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return samples.every_property()


@pytest.fixture(scope="module")
def emulator(workspace: Workspace) -> Iterator[Emulator]:
    with Emulator(workspace) as emulator:
        yield emulator


@pytest.fixture(scope="module", params=VERSIONS)
def api(emulator: Emulator, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emulator.token}", "Notion-Version": request.param}
    with plain_http_client(base_url=emulator.api_url, headers=headers) as client:
        yield client


def _row(workspace: Workspace, title: str) -> Any:
    (row,) = [r for r in workspace.pages[0].data_sources[0].rows if r.title == title]
    return row


def _props(api: httpx.Client, workspace: Workspace, title: str) -> dict[str, Any]:
    response = api.get(f"/v1/pages/{_row(workspace, title).id}")
    assert response.status_code == 200
    props: dict[str, Any] = response.json()["properties"]
    return props


def _all_items(api: httpx.Client, page_id: str, name: str, kind: str,
               page_size: int = 10) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every item of a paginated property, following next_cursor; and the last summary."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": page_size}
    while True:
        response = api.get(f"/v1/pages/{page_id}/properties/{property_id(name, kind)}",
                           params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "list" and body["type"] == "property_item"
        items += body["results"]
        if not body["has_more"]:
            return items, body["property_item"]
        assert body["property_item"]["next_url"].endswith(body["next_cursor"])
        params["start_cursor"] = body["next_cursor"]


def test_every_type_has_its_published_shape(api: httpx.Client, workspace: Workspace) -> None:
    props = _props(api, workspace, "Full row")
    assert set(props) == set(samples.EVERY_PROPERTY_SCHEMA)
    for name, kind in samples.EVERY_PROPERTY_SCHEMA.items():
        assert props[name]["type"] == kind and props[name]["id"] == property_id(name, kind)
    assert props["When"]["date"] == {"start": "2026-01-05T10:00:00.000",
                                     "end": "2026-01-05T12:30:00.000",
                                     "time_zone": "Europe/Berlin"}
    assert [props[f"Formula {k}"]["formula"] for k in ("text", "number", "flag", "date")] == [
        {"type": "string", "string": "Alpha: 3.5"}, {"type": "number", "number": 7},
        {"type": "boolean", "boolean": True},
        {"type": "date", "date": {"start": "2026-01-05", "end": None, "time_zone": None}},
    ]
    assert props["Row ID"]["unique_id"] == {"prefix": "ROW", "number": 1}
    assert props["Action"]["button"] == {}
    ada, own = props["Owners"]["people"]
    # email_verified: recorded from 2025-09-03 on, not at 2022-06-28.
    verified_mail = {} if api.headers["Notion-Version"] == "2022-06-28" else {
        "email_verified": True}
    assert ada == {"object": "user", "id": samples.person("Ada Lindqvist")["id"],
                   "name": "Ada Lindqvist", "avatar_url": None, "type": "person",
                   "person": {"email": "ada@example.com", **verified_mail}}
    assert own["id"] == person_user_id(workspace) and own["type"] == "person"
    # created_by / last_edited_by values are partial users, as in the page object.
    assert props["Created by"]["created_by"] == {"object": "user", "id": own["id"]}
    assert props["Edited by"]["last_edited_by"] == {"object": "user", "id": own["id"]}
    verified = props["Verified"]["verification"]
    assert verified["state"] == "verified" and verified["date"]["start"] == "2026-01-05"
    assert verified["verified_by"]["name"] == "Ada Lindqvist"
    assert UUID_DASHED.match(props["Targets"]["relation"][0]["id"])
    assert props["Targets"]["has_more"] is False


def test_mentions_carry_plain_text(api: httpx.Client, workspace: Workspace) -> None:
    runs = _props(api, workspace, "Full row")["Notes"]["rich_text"]
    mentions = {run["mention"]["type"]: run for run in runs if run["type"] == "mention"}
    assert set(mentions) == {"page", "user", "date"}
    assert mentions["page"]["plain_text"] == "Target 01"
    assert mentions["page"]["href"] == (
        "https://app.notion.com/p/" + mentions["page"]["mention"]["page"]["id"].replace("-", ""))
    assert mentions["user"]["plain_text"] == "@Ada Lindqvist"
    assert mentions["user"]["mention"]["user"]["object"] == "user"
    assert mentions["date"]["mention"]["date"]["start"] == "2026-01-05"


def test_rollups(api: httpx.Client, workspace: Workspace) -> None:
    props = _props(api, workspace, "Full row")
    assert props["Points total"]["rollup"] == {"type": "number", "number": 3,
                                               "function": "sum"}
    assert props["Latest target"]["rollup"]["date"]["start"] == "2026-02-02"
    original = props["Target names"]["rollup"]
    assert original["type"] == "array" and original["function"] == "show_original"
    assert [item["title"][0]["plain_text"] for item in original["array"]] == [
        "Target 01", "Target 02"]
    empty = _props(api, workspace, "Empty row")
    assert empty["Points total"]["rollup"]["number"] is None
    assert empty["Verified"]["verification"] == {"state": "unverified", "date": None,
                                                 "verified_by": None}


def test_page_object_holds_at_most_25_references(api: httpx.Client,
                                                 workspace: Workspace) -> None:
    props = _props(api, workspace, "Many references")
    assert len(props["Targets"]["relation"]) == 25 and props["Targets"]["has_more"] is True
    assert len(props["Owners"]["people"]) == 25
    mentions = [run for run in props["Notes"]["rich_text"] if run["type"] == "mention"]
    assert len(mentions) == 25
    # Rollups are computed over the first 25 related pages only.
    assert props["Points total"]["rollup"]["number"] == sum(range(1, 26))
    assert len(props["Target names"]["rollup"]["array"]) == 25


@pytest.mark.parametrize(("name", "kind", "count"), [
    ("Targets", "relation", 30), ("Owners", "people", 30), ("Notes", "rich_text", 60),
    ("Name", "title", 1),
])
def test_property_items_return_every_reference(
    api: httpx.Client, workspace: Workspace, name: str, kind: str, count: int
) -> None:
    row = _row(workspace, "Many references")
    items, summary = _all_items(api, row.id, name, kind)
    assert len(items) == count
    assert all(item["object"] == "property_item" and item["type"] == kind for item in items)
    assert summary["type"] == kind and summary["next_url"] is None
    if kind == "relation":
        assert [item["relation"]["id"] for item in items] == [
            t.id for t in workspace.pages[1].data_sources[0].rows]


def test_rollup_items_cover_every_related_page(api: httpx.Client, workspace: Workspace) -> None:
    row = _row(workspace, "Many references")
    items, summary = _all_items(api, row.id, "Points total", "rollup")
    assert [item["number"] for item in items] == list(range(1, 31))
    assert summary["rollup"] == {"type": "number", "number": sum(range(1, 31)),
                                 "function": "sum"}
    items, summary = _all_items(api, row.id, "Target names", "rollup")
    assert len(items) == 30 and items[0]["title"]["plain_text"] == "Target 01"
    assert summary["rollup"] == {"type": "array", "array": [], "function": "show_original"}


def test_simple_property_item(api: httpx.Client, workspace: Workspace) -> None:
    row = _row(workspace, "Full row")
    response = api.get(f"/v1/pages/{row.id}/properties/{property_id('Row ID', 'unique_id')}")
    body = response.json()
    assert UUID_DASHED.match(body.pop("request_id"))
    assert body == {"object": "property_item", "id": property_id("Row ID",
                                                                            "unique_id"),
                               "type": "unique_id",
                               "unique_id": {"prefix": "ROW", "number": 1}}


def test_schema_configuration(api: httpx.Client, workspace: Workspace) -> None:
    database = workspace.pages[0]
    if api.headers["Notion-Version"] == "2022-06-28":
        schema = api.get(f"/v1/databases/{database.id}").json()["properties"]
    else:
        source = database.data_sources[0]
        schema = api.get(f"/v1/data_sources/{source.id}").json()["properties"]
    assert schema["Points total"]["rollup"] == {
        "relation_property_name": "Targets",
        "relation_property_id": property_id("Targets", "relation"),
        "rollup_property_name": "Points",
        "rollup_property_id": property_id("Points", "number"),
        "function": "sum",
    }
    assert schema["Row ID"]["unique_id"] == {"prefix": "ROW"}
    assert schema["Formula text"]["formula"] == {"expression": ""}
    assert schema["Verified"]["verification"] == {}


def test_official_sdk_reads_every_relation(emulator: Emulator, workspace: Workspace) -> None:
    from notion_client import Client
    from notion_client.helpers import collect_paginated_api

    row = _row(workspace, "Many references")
    with Client(auth=emulator.token, base_url=emulator.api_url, notion_version="2025-09-03",
                client=plain_http_client()) as sdk:
        items = collect_paginated_api(sdk.pages.properties.retrieve, page_id=row.id,
                                      property_id=property_id("Targets", "relation"),
                                      page_size=7)
    assert [item["relation"]["id"] for item in items] == [
        t.id for t in workspace.pages[1].data_sources[0].rows]
