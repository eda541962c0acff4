"""Page and block writes of the emulator: shapes as recorded, and reads showing the new state."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import World, assert_error, children, search_all
from tests.emulator.writing import (
    READ_RENDER_GAPS,
    Clock,
    append,
    assert_same_shape,
    child_ids,
    download,
    file_block,
    hosted_url,
    paragraph,
    parse_time,
    recording,
    upload_file,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def _title(text: str) -> dict[str, Any]:
    return {"title": [{"text": {"content": text}}]}


def create_page(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/pages", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# ---- blocks: append ------------------------------------------------------------------------


def test_append_paragraph_matches_recording(world: World) -> None:
    recorded = recording("test_blocks_children_create__01")
    client = world.client()
    answer = append(client, world.refs.big_page.id, recorded["request_body"]["children"])
    assert_same_shape(answer, recorded["body"])
    block = answer["results"][0]
    assert list(block["paragraph"]) == list(recorded["body"]["results"][0]["paragraph"])
    assert block["parent"] == {"type": "page_id", "page_id": world.refs.big_page.id}
    assert child_ids(client, world.refs.big_page.id)[-1] == block["id"]


def test_appended_file_is_served_like_any_hosted_file(world: World) -> None:
    client = world.client()
    home = world.refs.home.id
    upload = upload_file(client, "cat.png", PNG, "image/png")
    answer = append(client, home, [file_block("image", upload, caption=[
        {"text": {"content": "a new cat"}}])])
    image = answer["results"][0]
    assert image["image"]["caption"][0]["plain_text"] == "a new cat"
    assert image["image"]["name"] == "cat.png"
    listed = children(client, home)[-1]
    again = client.get(f"/v1/blocks/{image['id']}").json()
    urls = {hosted_url(image["image"]), hosted_url(listed["image"]), hosted_url(again["image"])}
    assert len(urls) == 3  # a freshly signed URL on every read
    assert download(world, listed["image"]) == download(world, again["image"]) == PNG
    # The image block of the recorded workspace renders the same way.
    old = next(b for b in children(client, home) if b["id"] == world.refs.image_block.id)
    assert_same_shape(listed, old)


@pytest.mark.parametrize("kind", ["image", "video", "audio", "pdf"])
def test_a_file_block_refuses_an_upload_it_cannot_show(world: World, kind: str) -> None:
    client = world.client()
    upload = upload_file(client, "notes.txt", b"text", "text/plain")
    before = child_ids(client, world.refs.home.id)
    response = client.patch(f"/v1/blocks/{world.refs.home.id}/children",
                            json={"children": [paragraph("x"), file_block(kind, upload)]})
    assert "cannot show" in assert_error(response, 400, "validation_error")["message"]
    assert child_ids(client, world.refs.home.id) == before  # nothing applied
    # A file block takes anything, and keeps its name.
    answer = append(client, world.refs.home.id, [file_block("file", upload, name="n.txt")])
    assert answer["results"][0]["file"]["name"] == "n.txt"


def test_append_positions(world: World) -> None:
    client = world.client()
    page = world.refs.in_column.id
    first = append(client, page, [paragraph("a"), paragraph("b")])["results"]
    a, b = (block["id"] for block in first)
    middle = append(client, page, [paragraph("a2")],
                    position={"type": "after_block", "after_block": {"id": a}})
    assert child_ids(client, page) == [a, middle["results"][0]["id"], b]
    legacy = append(client, page, [paragraph("b2")], after=b)  # before 2026-03-11
    top = append(client, page, [paragraph("top")], position={"type": "start"})
    # With "start" Notion answers the whole list, the new block first.
    assert [r["id"] for r in top["results"]] == child_ids(client, page)
    assert child_ids(client, page) == [top["results"][0]["id"], a, middle["results"][0]["id"],
                                       b, legacy["results"][0]["id"]]
    end = append(client, page, [paragraph("end")], position={"type": "end"})
    assert child_ids(client, page)[-1] == end["results"][0]["id"]


def test_append_errors(world: World) -> None:
    client = world.client()
    page = world.refs.in_column.id
    url = f"/v1/blocks/{page}/children"
    too_many = client.patch(url, json={"children": [paragraph(str(i)) for i in range(101)]})
    assert "`100`" in assert_error(too_many, 400, "validation_error")["message"]
    stranger = world.refs.image_block.id
    not_child = client.patch(url, json={"children": [paragraph("x")], "after": stranger})
    assert "not a child" in assert_error(not_child, 400, "validation_error")["message"]
    v2026 = world.client("2026-03-11").patch(
        url, json={"children": [paragraph("x")], "after": stranger})
    assert "body.after" in assert_error(v2026, 400, "validation_error")["message"]
    long_text = client.patch(url, json={"children": [paragraph("x" * 2001)]})
    assert "`2000`" in assert_error(long_text, 400, "validation_error")["message"]
    unknown = client.patch("/v1/blocks/0123456789abcdef0123456789abcdef/children",
                           json={"children": [paragraph("x")]})
    assert_error(unknown, 404, "object_not_found")
    assert_error(client.patch(url, json={"children": "x"}), 400, "validation_error")
    trashed = client.patch(f"/v1/blocks/{world.refs.trashed_page.id}/children",
                           json={"children": [paragraph("x")]})
    assert "archived" in assert_error(trashed, 400, "validation_error")["message"]


def test_nested_children_and_last_edited_time(world: World) -> None:
    clock = Clock()
    world.emulator.clock = clock
    client = world.client()
    page = world.refs.in_column.id
    before = client.get(f"/v1/pages/{page}").json()["last_edited_time"]
    toggle = {"toggle": {"rich_text": [{"text": {"content": "more"}}],
                         "children": [paragraph("inside")]}}
    answer = append(client, page, [toggle])
    assert answer["results"][0]["has_children"] is True
    inner = children(client, answer["results"][0]["id"])
    assert [b["paragraph"]["rich_text"][0]["plain_text"] for b in inner] == ["inside"]
    edited = client.get(f"/v1/pages/{page}").json()["last_edited_time"]
    assert edited != before and edited == "2026-07-04T09:11:00.000Z"  # minute precision
    assert answer["results"][0]["created_time"] == edited


# ---- blocks: update and delete ---------------------------------------------------------------


def test_update_replaces_a_file_in_place(world: World) -> None:
    client = world.client()
    home = world.refs.home.id
    block_id = world.refs.image_block.id
    position = child_ids(client, home).index(block_id)
    upload = upload_file(client, "dog.png", PNG + b"dog", "image/png")
    response = client.patch(f"/v1/blocks/{block_id}", json={
        "image": {"type": "file_upload", "file_upload": {"id": upload},
                  "caption": [{"text": {"content": "a dog"}}]}})
    assert response.status_code == 200, response.text
    assert child_ids(client, home).index(block_id) == position
    block = client.get(f"/v1/blocks/{block_id}").json()
    assert download(world, block["image"]) == PNG + b"dog"
    assert block["image"]["caption"][0]["plain_text"] == "a dog"
    assert block["image"]["name"] == "dog.png"
    renamed = client.patch(f"/v1/blocks/{block_id}", json={"image": {"name": "pup.png"}}).json()
    assert renamed["image"]["name"] == "pup.png"
    assert download(world, renamed["image"]) == PNG + b"dog"
    mismatch = client.patch(f"/v1/blocks/{block_id}", json={"video": {}})
    assert_error(mismatch, 400, "validation_error")


def test_update_text_block_matches_recording(world: World) -> None:
    recorded = recording("test_blocks_update__02")
    client = world.client()
    block = append(client, world.refs.in_column.id, [paragraph("old")])["results"][0]
    response = client.patch(f"/v1/blocks/{block['id']}", json=recorded["request_body"])
    assert response.status_code == 200, response.text
    assert_same_shape(response.json(), recorded["body"])
    run = response.json()["paragraph"]["rich_text"][0]
    assert run["plain_text"] == "I'm an updated paragraph."
    assert run["annotations"]["bold"] is True


def test_delete_trashes_and_restore_brings_back(world: World) -> None:
    deleted = recording("test_blocks_delete__02")
    restored = recording("test_blocks_delete__04")
    client = world.client()
    page = world.refs.in_column.id
    blocks = append(client, page, [paragraph("keep"), paragraph("bin"), paragraph("last")])
    order = [b["id"] for b in blocks["results"]]
    answer = client.delete(f"/v1/blocks/{order[1]}")
    assert answer.status_code == 200
    assert_same_shape(answer.json(), deleted["body"])
    assert answer.json()["in_trash"] is True and answer.json()["archived"] is True
    assert child_ids(client, page) == [order[0], order[2]]
    assert client.get(f"/v1/blocks/{order[1]}").json()["in_trash"] is True
    again = client.delete(f"/v1/blocks/{order[1]}")
    assert "archived" in assert_error(again, 400, "validation_error")["message"]
    back = client.patch(f"/v1/blocks/{order[1]}", json=restored["request_body"])
    assert_same_shape(back.json(), restored["body"])
    assert child_ids(client, page) == order
    v2026 = world.client("2026-03-11")
    v2026.delete(f"/v1/blocks/{order[1]}")
    assert_error(v2026.patch(f"/v1/blocks/{order[1]}", json={"archived": False}), 400,
                 "validation_error")
    assert v2026.patch(f"/v1/blocks/{order[1]}", json={"in_trash": False}).status_code == 200
    assert child_ids(client, page) == order


# ---- pages ----------------------------------------------------------------------------------


def test_create_page_under_a_page_matches_recording(world: World) -> None:
    recorded = recording("test_pages_create__00")
    client = world.client()
    body = {**recorded["request_body"], "parent": {"page_id": world.refs.big_page.id}}
    page = create_page(client, **body)
    assert_same_shape(page, recorded["body"], may_lack=READ_RENDER_GAPS)
    assert page["parent"] == {"type": "page_id", "page_id": world.refs.big_page.id}
    assert page["properties"]["title"]["title"][0]["plain_text"] == "Test Page"
    last = children(client, world.refs.big_page.id)[-1]
    assert last["type"] == "child_page" and last["child_page"] == {"title": "Test Page"}
    found = search_all(client, query="Test Page")
    assert [r["id"] for r in found] == [page["id"]]


def test_create_page_with_content_icon_and_cover(world: World) -> None:
    client = world.client()
    cover = upload_file(client, "cover.png", PNG, "image/png")
    photo = upload_file(client, "photo.png", PNG + b"2", "image/png")
    page = create_page(
        client,
        parent={"type": "page_id", "page_id": world.refs.home.id},
        properties={"title": {"title": [{"text": {"content": "Trip"}}]}},
        icon={"type": "emoji", "emoji": "\u2708"},
        cover={"type": "file_upload", "file_upload": {"id": cover}},
        children=[paragraph("hello"), file_block("image", photo)],
        position={"type": "page_start"},
    )
    assert page["icon"] == {"type": "emoji", "emoji": "\u2708"}
    assert download(world, page["cover"]) == PNG
    blocks = children(client, page["id"])
    assert [b["type"] for b in blocks] == ["paragraph", "image"]
    assert download(world, blocks[1]["image"]) == PNG + b"2"
    assert child_ids(client, world.refs.home.id)[0] == page["id"]


def test_create_rows_in_a_data_source(world: World) -> None:
    client = world.client()
    tasks = world.refs.tasks
    source = tasks.data_sources[0].id
    upload = upload_file(client, "spec.pdf", b"%PDF-1.4 spec", "application/pdf")
    row = create_page(
        client,
        parent={"type": "data_source_id", "data_source_id": source},
        properties={
            "Name": {"title": [{"text": {"content": "New task"}}]},
            "Count": {"number": 7},
            "Kind": {"select": {"name": "Bug"}},
            "Done": {"checkbox": True},
            "Attachments": {"files": [{"type": "file_upload", "file_upload": {"id": upload},
                                       "name": "spec.pdf"}]},
        },
    )
    assert row["parent"]["type"] == "data_source_id"
    props = row["properties"]
    assert props["Count"]["number"] == 7 and props["Kind"]["select"]["name"] == "Bug"
    entry = props["Attachments"]["files"][0]
    assert entry["name"] == "spec.pdf" and download(world, entry) == b"%PDF-1.4 spec"
    rows = client.post(f"/v1/data_sources/{source}/query", json={"page_size": 100}).json()
    ids = [r["id"] for r in rows["results"]]
    while rows["has_more"]:
        rows = client.post(f"/v1/data_sources/{source}/query",
                           json={"start_cursor": rows["next_cursor"]}).json()
        ids += [r["id"] for r in rows["results"]]
    assert ids[-1] == row["id"]
    by_database = create_page(client, parent={"database_id": tasks.id},
                              properties={"Name": _title("Via database")})
    assert by_database["parent"]["data_source_id"] == source
    unknown = client.post("/v1/pages", json={"parent": {"data_source_id": source},
                                             "properties": {"Nope": {"number": 1}}})
    assert "Nope is not a property that exists." in assert_error(
        unknown, 400, "validation_error")["message"]
    two_sources = client.post("/v1/pages", json={"parent": {"database_id": world.refs.wiki.id},
                                                 "properties": {}})
    assert_error(two_sources, 400, "validation_error")
    missing = client.post("/v1/pages", json={"parent": {"page_id": "0" * 32}, "properties": {}})
    assert_error(missing, 404, "object_not_found")


def test_update_page_title_files_and_trash(world: World) -> None:
    client = world.client()
    row = world.refs.rows[0]
    existing = client.get(f"/v1/pages/{row.id}").json()["properties"]["Attachments"]["files"]
    upload = upload_file(client, "more.txt", b"more", "text/plain")
    files = [*existing, {"type": "file_upload", "file_upload": {"id": upload}, "name": "more.txt"}]
    response = client.patch(f"/v1/pages/{row.id}", json={"properties": {
        "Name": _title("Renamed task"), "Attachments": {"files": files}}})
    assert response.status_code == 200, response.text
    updated = response.json()["properties"]
    assert updated["Name"]["title"][0]["plain_text"] == "Renamed task"
    entries = updated["Attachments"]["files"]
    assert [e["name"] for e in entries] == ["notes.txt", "more.txt"]  # kept, in order
    assert download(world, entries[0]) == b"row attachment"
    assert download(world, entries[1]) == b"more"
    page = world.refs.in_column.id
    column = client.get(f"/v1/pages/{page}").json()["parent"]["block_id"]
    assert page in child_ids(client, column)
    trashed = client.patch(f"/v1/pages/{page}", json={"in_trash": True}).json()
    assert trashed["in_trash"] is True
    assert page not in [r["id"] for r in search_all(client)]
    assert page not in child_ids(client, column)
    edit = client.patch(f"/v1/pages/{page}", json={"properties": {"title": _title("x")}})
    assert "archived" in assert_error(edit, 400, "validation_error")["message"]
    assert client.patch(f"/v1/pages/{page}", json={"archived": False}).status_code == 200
    assert page in [r["id"] for r in search_all(client)]
    assert page in child_ids(client, column)


def test_a_files_property_rewritten_keeps_removes_and_renames_entries(world: World) -> None:
    """Notion replaces a files property with the array sent: entries re-sent by URL keep
    their file (under the name sent), entries left out leave, hosted and external entries
    need a name."""
    client = world.client()
    row = world.refs.rows[0]
    upload = upload_file(client, "two.txt", b"two", "text/plain")
    client.patch(f"/v1/pages/{row.id}", json={"properties": {"Attachments": {"files": [
        {"type": "file_upload", "file_upload": {"id": upload}, "name": "two.txt"}]}}})
    page = client.get(f"/v1/pages/{row.id}").json()
    [two] = page["properties"]["Attachments"]["files"]
    assert download(world, two) == b"two"  # the array sent replaced the one held
    nameless = client.patch(f"/v1/pages/{row.id}", json={"properties": {"Attachments": {
        "files": [{"type": "file", "file": {"url": two["file"]["url"]}}]}}})
    assert "files[0].name should be defined" in assert_error(
        nameless, 400, "validation_error")["message"]
    renamed = client.patch(f"/v1/pages/{row.id}", json={"properties": {"Attachments": {
        "files": [{"type": "file", "file": {"url": two["file"]["url"]}, "name": "2.txt"}]}}})
    [entry] = renamed.json()["properties"]["Attachments"]["files"]
    assert entry["name"] == "2.txt" and download(world, entry) == b"two"
    emptied = client.patch(f"/v1/pages/{row.id}",
                           json={"properties": {"Attachments": {"files": []}}})
    assert emptied.json()["properties"]["Attachments"]["files"] == []


def test_update_page_icon_cover(world: World) -> None:
    recorded = recording("test_pages_update__01")
    client = world.client()
    page = create_page(client, parent={"page_id": world.refs.big_page.id},
                       properties={"title": _title("Visuals")})["id"]
    answer = client.patch(f"/v1/pages/{page}", json=recorded["request_body"]).json()
    assert_same_shape(answer, recorded["body"], may_lack=READ_RENDER_GAPS)
    assert answer["icon"] == recorded["request_body"]["icon"]
    upload = upload_file(client, "c.png", PNG, "image/png")
    with_cover = client.patch(f"/v1/pages/{page}", json={
        "cover": {"type": "file_upload", "file_upload": {"id": upload}}}).json()
    assert download(world, with_cover["cover"]) == PNG
    cleared = client.patch(f"/v1/pages/{page}", json={"cover": None, "icon": None}).json()
    assert cleared["cover"] is None and cleared["icon"] is None


def test_move_page_matches_recording(world: World) -> None:
    recorded = recording("test_move_pages__03")
    client = world.client()
    page = world.refs.nested.id
    target = world.refs.big_page.id
    answer = client.post(f"/v1/pages/{page}/move", json={
        "parent": {"type": "page_id", "page_id": target}})
    assert answer.status_code == 200, answer.text
    assert_same_shape(answer.json(), recorded["body"], may_lack=READ_RENDER_GAPS)
    assert answer.json()["parent"] == {"type": "page_id", "page_id": target}
    assert child_ids(client, target)[-1] == page
    assert page not in child_ids(client, world.refs.toggle_block.id)
    into_itself = client.post(f"/v1/pages/{world.refs.big_page.id}/move",
                              json={"parent": {"page_id": page}})
    assert_error(into_itself, 400, "validation_error")
    source = world.refs.tasks.data_sources[0].id
    row = client.post(f"/v1/pages/{page}/move", json={
        "parent": {"type": "data_source_id", "data_source_id": source}}).json()
    assert row["parent"]["data_source_id"] == source
    assert row["properties"]["Name"]["title"][0]["plain_text"] == "Nested in toggle"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/pages", {"parent": {"page_id": "HOME"}, "properties": {}}),
        ("PATCH", "/v1/pages/HOME", {"in_trash": True}),
        ("POST", "/v1/pages/HOME/move", {"parent": {"page_id": "HOME"}}),
        ("PATCH", "/v1/blocks/HOME/children", {"children": []}),
        ("DELETE", "/v1/blocks/HOME", None),
        ("POST", "/v1/file_uploads", {"filename": "a.txt"}),
    ],
)
def test_read_only_integration_gets_403(
    world: World, method: str, path: str, body: dict[str, Any] | None
) -> None:
    world.emulator.read_only = True
    home = world.refs.home.id
    text = path.replace("HOME", home)
    content = None if body is None else json.dumps(body).replace("HOME", home)
    response = world.client().request(method, text, content=content,
                                      headers={"Content-Type": "application/json"})
    assert_error(response, 403, "restricted_resource")
    assert world.refs.home.in_trash is False


def test_last_edited_time_moves_with_the_clock(world: World) -> None:
    clock = Clock()
    world.emulator.clock = clock
    client = world.client()
    page = world.refs.big_page.id
    append(client, page, [paragraph("one")])
    first = parse_time(client.get(f"/v1/pages/{page}").json()["last_edited_time"])
    clock.advance(seconds=20)
    append(client, page, [paragraph("two")])  # same minute: Notion's time does not move
    assert parse_time(client.get(f"/v1/pages/{page}").json()["last_edited_time"]) == first
    clock.advance(minutes=1)
    append(client, page, [paragraph("three")])
    later = parse_time(client.get(f"/v1/pages/{page}").json()["last_edited_time"])
    assert (later - first).total_seconds() == 60
