"""A row's files property folder through the write overlay, without FUSE, against the
emulator over loopback: a new file becomes a new entry (API calls counted), an overwrite
replaces its entry in place, rm and mv change the array, an empty property takes its first
file; a read-only workspace keeps showing only properties that hold files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from notionfs.errors import NotWritableError, UnsupportedFileError
from notionfs.nodes import Kind, Node
from notionfs.overlay import WriteOverlay
from notionfs.remote import file_host_client
from notionfs.workspace import NotionWorkspace
from tests.emulator.conftest import World
from tests.emulator.uploading import CREATE, SEND, UPDATE_PAGE, Rig, build_rig, handed_over

GET_PAGE = "GET /v1/pages/{id}"
ROW = "/Home Page/Tasks/First task"  # Attachments: notes.txt
EMPTY_ROW = "/Home Page/Tasks/Task 001"  # Attachments: none
PROP = f"{ROW}/Attachments"


@pytest.fixture
def overlay(world: World, tmp_path: Path) -> Iterator[tuple[WriteOverlay, Rig]]:
    rig = build_rig(world, tmp_path / "staging")
    settings = dataclasses.replace(rig.settings, writable=True)
    files_http = file_host_client(settings)
    workspace = NotionWorkspace(rig.client, files_http, settings)
    source = WriteOverlay(workspace, rig.queue, wait_s=10.0)
    try:
        yield source, rig
    finally:
        source.close()
        rig.queue.close()
        files_http.close()
        rig.client.close()


def notion_entries(rig: Rig, row_title: str) -> list[tuple[str, bytes]]:
    """(name, bytes) of each entry of the row's Attachments property, as Notion holds it."""
    row = rig.world.refs.rows[{"First task": 0, "Task 001": 1}[row_title]]
    page = rig.world.client().get(f"/v1/pages/{row.id}").json()
    files: list[dict[str, Any]] = page["properties"]["Attachments"]["files"]
    return [(f["name"], rig.world.download(f["file"]["url"])) for f in files]


def read(source: WriteOverlay, node: Node) -> bytes:
    reader = source.open(node)
    try:
        return reader.read(0, 1 << 20)
    finally:
        reader.close()


def shown(source: WriteOverlay, path: str) -> dict[str, bytes]:
    folder = source.lookup(path)
    assert folder is not None and folder.kind is Kind.FILES_PROPERTY
    return {n.name: read(source, n) for n in source.listdir(folder)}


def save(source: WriteOverlay, path: str, data: bytes) -> None:
    handle = source.create(path)
    try:
        handle.write(0, data)
        handle.flush()
    finally:
        handle.close()


