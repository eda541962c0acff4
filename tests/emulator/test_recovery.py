"""Files a mount died writing (still open, never flushed): the next start saves their bytes
beside what is there, under a dated name; scratch and empty files go; a copy with no note is
kept. Against the emulator over loopback, the "crash" being a new queue over the same disk."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.overlay import WriteOverlay
from notionfs.recovery import recover_unsaved
from notionfs.remote import file_host_client
from notionfs.staging import NOTE_SUFFIX
from notionfs.workspace import NotionWorkspace
from tests.emulator.conftest import World
from tests.emulator.uploading import Rig, build_rig

PAGE = "/Big page"
PROP = "/Home Page/Tasks/First task/Attachments"  # holds notes.txt
RECOVERED = re.compile(r"(.+) \(recovered \d{4}-\d\d-\d\d \d{4}\)(\..+)?")


@dataclasses.dataclass
class Crash:
    """A writable overlay over ``rig``, never closed (closing journals what is open): the
    mount that dies. ``next_mount`` starts the one after it over the same disk."""

    source: WriteOverlay
    rig: Rig
    after: list[Rig] = dataclasses.field(default_factory=list)

    def next_mount(self) -> Rig:
        self.after.append(fresh := self.rig.restart())
        return fresh


@pytest.fixture
def crashed(world: World, tmp_path: Path) -> Iterator[Crash]:
    rig = build_rig(world, tmp_path / "staging")
    settings = dataclasses.replace(rig.settings, writable=True)
    files_http = file_host_client(settings)
    workspace = NotionWorkspace(rig.client, files_http, settings)
    crash = Crash(WriteOverlay(workspace, rig.queue, wait_s=10.0), rig)
    try:
        yield crash
    finally:
        for each in (rig, *crash.after):
            each.queue.close()
        workspace.close()
        files_http.close()
        rig.client.close()


def page_files(rig: Rig, page_id: str | None = None) -> dict[str, bytes]:
    """Name -> bytes of the file blocks directly on a page (the Big page by default)."""
    blocks = rig.children(page_id or rig.world.refs.big_page.id)
    return {b[b["type"]]["name"]: rig.block_bytes(b["id"]) for b in blocks
            if b["type"] in ("file", "image", "pdf", "audio", "video")
            and "file" in b[b["type"]]}  # hosted by Notion, not external


def test_a_file_open_when_the_mount_died_is_saved_beside_the_original(
    crashed: Crash, caplog: pytest.LogCaptureFixture,
) -> None:
    source, rig = crashed.source, crashed.rig
    home = rig.world.refs.home.id
    before = page_files(rig, home)  # the Home Page's image
    assert len(before) == 1 and all(not RECOVERED.fullmatch(n) for n in before)
    new = source.create("/Home Page/draft.txt")
    new.write(0, b"half a draft\n")
    name, original = next(iter(before.items()))
    node = source.lookup(f"/Home Page/{name}")
    assert node is not None
    over = source.open_write(node, truncate=True)
    over.write(0, b"half of a new version")
    assert rig.journal.entries() == []  # nothing flushed: nothing journalled
    fresh = crashed.next_mount()  # the mount dies, the handles still open
    with caplog.at_level(logging.WARNING, logger="notionfs.recovery"):
        entries = recover_unsaved(fresh.queue)
    assert len(entries) == 2 and all(e.target.action == "append" for e in entries)
    fresh.drain()
    now = page_files(fresh, home)
    assert now[name] == original  # the file that was there is untouched
    added = {n: data for n, data in now.items() if n not in before}
    kept = {RECOVERED.fullmatch(n).groups(): data for n, data in added.items()}  # type: ignore[union-attr]
    stem, _, ext = name.rpartition(".")
    assert kept == {("draft", ".txt"): b"half a draft\n",
                    (stem, f".{ext}"): b"half of a new version"}, added
    assert fresh.staging.files() == [] and not list(fresh.staging.root.glob(f"*{NOTE_SUFFIX}"))
    assert "saved beside it as" in caplog.text
    assert recover_unsaved(fresh.queue) == []  # once only


def test_a_later_version_of_a_saved_file_is_recovered_and_the_saved_one_lands(
    crashed: Crash,
) -> None:
    source = crashed.source
    handle = source.create(f"{PAGE}/log.txt")
    handle.write(0, b"saved\n")
    handle.flush()
    handle.write(6, b"written after the save\n")  # a copy of its own, not journalled
    fresh = crashed.next_mount()
    assert len(recover_unsaved(fresh.queue)) == 1
    fresh.drain()
    files = page_files(fresh)
    assert files["log.txt"] == b"saved\n"
    recovered = [data for n, data in files.items() if RECOVERED.fullmatch(n)
                 and n.startswith("log (")]
    assert recovered == [b"saved\nwritten after the save\n"]


def test_a_files_property_gets_a_new_entry(
    crashed: Crash,
) -> None:
    source, rig = crashed.source, crashed.rig
    handle = source.create(f"{PROP}/scan.pdf")
    handle.write(0, b"%PDF-1.4 half a scan")
    fresh = crashed.next_mount()
    (entry,) = recover_unsaved(fresh.queue)
    assert entry.target.action == "property"
    fresh.drain()
    row = rig.world.refs.rows[0]
    page = rig.world.client().get(f"/v1/pages/{row.id}").json()
    names = [f["name"] for f in page["properties"]["Attachments"]["files"]]
    assert names[0] == "notes.txt" and len(names) == 2
    assert RECOVERED.fullmatch(names[1]).groups() == ("scan", ".pdf")  # type: ignore[union-attr]


def test_scratch_and_empty_files_go_and_a_copy_with_no_note_stays(
    crashed: Crash, caplog: pytest.LogCaptureFixture,
) -> None:
    source, rig = crashed.source, crashed.rig
    scratch = source.create(f"{PAGE}/.goutputstream-ABC123")
    scratch.write(0, b"an editor's temporary copy")
    source.create(f"{PAGE}/empty.txt")
    stray = rig.staging.create()  # a copy whose note is gone
    stray.write(0, b"bytes of unknown destination")
    stray.close()
    assert len(rig.staging.files()) == 3
    blocks = len(rig.children(rig.world.refs.big_page.id))
    fresh = crashed.next_mount()
    with caplog.at_level(logging.INFO, logger="notionfs.recovery"):
        assert recover_unsaved(fresh.queue) == []
    assert fresh.staging.files() == [stray.path]
    assert stray.path.read_bytes() == b"bytes of unknown destination"
    assert str(stray.path) in caplog.text and "kept" in caplog.text
    assert len(rig.children(rig.world.refs.big_page.id)) == blocks


def test_a_rename_before_the_crash_is_the_name_recovered(
    crashed: Crash,
) -> None:
    """An editor's temporary file renamed to its real name is flushed by the rename; one
    written again after it has its own copy, whose note carries the new name."""
    source = crashed.source
    handle = source.create(f"{PAGE}/.goutputstream-XYZ789")
    handle.write(0, b"v1\n")
    source.rename(f"{PAGE}/.goutputstream-XYZ789", f"{PAGE}/report.txt")
    handle.write(3, b"v2\n")
    fresh = crashed.next_mount()
    assert len(recover_unsaved(fresh.queue)) == 1
    fresh.drain()
    files = page_files(fresh)
    assert files["report.txt"] == b"v1\n"
    assert [d for n, d in files.items() if n.startswith("report (recovered ")] == [b"v1\nv2\n"]


def test_a_copy_whose_name_notion_refuses_stays_and_the_rest_are_saved(
    crashed: Crash, caplog: pytest.LogCaptureFixture,
) -> None:
    source, rig = crashed.source, crashed.rig
    refused = rig.staging.create()
    refused.write(0, b"no extension: Notion takes no such name")
    refused.note({"name": "README", "folder_key": f"page:{rig.world.refs.big_page.id}",
                  "folder_id": rig.world.refs.big_page.id, "scratch": False})
    refused.close()
    handle = source.create(f"{PAGE}/kept.txt")
    handle.write(0, b"saved")
    fresh = crashed.next_mount()
    with caplog.at_level(logging.WARNING, logger="notionfs.recovery"):
        (entry,) = recover_unsaved(fresh.queue)
    assert entry.name is not None and entry.name.startswith("kept (recovered ")
    assert refused.path.exists() and str(refused.path) in caplog.text
    fresh.drain()
    assert fresh.staging.files() == [refused.path]
