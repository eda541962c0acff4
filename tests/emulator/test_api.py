"""Emulated Notion API over HTTP: auth, errors, routes and the objects it answers with."""

from __future__ import annotations

import re
from typing import Any

import pytest

from notionfs.emulator.render import property_id
from tests.emulator.conftest import (
    TASK_ROWS,
    UUID_DASHED,
    World,
    assert_error,
    children,
    search_all,
)

V2022, V2025, V2026 = "2022-06-28", "2025-09-03", "2026-03-11"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# ---- auth, versions, routes ---------------------------------------------------------------


def test_missing_authorization_is_401(world: World) -> None:
    response = world.client(token=None).get("/v1/users/me")
    body = assert_error(response, 401, "unauthorized")
    assert body["message"] == "API token is invalid."


def test_wrong_token_is_401(world: World) -> None:
    assert_error(world.client(token="secret_wrong").get("/v1/users/me"), 401, "unauthorized")


def test_token_never_echoed_in_errors(world: World) -> None:
    response = world.client(token="secret_do_not_echo").get("/v1/users/me")
    assert "secret_do_not_echo" not in response.text


def test_missing_version_is_400_missing_version(world: World) -> None:
    response = world.client(version="").get("/v1/users/me")
    assert_error(response, 400, "missing_version")


def test_unknown_version_is_400_validation_error(world: World) -> None:
    response = world.client(version="2021-05-13").get("/v1/users/me")
    body = assert_error(response, 400, "validation_error")
    assert "2021-05-13" in body["message"]


@pytest.mark.parametrize("version", [V2022, V2025, V2026])
def test_users_me_is_the_bot(world: World, version: str) -> None:
    body = world.client(version).get("/v1/users/me").json()
    assert body["object"] == "user"
    assert body["type"] == "bot"
    assert body["bot"]["workspace_name"] == "Test Space"
    assert body["bot"]["owner"] == {"type": "workspace", "workspace": True}
    assert UUID_DASHED.match(body["id"])


def test_unknown_route_is_invalid_request_url(world: World) -> None:
    client = world.client()
    assert_error(client.get("/v1/nothing/here"), 400, "invalid_request_url")
    assert_error(client.get("/v1/search"), 400, "invalid_request_url")  # search is POST


def test_write_endpoints_are_forbidden_for_a_read_only_integration(world: World) -> None:
    world.emulator.read_only = True
    page_id = world.refs.home.id
    response = world.client().patch(f"/v1/pages/{page_id}", json={"in_trash": True})
    assert_error(response, 403, "restricted_resource")
    assert world.refs.home.in_trash is False


