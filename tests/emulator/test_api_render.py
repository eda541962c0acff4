"""Pure rendering and indexing: model objects to Notion JSON, without any server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

import pytest

from notionfs.emulator.index import WorkspaceIndex, dashed_id, id_key
from notionfs.emulator.model import (
    Block,
    Database,
    FileSpec,
    Page,
    Workspace,
    file_block,
    paragraph,
    synced,
    synced_copy,
    toggle,
)
from notionfs.emulator.render import (
    V2022,
    V2025,
    V2026,
    RenderContext,
    iso_time,
    option_json,
    page_url,
    property_id,
    render_block,
    render_data_source,
    render_database,
    render_page,
    render_schema,
)


def fake_file_object(spec: FileSpec) -> dict[str, Any]:
    if spec.external:
        return {"type": "external", "external": {"url": f"https://ext.example/{spec.name}"}}
    return {"type": "file", "file": {"url": f"https://s3.example/{spec.id}", "expiry_time": "x"}}


def context(workspace: Workspace, version: str = V2025) -> RenderContext:
    workspace.assign_ids()
    return RenderContext(version, WorkspaceIndex(workspace), fake_file_object)


# ---- small pieces -------------------------------------------------------------------------


def test_iso_time_is_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert iso_time(datetime(2026, 1, 5, 11, 30, 0, 123456, tzinfo=paris)) == (
        "2026-01-05T10:30:00.123Z"
    )
    assert iso_time(datetime(2026, 1, 5, 10, 30)) == "2026-01-05T10:30:00.000Z"  # naive = UTC


@pytest.mark.parametrize(
    ("title", "slug"),
    [("Home Page", "Home-Page-"), ("  Q&A: 2026! ", "Q-A-2026-"), ("", ""), ("日本", "")],
)
def test_page_url_slug(title: str, slug: str) -> None:
    object_id = "6f1c1d2e-8a4b-4c59-9e0e-4d1f3b2a7c10"
    assert page_url(title, object_id) == (
        f"https://www.notion.so/{slug}6f1c1d2e8a4b4c599e0e4d1f3b2a7c10"
    )


def _in_a_new_process(code: str) -> str:
    """What ``code`` prints in a fresh interpreter with ``property_id`` imported."""
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    script = f"from notionfs.emulator.render import property_id\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_property_ids_are_stable_url_encoded_and_title_is_title() -> None:
    assert property_id("Name", "title") == "title"
    names = [f"Prop {i}" for i in range(200)]
    ids = [property_id(name, "rich_text") for name in names]
    # Stable means the same in the next emulator process too (another hash seed, no state).
    assert ids == _in_a_new_process(
        "print(*(property_id(f'Prop {i}', 'rich_text') for i in range(200)))"
    ).split()
    assert len(set(ids)) > 190
    for pid in ids:
        assert re.fullmatch(r"[A-Za-z0-9%_.~-]+", pid), pid
        assert quote(unquote(pid), safe="") == pid
    assert any("%" in pid for pid in ids)  # like Notion's, some need decoding


def test_option_json_is_stable() -> None:
    option = option_json("Bug")
    assert option == option_json("Bug")
    assert option["name"] == "Bug" and option["id"] != option_json("Feature")["id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", option["id"])


def test_id_key_and_dashed_id() -> None:
    assert id_key("6F1C1D2E-8A4B-4C59-9E0E-4D1F3B2A7C10") == "6f1c1d2e8a4b4c599e0e4d1f3b2a7c10"
    assert id_key("not-an-id") is None
    assert dashed_id("6f1c1d2e8a4b4c599e0e4d1f3b2a7c10") == "6f1c1d2e-8a4b-4c59-9e0e-4d1f3b2a7c10"


# ---- the index ----------------------------------------------------------------------------


def test_index_rejects_two_objects_with_one_id() -> None:
    first, second = Page("a"), Page("b")
    first.id = second.id = "6f1c1d2e-8a4b-4c59-9e0e-4d1f3b2a7c10"
    with pytest.raises(ValueError, match="share the id"):
        WorkspaceIndex(Workspace(pages=[first, second]))


def test_index_children_skip_trashed_and_unshared() -> None:
    hidden = Page("hidden", shared=False)
    gone = paragraph("gone")
    gone.in_trash = True
    kept = paragraph("kept")
    home = Page("home", children=[kept, gone, hidden])
    ctx = context(Workspace(pages=[home]))
    assert ctx.index.children(home) == [kept]


def test_index_trash_is_inherited_for_search_but_children_stay_listable() -> None:
    child = Page("child")
    parent = Page("parent", in_trash=True, children=[child])
    ctx = context(Workspace(pages=[parent]))
    assert ctx.index.entry_of(child).trashed is True
    assert ctx.index.children(parent) == [child]


# ---- pages, blocks, databases -------------------------------------------------------------


def row_workspace() -> tuple[Workspace, Database, Page]:
    row = Page("Row", properties={"Status": "Done", "Files": [FileSpec("a.txt", data=b"a")]})
    db = Database(
        "DB", properties={"Name": "title", "Status": "status", "Files": "files"}, rows=[row]
    )
    return Workspace(pages=[Page("Top", children=[db])]), db, row


def test_row_parent_per_version() -> None:
    workspace, db, row = row_workspace()
    old = render_page(row, context(workspace, V2022))
    assert old["parent"] == {"type": "database_id", "database_id": db.id}
    new = render_page(row, context(workspace, V2025))
    assert new["parent"] == {
        "type": "data_source_id",
        "data_source_id": db.data_sources[0].id,
        "database_id": db.id,
    }
    spec = row.properties["Files"][0]
    assert new["properties"]["Files"]["files"] == [
        {
            "name": "a.txt",
            "type": "file",
            "file": {"url": f"https://s3.example/{spec.id}", "expiry_time": "x"},
        }
    ]


def test_trash_fields_per_version() -> None:
    workspace, db, row = row_workspace()
    assert {"archived", "in_trash"} <= set(render_page(row, context(workspace, V2022)))
    newest = render_page(row, context(workspace, V2026))
    assert "archived" not in newest and newest["in_trash"] is False
    assert "archived" not in render_database(db, context(workspace, V2026))
    assert "archived" not in render_data_source(db.data_sources[0], context(workspace, V2026))


def test_status_schema_has_options_and_groups() -> None:
    workspace, db, _ = row_workspace()
    schema = render_schema(db.data_sources[0], context(workspace))
    status = schema["Status"]["status"]
    assert [o["name"] for o in status["options"]] == ["Done"]
    assert [g["name"] for g in status["groups"]] == ["To-do", "In progress", "Complete"]
    assert status["groups"][0]["option_ids"] == [status["options"][0]["id"]]


def test_database_versions() -> None:
    workspace, db, _ = row_workspace()
    old = render_database(db, context(workspace, V2022))
    assert "properties" in old and "data_sources" not in old
    new = render_database(db, context(workspace, V2025))
    assert new["data_sources"] == [{"id": db.data_sources[0].id, "name": "DB"}]
    assert "properties" not in new


def test_file_block_payload_and_model_untouched() -> None:
    spec = FileSpec("doc.pdf", data=b"%PDF", external=True)
    block = file_block("file", spec, caption="see")
    payload_before = dict(block.payload)
    ctx = context(Workspace(pages=[Page("p", children=[block])]))
    rendered = render_block(block, ctx)["file"]
    assert list(rendered) == ["caption", "type", "external", "name"]
    assert rendered["external"] == {"url": "https://ext.example/doc.pdf"}
    assert rendered["name"] == "doc.pdf"
    assert block.payload == payload_before


def test_synced_copy_renders_synced_from() -> None:
    original = synced([paragraph("x")])
    dup = synced_copy(original)
    ctx = context(Workspace(pages=[Page("p", children=[original, dup])]))
    rendered = render_block(dup, ctx)
    assert rendered["synced_block"] == {
        "synced_from": {"type": "block_id", "block_id": original.id}
    }
    assert rendered["has_children"] is True
    assert ctx.index.children(dup) == original.children


def test_block_parents() -> None:
    inner = paragraph("inner")
    outer = toggle("outer", [inner])
    top = Page("top", children=[outer])
    ctx = context(Workspace(pages=[top]))
    assert render_block(outer, ctx)["parent"] == {"type": "page_id", "page_id": top.id}
    assert render_block(inner, ctx)["parent"] == {"type": "block_id", "block_id": outer.id}


def test_unknown_block_type_passes_its_payload_through() -> None:
    block = Block("equation", {"expression": "e=mc^2"})
    ctx = context(Workspace(pages=[Page("p", children=[block])]))
    assert render_block(block, ctx)["equation"] == {"expression": "e=mc^2"}
