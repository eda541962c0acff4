"""The differences between Notion-Version 2022-06-28, 2025-09-03 and 2026-03-11."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import World, assert_error, search_all

V2022, V2025, V2026 = "2022-06-28", "2025-09-03", "2026-03-11"


def walk_dicts(value: Any) -> list[dict[str, Any]]:
    """Every JSON object nested anywhere in ``value``."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(walk_dicts(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(walk_dicts(item))
    return found


# ---- 2022-06-28 ---------------------------------------------------------------------------


def test_2022_database_has_properties_and_rows_have_database_parent(world: World) -> None:
    client = world.client(V2022)
    tasks = world.refs.tasks
    db = client.get(f"/v1/databases/{tasks.id}").json()
    assert db["object"] == "database"
    assert "data_sources" not in db
    assert db["properties"]["Name"]["type"] == "title"
    assert db["is_inline"] is True
    assert db["parent"] == {"type": "page_id", "page_id": world.refs.home.id}
    row = client.get(f"/v1/pages/{world.refs.rows[0].id}").json()
    assert row["parent"] == {"type": "database_id", "database_id": tasks.id}


def test_2022_query_goes_to_databases(world: World) -> None:
    client = world.client(V2022)
    body = client.post(f"/v1/databases/{world.refs.tasks.id}/query", json={"page_size": 5}).json()
    assert body["object"] == "list"
    assert body["type"] == "page_or_database" and body["page_or_database"] == {}
    assert len(body["results"]) == 5 and body["has_more"] is True
    ds_id = world.refs.tasks.data_sources[0].id
    assert_error(client.post(f"/v1/data_sources/{ds_id}/query"), 400, "invalid_request_url")
    assert_error(client.get(f"/v1/data_sources/{ds_id}"), 400, "invalid_request_url")


def test_2022_search_returns_databases(world: World) -> None:
    client = world.client(V2022)
    body = client.post(
        "/v1/search", json={"filter": {"property": "object", "value": "database"}}
    ).json()
    assert body["type"] == "page_or_database"
    assert {r["object"] for r in body["results"]} == {"database"}
    assert world.refs.tasks.id in {r["id"] for r in body["results"]}
    bad = client.post("/v1/search", json={"filter": {"property": "object", "value": "data_source"}})
    assert_error(bad, 400, "validation_error")


def test_2022_multi_source_database_cannot_be_read(world: World) -> None:
    client = world.client(V2022)
    wiki = world.refs.wiki
    assert_error(client.get(f"/v1/databases/{wiki.id}"), 400, "validation_error")
    assert_error(client.post(f"/v1/databases/{wiki.id}/query"), 400, "validation_error")


# ---- 2025-09-03 ---------------------------------------------------------------------------


def test_2025_database_lists_data_sources_without_properties(world: World) -> None:
    client = world.client(V2025)
    wiki = world.refs.wiki
    db = client.get(f"/v1/databases/{wiki.id}").json()
    assert "properties" not in db
    assert db["data_sources"] == [
        {"id": wiki.data_sources[0].id, "name": "Articles"},
        {"id": wiki.data_sources[1].id, "name": "Drafts"},
    ]
    assert db["parent"] == {"type": "workspace", "workspace": True}
    assert db["archived"] is False and db["in_trash"] is False


def test_2025_data_source_object(world: World) -> None:
    client = world.client(V2025)
    wiki = world.refs.wiki
    drafts = wiki.data_sources[1]
    ds = client.get(f"/v1/data_sources/{drafts.id.replace('-', '')}").json()
    assert ds["object"] == "data_source" and ds["id"] == drafts.id
    assert ds["parent"] == {"type": "database_id", "database_id": wiki.id}
    assert ds["database_parent"] == {"type": "workspace", "workspace": True}
    assert set(ds["properties"]) == {"Title", "Words"}
    assert ds["title"][0]["plain_text"] == "Drafts"


def test_2025_rows_have_data_source_parent(world: World) -> None:
    client = world.client(V2025)
    tasks = world.refs.tasks
    row = client.get(f"/v1/pages/{world.refs.rows[0].id}").json()
    assert row["parent"] == {
        "type": "data_source_id",
        "data_source_id": tasks.data_sources[0].id,
        "database_id": tasks.id,
    }