def test_invalid_json_body_is_400_invalid_json(world: World) -> None:
    response = world.client().post(
        "/v1/search", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")


def test_request_id_header_matches_body(world: World) -> None:
    response = world.client().get("/v1/pages/00000000-0000-0000-0000-000000000000")
    assert response.headers["x-notion-request-id"] == response.json()["request_id"]


# ---- ids, 404s, sharing, trash ------------------------------------------------------------


def test_ids_work_with_and_without_dashes(world: World) -> None:
    client = world.client()
    page_id = world.refs.home.id
    with_dashes = client.get(f"/v1/pages/{page_id}").json()
    without = client.get(f"/v1/pages/{page_id.replace('-', '')}").json()
    upper = client.get(f"/v1/pages/{page_id.replace('-', '').upper()}").json()
    assert with_dashes["id"] == without["id"] == upper["id"] == page_id
    assert UUID_DASHED.match(without["id"])


def test_unknown_id_is_404(world: World) -> None:
    response = world.client().get("/v1/pages/0123456789abcdef0123456789abcdef")
    body = assert_error(response, 404, "object_not_found")
    assert "01234567-89ab-cdef-0123-456789abcdef" in body["message"]


def test_malformed_id_is_400_validation_error(world: World) -> None:
    assert_error(world.client().get("/v1/pages/not-an-id"), 400, "validation_error")


def test_object_of_another_kind_is_404(world: World) -> None:
    client = world.client()
    block_id = world.refs.image_block.id
    assert_error(client.get(f"/v1/pages/{block_id}"), 404, "object_not_found")
    assert_error(client.get(f"/v1/databases/{world.refs.home.id}"), 404, "object_not_found")


def test_unshared_page_is_404_but_its_shared_child_is_not(world: World) -> None:
    client = world.client()
    secret, child = world.refs.secret, world.refs.secret_child
    assert_error(client.get(f"/v1/pages/{secret.id}"), 404, "object_not_found")
    assert_error(client.get(f"/v1/blocks/{secret.id}/children"), 404, "object_not_found")
    shown = client.get(f"/v1/pages/{child.id}").json()
    assert shown["parent"] == {"type": "page_id", "page_id": secret.id}
    ids = {r["id"] for r in search_all(client)}
    assert child.id in ids and secret.id not in ids


def test_trashed_page_can_be_retrieved_but_is_never_listed(world: World) -> None:
    client = world.client()
    trashed = world.refs.trashed_page
    body = client.get(f"/v1/pages/{trashed.id}").json()
    assert body["in_trash"] is True and body["archived"] is True
    listed = {b["id"] for b in children(client, world.refs.home.id)}
    assert trashed.id not in listed
    assert world.refs.trashed_block.id not in listed
    found = {r["id"] for r in search_all(client, query="Trashed")}
    assert trashed.id not in found and world.refs.trashed_row.id not in found


def test_trashed_row_not_in_query(world: World) -> None:
    ds_id = world.refs.tasks.data_sources[0].id
    client = world.client()
    ids: set[str] = set()
    cursor = None
    while True:
        body = client.post(
            f"/v1/data_sources/{ds_id}/query", json={"start_cursor": cursor} if cursor else {}
        ).json()
        ids.update(r["id"] for r in body["results"])
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert len(ids) == TASK_ROWS
    assert world.refs.trashed_row.id not in ids


# ---- pages, parents, files ----------------------------------------------------------------


def test_top_level_page_shape(world: World) -> None:
    home = world.refs.home
    body = world.client().get(f"/v1/pages/{home.id}").json()
    assert body["object"] == "page"
    assert body["parent"] == {"type": "workspace", "workspace": True}
    assert body["url"] == f"https://app.notion.com/p/Home-Page-{home.id.replace('-', '')}"
    assert body["public_url"] is None
    assert body["icon"] == {"type": "emoji", "emoji": "\U0001f3e0"}
    assert set(body["properties"]) == {"title"}
    title = body["properties"]["title"]
    assert title["id"] == "title" and title["type"] == "title"
    assert title["title"][0]["plain_text"] == "Home Page"
    assert ISO_MS.match(body["created_time"]) and ISO_MS.match(body["last_edited_time"])
    assert body["created_by"]["object"] == "user"


def test_page_in_toggle_has_block_parent(world: World) -> None:
    client = world.client()
    nested = client.get(f"/v1/pages/{world.refs.nested.id}").json()
    assert nested["parent"] == {"type": "block_id", "block_id": world.refs.toggle_block.id}
    column_page = client.get(f"/v1/pages/{world.refs.in_column.id}").json()
    assert column_page["parent"]["type"] == "block_id"


def test_cover_and_file_block_get_fresh_signed_urls(world: World) -> None:
    client = world.client()
    block_id = world.refs.image_block.id
    first = client.get(f"/v1/blocks/{block_id}").json()
    second = client.get(f"/v1/blocks/{block_id}").json()
    image = first["image"]
    assert image["type"] == "file" and image["name"] == "cat photo.png"
    assert image["caption"][0]["plain_text"] == "a cat"
    url = image["file"]["url"]
    assert url.startswith(world.emulator.files_url + "/")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    assert ISO_MS.match(image["file"]["expiry_time"])
    assert url != second["image"]["file"]["url"]  # every response mints a new URL
    assert world.download(url) == world.refs.image.data

    page = client.get(f"/v1/pages/{world.refs.home.id}").json()
    assert page["cover"]["type"] == "file"
    assert world.download(page["cover"]["file"]["url"]) == world.refs.cover.data


def test_external_file_block(world: World) -> None:
    body = world.client().get(f"/v1/blocks/{world.refs.external_block.id}").json()
    pdf = body["pdf"]
    assert pdf["type"] == "external" and "file" not in pdf
    assert pdf["name"] == "remote.pdf"
    assert world.download(pdf["external"]["url"]) == world.refs.external.data


def test_expiry_is_settable_at_runtime(world: World) -> None:
    world.emulator.expiry_s = 120
    body = world.client().get(f"/v1/blocks/{world.refs.image_block.id}").json()
    assert "X-Amz-Expires=120" in body["image"]["file"]["url"]


def test_child_page_and_database_blocks(world: World) -> None:
    listed = children(world.client(), world.refs.home.id)
    by_id = {b["id"]: b for b in listed}
    tasks = by_id[world.refs.tasks.id]
    assert tasks["type"] == "child_database"
    assert tasks["child_database"] == {"title": "Tasks"}
    toggle = by_id[world.refs.toggle_block.id]
    assert toggle["has_children"] is True
    nested = children(world.client(), toggle["id"])
    assert nested[0]["type"] == "child_page"
    assert nested[0]["child_page"] == {"title": "Nested in toggle"}
    assert nested[0]["has_children"] is True
    assert by_id[world.refs.image_block.id]["has_children"] is False


def test_page_is_also_a_block(world: World) -> None:
    body = world.client().get(f"/v1/blocks/{world.refs.big_page.id}").json()
    assert body["object"] == "block" and body["type"] == "child_page"
    assert body["parent"] == {"type": "workspace", "workspace": True}


def test_duplicate_synced_block_lists_the_originals_children(world: World) -> None:
    client = world.client()
    original, dup = world.refs.synced_original, world.refs.synced_dup
    dup_block = client.get(f"/v1/blocks/{dup.id}").json()
    assert dup_block["synced_block"]["synced_from"] == {"type": "block_id", "block_id": original.id}
    assert dup_block["has_children"] is True
    original_block = client.get(f"/v1/blocks/{original.id}").json()
    assert original_block["synced_block"]["synced_from"] is None
    assert [c["id"] for c in children(client, dup.id)] == [
        c["id"] for c in children(client, original.id)
    ]


# ---- database rows ------------------------------------------------------------------------


def first_row(world: World, version: str = V2025) -> dict[str, Any]:
    return world.client(version).get(f"/v1/pages/{world.refs.rows[0].id}").json()


def test_row_properties_are_typed_as_notion_publishes_them(world: World) -> None:
    props = first_row(world)["properties"]
    assert props["Name"]["title"][0]["plain_text"] == "First task"
    assert props["Name"]["id"] == "title"
    assert props["Notes"]["rich_text"][0]["plain_text"] == "some notes"
    assert props["Count"]["number"] == 3.5
    assert props["Kind"]["select"]["name"] == "Bug"
    assert {"id", "name", "color"} <= set(props["Kind"]["select"])
    assert [o["name"] for o in props["Tags"]["multi_select"]] == ["red", "blue"]
    assert props["State"]["status"]["name"] == "In progress"
    assert props["Due"]["date"] == {"start": "2026-02-01", "end": None, "time_zone": None}
    assert props["Done"]["checkbox"] is True
    assert props["Link"]["url"] == "https://example.com"
    assert props["Mail"]["email"] == "a@example.com"
    assert props["Phone"]["phone_number"] == "+1 555 0100"
    assert props["Owners"]["people"] == [
        {"object": "user", "id": "6a1c3c55-0000-4000-8000-000000000001"}
    ]
    assert ISO_MS.match(props["Created"]["created_time"])
    assert ISO_MS.match(props["Edited"]["last_edited_time"])
    assert props["Author"]["created_by"]["object"] == "user"
    for name, prop in props.items():
        assert prop["type"] in prop, name
        assert prop["id"] == property_id(name, prop["type"])


def test_row_files_property_downloads(world: World) -> None:
    files = first_row(world)["properties"]["Attachments"]["files"]
    assert len(files) == 1
    assert files[0]["name"] == "notes.txt" and files[0]["type"] == "file"
    assert world.download(files[0]["file"]["url"]) == b"row attachment"


def test_relation_is_capped_at_25_with_has_more(world: World) -> None:
    related = first_row(world)["properties"]["Related"]
    assert len(related["relation"]) == 25
    assert related["has_more"] is True
    assert related["relation"][0] == {"id": world.refs.rows[1].id}


def test_empty_values_render_as_notion_does(world: World) -> None:
    body = world.client().get(f"/v1/pages/{world.refs.rows[5].id}").json()
    props = body["properties"]
    assert props["Name"]["title"][0]["plain_text"] == "Task 005"
    assert props["Notes"]["rich_text"] == []
    assert props["Kind"]["select"] is None
    assert props["Tags"]["multi_select"] == []
    assert props["Due"]["date"] is None
    assert props["Link"]["url"] is None
    assert props["Attachments"]["files"] == []
    assert props["Related"] == {
        "id": property_id("Related", "relation"),
        "type": "relation",
        "relation": [],
        "has_more": False,
    }


def test_property_ids_match_the_schema(world: World) -> None:
    client = world.client()
    ds_id = world.refs.tasks.data_sources[0].id
    schema = client.get(f"/v1/data_sources/{ds_id}").json()["properties"]
    row = first_row(world)["properties"]
    assert {n: p["id"] for n, p in schema.items()} == {n: p["id"] for n, p in row.items()}
    assert {o["name"] for o in schema["Tags"]["multi_select"]["options"]} == {"red", "blue"}
    assert schema["Related"]["relation"]["data_source_id"] == ds_id


def test_property_item_title_is_a_paginated_list(world: World) -> None:
    row = world.refs.rows[0]
    body = world.client().get(f"/v1/pages/{row.id}/properties/title").json()
    assert body["object"] == "list" and body["type"] == "property_item"
    assert body["property_item"]["type"] == "title"
    assert body["results"][0]["object"] == "property_item"
    assert body["results"][0]["title"]["plain_text"] == "First task"


def test_property_item_relation_paginates_past_the_page_cap(world: World) -> None:
    client = world.client()
    row = world.refs.rows[0]
    pid = property_id("Related", "relation")
    first = client.get(f"/v1/pages/{row.id}/properties/{pid}", params={"page_size": 20}).json()
    assert first["has_more"] is True
    assert first["property_item"]["next_url"].startswith(world.emulator.api_url)
    rest = client.get(first["property_item"]["next_url"]).json()
    ids = [r["relation"]["id"] for r in first["results"] + rest["results"]]
    assert ids == [p.id for p in world.refs.rows[1:31]]


def test_property_item_single_value(world: World) -> None:
    row = world.refs.rows[0]
    pid = property_id("Count", "number")
    body = world.client().get(f"/v1/pages/{row.id}/properties/{pid}").json()
    assert UUID_DASHED.match(body.pop("request_id"))  # single objects carry one too
    assert body == {"object": "property_item", "id": pid, "type": "number", "number": 3.5}


def test_property_item_unknown_is_404(world: World) -> None:
    row = world.refs.rows[0]
    response = world.client().get(f"/v1/pages/{row.id}/properties/nope")
    assert_error(response, 404, "object_not_found")


def test_query_sorts(world: World) -> None:
    ds_id = world.refs.tasks.data_sources[0].id
    body = (
        world.client()
        .post(
            f"/v1/data_sources/{ds_id}/query",
            json={"sorts": [{"property": "Count", "direction": "descending"}], "page_size": 3},
        )
        .json()
    )
    counts = [r["properties"]["Count"]["number"] for r in body["results"]]
    assert counts == [TASK_ROWS - 1, TASK_ROWS - 2, TASK_ROWS - 3]


def test_query_filter_is_refused_rather_than_ignored(world: World) -> None:
    ds_id = world.refs.tasks.data_sources[0].id
    response = world.client().post(
        f"/v1/data_sources/{ds_id}/query",
        json={"filter": {"property": "Done", "checkbox": {"equals": True}}},
    )
    assert_error(response, 400, "validation_error")


def test_search_query_matches_titles_case_insensitively(world: World) -> None:
    body = world.client().post("/v1/search", json={"query": "home page"}).json()
    assert [r["id"] for r in body["results"]] == [world.refs.home.id]


def test_search_sort_by_last_edited(world: World) -> None:
    client = world.client()
    world.emulator.touch(world.refs.big_page)
    body = client.post(
        "/v1/search",
        json={"sort": {"timestamp": "last_edited_time", "direction": "descending"}},
    ).json()
    assert body["results"][0]["id"] == world.refs.big_page.id
    bad = client.post("/v1/search", json={"sort": {"timestamp": "created_time"}})
    assert_error(bad, 400, "validation_error")
