"""Parsing Notion API JSON into notionfs models, for each API version's shapes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from notionfs.models import (
    Block,
    DataSourceRef,
    FileRef,
    Icon,
    MalformedResponse,
    Parent,
    normalize_id,
    parse_block,
    parse_data_source,
    parse_database,
    parse_file,
    parse_icon,
    parse_page,
    parse_parent,
    parse_user,
)

PAGE_ID = "59833787-2cf9-4fdf-8782-e53db20768a5"
DB_ID = "bc1211ca-e3f1-4939-ae34-5260b16f627c"
DS_ID = "248104cd-477e-80af-bc30-000bd28de8f9"
BLOCK_ID = "c02fc1d3-db8b-45c5-a222-27595b15aea7"
SIGNED_URL = "https://files.example/s3/a.png?X-Amz-Signature=abc&X-Amz-Expires=3600"
EXPIRY = "2026-01-05T10:30:00.000Z"


def rich(text: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "text",
            "text": {"content": text, "link": None},
            "annotations": {"bold": False, "color": "default"},
            "plain_text": text,
            "href": None,
        }
    ]


def hosted(url: str = SIGNED_URL, name: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "file", "file": {"url": url, "expiry_time": EXPIRY}}
    if name is not None:
        obj["name"] = name
    return obj


def external(url: str, name: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": "external", "external": {"url": url}}
    if name is not None:
        obj["name"] = name
    return obj


def common(obj: str, id_: str, version: str) -> dict[str, Any]:
    d: dict[str, Any] = {
        "object": obj,
        "id": id_,
        "created_time": "2026-01-05T09:31:00.000Z",
        "last_edited_time": "2026-01-05T09:31:30.000Z",
        "created_by": {"object": "user", "id": "u1"},
        "last_edited_by": {"object": "user", "id": "u1"},
        "in_trash": False,
    }
    if version != "2026-03-11":
        d["archived"] = False
    return d


def page_json(version: str = "2025-09-03", **over: Any) -> dict[str, Any]:
    d = common("page", PAGE_ID, version)
    d.update(
        parent={"type": "workspace", "workspace": True},
        is_locked=False,
        url=f"https://www.notion.so/Plans-{PAGE_ID.replace('-', '')}",
        public_url=None,
        icon={"type": "emoji", "emoji": "\U0001f4c4"},
        cover=hosted(),
        properties={"title": {"id": "title", "type": "title", "title": rich("Plans")}},
    )
    d.update(over)
    return d


def row_json(version: str) -> dict[str, Any]:
    if version == "2022-06-28":
        parent = {"type": "database_id", "database_id": DB_ID}
    else:
        parent = {"type": "data_source_id", "data_source_id": DS_ID, "database_id": DB_ID}
    props = {
        "Name": {"id": "title", "type": "title", "title": rich("Row ") + rich("one")},
        "Attachments": {
            "id": "%3AUPp",
            "type": "files",
            "files": [
                hosted(name="report.pdf"),
                external("https://example.com/x.png", name="x.png"),
            ],
        },
        "Done": {"id": "a%3Bx", "type": "checkbox", "checkbox": True},
    }
    return page_json(version, parent=parent, properties=props, icon=None, cover=None)


def database_json(version: str) -> dict[str, Any]:
    d = common("database", DB_ID, version)
    d.update(
        title=rich("Tasks"),
        description=[],
        parent={"type": "page_id", "page_id": PAGE_ID},
        is_inline=True,
        is_locked=False,
        icon=external("https://example.com/icon.svg"),
        cover=None,
        url=f"https://www.notion.so/{DB_ID.replace('-', '')}",
        public_url=None,
    )
    if version == "2022-06-28":
        d["properties"] = {"Name": {"id": "title", "name": "Name", "type": "title", "title": {}}}
    else:
        d["data_sources"] = [{"id": DS_ID, "name": "Tasks"}]
    return d


def data_source_json(version: str = "2025-09-03") -> dict[str, Any]:
    d = common("data_source", DS_ID, version)
    d.update(
        title=rich("Tasks source"),
        description=[],
        parent={"type": "database_id", "database_id": DB_ID},
        database_parent={"type": "page_id", "page_id": PAGE_ID},
        is_inline=False,
        properties={
            "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
            "Attachments": {"id": "%3AUPp", "name": "Attachments", "type": "files", "files": {}},
        },
        icon=None,
        cover=None,
        url="https://www.notion.so/x",
        public_url=None,
    )
    return d


def block_json(kind: str, payload: dict[str, Any], version: str = "2025-09-03",
               **over: Any) -> dict[str, Any]:
    d = common("block", BLOCK_ID, version)
    d.update(type=kind, has_children=False, parent={"type": "page_id", "page_id": PAGE_ID})
    d[kind] = payload
    d.update(over)
    return d


VERSIONS = ["2022-06-28", "2025-09-03", "2026-03-11"]


# ---- ids, times, parents --------------------------------------------------------------


def test_normalize_id_dashes_and_lowercases() -> None:
    assert normalize_id("59833787" "2CF94FDF" "8782E53D" "B20768A5") == PAGE_ID
    assert normalize_id(PAGE_ID.upper()) == PAGE_ID
    assert normalize_id("not-an-id") == "not-an-id"


@pytest.mark.parametrize("version", VERSIONS)
def test_page_parses_in_every_version(version: str) -> None:
    raw = page_json(version, id=PAGE_ID.replace("-", "").upper())
    page = parse_page(raw)
    assert page.id == PAGE_ID
    assert page.title == "Plans"
    assert page.parent == Parent("workspace", None)
    assert page.created_time == datetime(2026, 1, 5, 9, 31, tzinfo=UTC)
    assert page.last_edited_time.tzinfo is not None
    assert page.in_trash is False
    assert page.url.startswith("https://www.notion.so/")
    assert page.icon == Icon("\U0001f4c4", None)
    assert page.cover is not None and page.cover.kind == "file"
    assert page.files_properties == ()


def test_in_trash_reads_either_field() -> None:
    assert parse_page(page_json("2026-03-11", in_trash=True)).in_trash is True
    old = page_json("2022-06-28")
    del old["in_trash"]
    old["archived"] = True
    assert parse_page(old).in_trash is True
    neither = page_json("2026-03-11")
    del neither["in_trash"]
    assert parse_page(neither).in_trash is False


@pytest.mark.parametrize("version", VERSIONS)
def test_row_parent_and_files_property(version: str) -> None:
    row = parse_page(row_json(version))
    assert row.title == "Row one"  # runs concatenated
    assert row.parent.database_id == DB_ID
    if version == "2022-06-28":
        assert row.parent == Parent("database_id", DB_ID, DB_ID)
    else:
        assert row.parent == Parent("data_source_id", DS_ID, DB_ID)
    (prop,) = row.files_properties
    assert (prop.name, prop.id) == ("Attachments", "%3AUPp")
    assert [f.name for f in prop.files] == ["report.pdf", "x.png"]
    assert [f.kind for f in prop.files] == ["file", "external"]
    assert row.raw_properties["Done"]["checkbox"] is True


def test_raw_properties_are_read_only_and_page_is_hashable() -> None:
    page = parse_page(row_json("2025-09-03"))
    with pytest.raises(TypeError):
        page.raw_properties["x"] = 1  # type: ignore[index]
    assert hash(page) == hash(parse_page(row_json("2025-09-03")))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "workspace", "workspace": True}, Parent("workspace", None)),
        ({"type": "page_id", "page_id": PAGE_ID.replace("-", "")}, Parent("page_id", PAGE_ID)),
        ({"type": "block_id", "block_id": BLOCK_ID}, Parent("block_id", BLOCK_ID)),
        ({"type": "database_id", "database_id": DB_ID}, Parent("database_id", DB_ID, DB_ID)),
        (
            {"type": "data_source_id", "data_source_id": DS_ID, "database_id": DB_ID},
            Parent("data_source_id", DS_ID, DB_ID),
        ),
        ({"type": "agent_id", "agent_id": "zz"}, Parent("agent_id", "zz")),
    ],
)
def test_parent_shapes(raw: dict[str, Any], expected: Parent) -> None:
    assert parse_parent(raw) == expected


# ---- file objects and icons ---------------------------------------------------------


def test_hosted_file_has_expiry() -> None:
    ref = parse_file(hosted(name="a.png"))
    assert ref == FileRef("file", SIGNED_URL, datetime(2026, 1, 5, 10, 30, tzinfo=UTC), "a.png")
    assert ref.expires_at() == datetime(2026, 1, 5, 10, 30, tzinfo=UTC).timestamp()


def test_external_file_never_expires() -> None:
    ref = parse_file(external("https://example.com/movie.mp4"))
    assert ref.kind == "external"
    assert ref.name is None
    assert ref.expires_at() is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"type": "file", "file": {"expiry_time": EXPIRY}}, "'url'"),  # no url
        ({"type": "external"}, "'external'"),  # no external object
        ({"type": "file", "file": {"url": SIGNED_URL, "expiry_time": "soon"}}, "'expiry_time'"),
        ({"file": {"url": SIGNED_URL}}, "'type'"),  # no type
        ({"type": "file_upload", "file_upload": {"id": "x"}}, "'file_upload'"),  # strict
        ("https://example.com", "got str"),
    ],
)
def test_malformed_file_objects_raise_api_error(bad: Any, says: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse_file(bad)
    # An API error (EIO) that names the field at fault, not a crash inside the parser.
    assert (info.value.status, info.value.code) == (0, "malformed_response")
    assert "file object" in info.value.message and says in info.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ({"type": "emoji", "emoji": "\u2705"}, Icon("\u2705", None)),
        (
            {"type": "external", "external": {"url": "https://e.x/i.svg"}},
            Icon(None, FileRef("external", "https://e.x/i.svg", None, None)),
        ),
        (
            {"type": "custom_emoji",
             "custom_emoji": {"id": "1", "name": "party", "url": "https://e.x/party.png"}},
            Icon(None, FileRef("external", "https://e.x/party.png", None, "party")),
        ),
        ({"type": "icon", "icon": {"name": "pizza", "color": "gray"}}, None),
    ],
)
def test_icon_shapes(raw: Any, expected: Icon | None) -> None:
    assert parse_icon(raw) == expected


def test_hosted_icon_keeps_expiry() -> None:
    icon = parse_icon(hosted())
    assert icon is not None and icon.file is not None
    assert icon.file.expiry_time == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert (icon.file.kind, icon.file.url, icon.emoji) == ("file", SIGNED_URL, None)


def test_unknown_cover_type_is_skipped_not_fatal() -> None:
    page = parse_page(page_json(cover={"type": "file_upload", "file_upload": {"id": "x"}}))
    assert page.cover is None


# ---- databases and data sources -----------------------------------------------------


def test_database_2022_is_its_own_data_source() -> None:
    db = parse_database(database_json("2022-06-28"))
    assert db.id == DB_ID
    assert db.title == "Tasks"
    assert db.is_inline is True
    assert db.parent == Parent("page_id", PAGE_ID)
    assert db.data_sources == (DataSourceRef(DB_ID, "Tasks"),)
    assert db.icon is not None and db.icon.file is not None


@pytest.mark.parametrize("version", ["2025-09-03", "2026-03-11"])
def test_database_with_data_sources(version: str) -> None:
    raw = database_json(version)
    raw["data_sources"].append({"id": "AA" * 16, "name": "Archive"})
    db = parse_database(raw)
    assert db.data_sources == (
        DataSourceRef(DS_ID, "Tasks"),
        DataSourceRef(normalize_id("aa" * 16), "Archive"),
    )
    assert db.in_trash is False


@pytest.mark.parametrize("version", ["2025-09-03", "2026-03-11"])
def test_data_source_object(version: str) -> None:
    ds = parse_data_source(data_source_json(version))
    assert ds.id == DS_ID
    assert ds.name == "Tasks source"
    assert ds.parent == Parent("database_id", DB_ID, DB_ID)
    assert ds.database_parent == Parent("page_id", PAGE_ID)
    assert ds.raw_properties["Attachments"]["type"] == "files"


def test_legacy_database_read_as_data_source() -> None:
    ds = parse_data_source(database_json("2022-06-28"))
    assert ds.id == DB_ID
    assert ds.name == "Tasks"
    assert ds.parent == Parent("database_id", DB_ID, DB_ID)
    assert ds.database_parent == Parent("page_id", PAGE_ID)
    assert "Name" in ds.raw_properties


# ---- blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file", "pdf"])
def test_file_blocks_carry_a_file(kind: str) -> None:
    payload = {**hosted(), "caption": rich("a caption")}
    if kind in ("file", "pdf"):
        payload["name"] = "doc.bin"
    block = parse_block(block_json(kind, payload))
    assert block.file is not None
    assert block.file.kind == "file"
    assert block.file.name == ("doc.bin" if kind in ("file", "pdf") else None)
    assert block.title is None
    assert block.payload["caption"][0]["plain_text"] == "a caption"


def test_external_file_block() -> None:
    block = parse_block(block_json("video", {**external("https://youtu.be/x"), "caption": []}))
    assert block.file == FileRef("external", "https://youtu.be/x", None, None)


@pytest.mark.parametrize("kind", ["child_page", "child_database"])
def test_child_page_and_database_titles(kind: str) -> None:
    block = parse_block(block_json(kind, {"title": "Nested"}))
    assert block.title == "Nested"
    assert block.file is None


def test_plain_block_has_payload_and_children_flag() -> None:
    block = parse_block(
        block_json("toggle", {"rich_text": rich("more"), "color": "default"}, has_children=True)
    )
    assert isinstance(block, Block)
    assert block.has_children is True
    assert block.parent == Parent("page_id", PAGE_ID)
    assert block.synced_from is None


def test_synced_blocks() -> None:
    original = parse_block(block_json("synced_block", {"synced_from": None}))
    assert original.synced_from is None
    copy_ = parse_block(
        block_json("synced_block",
                   {"synced_from": {"type": "block_id", "block_id": PAGE_ID.replace("-", "")}})
    )
    assert copy_.synced_from == PAGE_ID


def test_block_2026_without_archived_in_trash() -> None:
    raw = block_json("paragraph", {"rich_text": []}, "2026-03-11", in_trash=True)
    assert "archived" not in raw
    assert parse_block(raw).in_trash is True


# ---- users ------------------------------------------------------------------------------


def test_bot_user() -> None:
    user = parse_user(
        {
            "object": "user",
            "id": PAGE_ID,
            "type": "bot",
            "name": "notionfs",
            "avatar_url": None,
            "bot": {"owner": {"type": "workspace", "workspace": True},
                    "workspace_name": "Acme"},
        }
    )
    assert (user.type, user.name, user.workspace_name) == ("bot", "notionfs", "Acme")


def test_partial_user() -> None:
    user = parse_user({"object": "user", "id": PAGE_ID})
    assert (user.id, user.name, user.type, user.workspace_name) == (
        PAGE_ID, None, "unknown", None)


# ---- malformed input never leaks KeyError / TypeError -----------------------------------


def _drop(d: dict[str, Any], key: str) -> dict[str, Any]:
    d = copy.deepcopy(d)
    del d[key]
    return d


@pytest.mark.parametrize(
    ("parser", "raw"),
    [
        (parse_page, _drop(page_json(), "id")),
        (parse_page, _drop(page_json(), "properties")),
        (parse_page, _drop(page_json(), "created_time")),
        (parse_page, _drop(page_json(), "parent")),
        (parse_page, page_json(parent={"type": "page_id"})),
        (parse_page, page_json(properties={"title": {"type": "title", "title": "x"}})),
        (parse_page, page_json(properties={"title": {"type": "title", "title": [{}]}})),
        (parse_page, page_json(last_edited_time="yesterday")),
        (parse_page, page_json(icon={"type": "emoji"})),
        (parse_page, {**page_json(), "object": "database"}),
        (parse_page, ["not", "a", "dict"]),
        (parse_page, None),
        (parse_database, _drop(database_json("2025-09-03"), "id")),
        (parse_database, {**database_json("2025-09-03"), "data_sources": [{"name": "x"}]}),
        (parse_database, {**database_json("2025-09-03"), "data_sources": "x"}),
        (parse_data_source, _drop(data_source_json(), "properties")),
        (parse_data_source, {**data_source_json(), "object": "page"}),
        (parse_block, _drop(block_json("paragraph", {}), "type")),
        (parse_block, block_json("image", {"caption": []})),
        (parse_block, block_json("paragraph", "oops")),  # type: ignore[arg-type]
        (parse_block, block_json("synced_block", {"synced_from": {"type": "block_id"}})),
        (parse_user, {"object": "user"}),
    ],
)
def test_malformed_objects_raise_malformed_response(parser: Any, raw: Any) -> None:
    with pytest.raises(MalformedResponse) as info:
        parser(raw)
    assert info.value.code == "malformed_response"


# ---- trash, archive and lock ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "in_trash", "is_archived", "hidden"),
    [
        ({"in_trash": False, "archived": False}, False, False, False),  # 2022-06-28
        ({"in_trash": True, "archived": True}, True, False, True),
        ({"archived": True}, True, False, True),  # an old answer: archived meant the trash
        ({"in_trash": False, "is_archived": True, "archived": False}, False, True, False),
        ({"in_trash": True, "is_archived": True}, True, True, True),
        ({"in_trash": False, "is_archived": None}, False, False, False),
    ],
)
def test_only_trashed_pages_are_hidden(
    fields: dict[str, Any], in_trash: bool, is_archived: bool, hidden: bool
) -> None:
    raw = page_json()
    for key in ("in_trash", "archived", "is_archived"):
        raw.pop(key, None)
    page = parse_page({**raw, **fields})
    assert (page.in_trash, page.is_archived, page.hidden) == (in_trash, is_archived, hidden)


def test_is_locked_is_read_and_absent_means_unlocked() -> None:
    assert parse_page(page_json(is_locked=True)).is_locked is True
    raw = page_json()
    del raw["is_locked"]
    assert parse_page(raw).is_locked is False
    with pytest.raises(MalformedResponse):
        parse_page(page_json(is_locked="yes"))