def test_a_new_file_becomes_the_last_entry_in_four_calls(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    source, rig = overlay
    counters = rig.world.emulator.counters
    assert shown(source, PROP) == {"notes.txt": b"row attachment"}
    rig.api.max_file_bytes()  # users/me: once per mount
    handle = source.create(f"{PROP}/spec.pdf")
    handle.write(0, b"%PDF-1.4 spec")
    assert handle.read(0, 100) == b"%PDF-1.4 spec"
    before = counters.snapshot()
    handle.flush()
    calls = [r.route for r in counters.snapshot().log[len(before.log):]]
    assert sorted(calls) == sorted([CREATE, SEND, GET_PAGE, UPDATE_PAGE]), calls
    handle.close()
    assert notion_entries(rig, "First task") == [("notes.txt", b"row attachment"),
                                                 ("spec.pdf", b"%PDF-1.4 spec")]
    # A listing fetched after the upload shows Notion's entry, not the local file.
    folder = source.lookup(PROP)
    assert folder is not None
    node = handed_over(source, folder, "spec.pdf")
    assert not node.key.startswith("local:")
    assert read(source, node) == b"%PDF-1.4 spec"


def test_an_empty_property_takes_its_first_file(overlay: tuple[WriteOverlay, Rig]) -> None:
    source, rig = overlay
    assert shown(source, f"{EMPTY_ROW}/Attachments") == {}
    save(source, f"{EMPTY_ROW}/Attachments/first.txt", b"first")
    assert notion_entries(rig, "Task 001") == [("first.txt", b"first")]
    assert shown(source, f"{EMPTY_ROW}/Attachments") == {"first.txt": b"first"}


def test_a_read_only_workspace_shows_only_properties_with_files(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    _source, rig = overlay
    files_http = file_host_client(rig.settings)
    read_only = dataclasses.replace(rig.settings, writable=False)
    workspace = NotionWorkspace(rig.client, files_http, read_only)
    try:
        empty, full = workspace.lookup(EMPTY_ROW), workspace.lookup(ROW)
        assert empty is not None and full is not None
        assert [n.name for n in workspace.listdir(empty)] == ["index.md"]
        assert [n.name for n in workspace.listdir(full)] == ["Attachments", "index.md"]
    finally:
        workspace.close()


def test_overwrite_replaces_the_entry_in_place(overlay: tuple[WriteOverlay, Rig]) -> None:
    source, rig = overlay
    save(source, f"{PROP}/b.txt", b"b")
    node = source.lookup(f"{PROP}/notes.txt")
    assert node is not None
    handle = source.open_write(node, truncate=True)
    handle.write(0, b"rewritten")
    handle.flush()
    handle.close()
    assert notion_entries(rig, "First task") == [("notes.txt", b"rewritten"), ("b.txt", b"b")]
    # Written again once landed: the entry it became is replaced, never a second one.
    handle = source.open_write(source.lookup(f"{PROP}/notes.txt"), truncate=True)  # type: ignore[arg-type]
    handle.write(0, b"again")
    handle.flush()
    handle.close()
    assert notion_entries(rig, "First task") == [("notes.txt", b"again"), ("b.txt", b"b")]


def test_an_entry_someone_replaced_meanwhile_gets_the_save_beside_it(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    source, rig = overlay
    node = source.lookup(f"{PROP}/notes.txt")
    assert node is not None
    handle = source.open_write(node, truncate=True)
    handle.write(0, b"mine")
    row = rig.world.refs.rows[0].id
    rig.world.client().patch(f"/v1/pages/{row}", json={"properties": {"Attachments": {
        "files": []}}})  # someone empties the property before the save reaches Notion
    handle.flush()
    handle.close()
    [(name, data)] = notion_entries(rig, "First task")
    assert name.startswith("notes (conflict ") and name.endswith(").txt") and data == b"mine"


def test_rm_and_mv_of_entries(overlay: tuple[WriteOverlay, Rig]) -> None:
    source, rig = overlay
    save(source, f"{PROP}/b.txt", b"b")
    save(source, f"{PROP}/c.txt", b"c")
    counters = rig.world.emulator.counters
    before = counters.calls(UPDATE_PAGE)
    source.rename(f"{PROP}/notes.txt", f"{PROP}/n.txt")  # listed by Notion
    source.rename(f"{PROP}/c.txt", f"{PROP}/see.txt")  # just uploaded by this mount
    assert notion_entries(rig, "First task") == [("n.txt", b"row attachment"), ("b.txt", b"b"),
                                                 ("see.txt", b"c")]
    folder = source.lookup(PROP)
    assert folder is not None  # the listing after the rename shows Notion's entries only
    assert {n.name: n.key.startswith("local:") for n in source.listdir(folder)} == {
        "n.txt": False, "b.txt": False, "see.txt": False}
    source.unlink(f"{PROP}/b.txt")
    assert notion_entries(rig, "First task") == [("n.txt", b"row attachment"),
                                                 ("see.txt", b"c")]
    source.unlink(f"{PROP}/see.txt")
    assert counters.calls(UPDATE_PAGE) == before + 4  # one array rewrite each
    assert shown(source, PROP) == {"n.txt": b"row attachment"}
    with pytest.raises(NotWritableError):
        source.rename(f"{PROP}/n.txt", f"{PROP}/n.txt~")  # Notion files keep real names


def test_an_atomic_save_over_an_entry_replaces_it_in_place(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    source, rig = overlay
    save(source, f"{PROP}/b.txt", b"b")
    temp = source.create(f"{PROP}/.goutputstream-XYZ123")
    temp.write(0, b"saved atomically")
    temp.flush()
    temp.close()
    source.rename(f"{PROP}/.goutputstream-XYZ123", f"{PROP}/notes.txt")
    assert notion_entries(rig, "First task") == [("notes.txt", b"saved atomically"),
                                                 ("b.txt", b"b")]
    assert set(shown(source, PROP)) == {"notes.txt", "b.txt"}


def test_refusals_come_before_any_call(overlay: tuple[WriteOverlay, Rig]) -> None:
    source, rig = overlay
    shown(source, PROP)
    counters = rig.world.emulator.counters
    before = counters.total
    with pytest.raises(UnsupportedFileError):
        source.create(f"{PROP}/setup.exe")
    with pytest.raises(UnsupportedFileError):
        source.rename(f"{PROP}/notes.txt", f"{PROP}/notes.exe")
    with pytest.raises(NotWritableError):
        source.mkdir(f"{PROP}/folder")
    assert counters.total == before