def test_2025_query_goes_to_data_sources(world: World) -> None:
    client = world.client(V2025)
    wiki = world.refs.wiki
    body = client.post(f"/v1/data_sources/{wiki.data_sources[1].id}/query", json={}).json()
    assert body["type"] == "page_or_data_source"
    assert [r["properties"]["Words"]["number"] for r in body["results"]] == [12]
    response = client.post(f"/v1/databases/{world.refs.tasks.id}/query", json={})
    assert_error(response, 400, "invalid_request_url")


@pytest.mark.parametrize("version", [V2025, V2026])
def test_search_returns_data_sources_from_2025(world: World, version: str) -> None:
    client = world.client(version)
    only = search_all(client, filter={"property": "object", "value": "data_source"})
    assert {r["object"] for r in only} == {"data_source"}
    ids = {r["id"] for r in only}
    assert world.refs.tasks.data_sources[0].id in ids
    assert {ds.id for ds in world.refs.wiki.data_sources} <= ids
    assert world.refs.tasks.id not in ids
    everything = client.post("/v1/search", json={"page_size": 5}).json()
    assert everything["type"] == "page_or_data_source"
    bad = client.post("/v1/search", json={"filter": {"property": "object", "value": "database"}})
    assert_error(bad, 400, "validation_error")


# ---- 2026-03-11 ---------------------------------------------------------------------------


def test_2026_has_no_archived_anywhere(world: World) -> None:
    client = world.client(V2026)
    refs = world.refs
    responses = [
        client.get(f"/v1/pages/{refs.trashed_page.id}").json(),
        client.get(f"/v1/pages/{refs.rows[0].id}").json(),
        client.get(f"/v1/blocks/{refs.home.id}/children").json(),
        client.get(f"/v1/databases/{refs.tasks.id}").json(),
        client.get(f"/v1/data_sources/{refs.tasks.data_sources[0].id}").json(),
        client.post("/v1/search", json={}).json(),
    ]
    objects = [
        d
        for r in responses
        for d in walk_dicts(r)
        if d.get("object") in ("page", "block", "database", "data_source")
    ]
    assert objects
    for obj in objects:
        assert "archived" not in obj
        assert isinstance(obj["in_trash"], bool)
    assert responses[0]["in_trash"] is True


@pytest.mark.parametrize("version", [V2022, V2025])
def test_older_versions_have_both_archived_and_in_trash(world: World, version: str) -> None:
    client = world.client(version)
    page = client.get(f"/v1/pages/{world.refs.trashed_page.id}").json()
    assert page["archived"] is True and page["in_trash"] is True
    block = client.get(f"/v1/blocks/{world.refs.image_block.id}").json()
    assert block["archived"] is False and block["in_trash"] is False


# ---- page state: archive and lock (recorded from 2025-09-03 on) ------------------------------


@pytest.mark.parametrize("version", [V2022, V2025, V2026])
def test_archive_and_lock_fields_per_version(world: World, version: str) -> None:
    home = world.refs.home
    home.is_archived, home.is_locked = True, True
    world.emulator.refresh()
    page = world.client(version).get(f"/v1/pages/{home.id}").json()
    database = world.client(version).get(f"/v1/databases/{world.refs.tasks.id}").json()
    if version == V2022:  # as recorded then: no archive, no lock, no descriptions
        assert "is_archived" not in page and "is_locked" not in page
        assert "is_locked" not in database
        assert all("description" not in prop for prop in database["properties"].values())
    else:
        assert page["is_archived"] is True and page["is_locked"] is True
        assert page["in_trash"] is False  # the archive is not the trash
        assert database["is_locked"] is False
    assert page["url"].startswith(
        "https://www.notion.so/" if version == V2022 else "https://app.notion.com/p/")


def test_a_data_source_url_names_its_database(world: World) -> None:
    wiki = world.refs.wiki
    client = world.client(V2025)
    for source in wiki.data_sources:
        body = client.get(f"/v1/data_sources/{source.id}").json()
        assert body["url"] == "https://app.notion.com/p/" + wiki.id.replace("-", "")


def test_a_404_names_the_integration(world: World) -> None:
    response = world.client(V2025).get(f"/v1/pages/{world.refs.secret.id}")
    body = assert_error(response, 404, "object_not_found")
    assert body["message"].endswith('shared with your integration "notionfs emulator".')
    me = world.client(V2025).get("/v1/users/me").json()
    assert body["additional_data"] == {"integration_id": me["id"]}
