"""The write overlay without FUSE, against the emulator over loopback: read-after-write from
the local layer, the API calls one save costs, the hand-over to Notion's listing, scratch
files that cost nothing, and removal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notionfs.errors import GeneratedFileError, NotionFSError, UnsupportedFileError
from notionfs.overlay import WriteOverlay
from notionfs.remote import file_host_client
from notionfs.workspace import NotionWorkspace, WritableSource
from tests.emulator.conftest import World
from tests.emulator.uploading import Rig, build_rig, handed_over

CREATE, SEND = "POST /v1/file_uploads", "POST /v1/file_uploads/{id}/send"
APPEND, DELETE = "PATCH /v1/blocks/{id}/children", "DELETE /v1/blocks/{id}"
PAGE = "/Big page"


@pytest.fixture
def overlay(world: World, tmp_path: Path) -> Iterator[tuple[WriteOverlay, Rig]]:
    rig = build_rig(world, tmp_path / "staging")
    files_http = file_host_client(rig.settings)
    workspace = NotionWorkspace(rig.client, files_http, rig.settings)
    overlay = WriteOverlay(workspace, rig.queue, wait_s=10.0)
    try:
        yield overlay, rig
    finally:
        overlay.close()
        rig.queue.close()
        files_http.close()
        rig.client.close()


def test_a_save_is_read_back_at_once_costs_three_calls_and_hands_over(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    source, rig = overlay
    assert isinstance(source, WritableSource)
    counters = rig.world.emulator.counters
    folder = source.lookup(PAGE)
    assert folder is not None
    handle = source.create(f"{PAGE}/notes.txt")
    handle.write(0, b"hello, ")
    handle.write(7, b"world\n")
    assert handle.read(0, 100) == b"hello, world\n"
    local = source.lookup(f"{PAGE}/notes.txt")
    assert local is not None and source.size(local) == 13
    assert "notes.txt" in [n.name for n in source.listdir(folder)]
    before = counters.snapshot()
    handle.flush()
    calls = [r.route for r in counters.snapshot().log[len(before.log):]]
    assert sorted(calls) == sorted([CREATE, SEND, APPEND]), calls
    handle.close()
    # A listing fetched after the upload shows Notion's block: same name and bytes.
    node = handed_over(source, folder, "notes.txt")
    assert not node.key.startswith("local:") and node.object_id
    reader = source.open(node)
    try:
        assert reader.read(0, 100) == b"hello, world\n"
    finally:
        reader.close()
    assert source.size(node) == 13


def test_scratch_files_cost_no_call_and_refusals_come_first(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    source, rig = overlay
    counters = rig.world.emulator.counters
    folder = source.lookup(PAGE)
    assert folder is not None
    source.listdir(folder)  # listed once: what follows asks Notion nothing
    before = counters.total
    swap = source.create(f"{PAGE}/.notes.txt.swp")
    swap.write(0, b"swap")
    swap.flush()
    swap.close()
    with pytest.raises(UnsupportedFileError):
        source.create(f"{PAGE}/setup.exe")
    index = source.lookup(f"{PAGE}/index.md")
    assert index is not None
    with pytest.raises(GeneratedFileError):
        source.open_write(index, truncate=True)
    assert counters.total == before
    source.unlink(f"{PAGE}/.notes.txt.swp")
    assert source.lookup(f"{PAGE}/.notes.txt.swp") is None
    assert counters.total == before


def test_rm_trashes_the_block_once(overlay: tuple[WriteOverlay, Rig]) -> None:
    source, rig = overlay
    handle = source.create(f"{PAGE}/gone.png")
    handle.write(0, b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    handle.flush()
    handle.close()
    counters = rig.world.emulator.counters
    source.unlink(f"{PAGE}/gone.png")
    assert counters.calls(DELETE) == 1
    folder = source.lookup(PAGE)
    assert folder is not None
    assert "gone.png" not in [n.name for n in source.listdir(folder)]


def test_a_version_written_while_the_first_upload_waits_is_journalled_at_close(
    world: World, tmp_path: Path
) -> None:
    """Saved, then written again while Notion is away: at close (no unmount, as if the
    process died right after) the later bytes are already journalled, as the follower of
    the first upload; the next start lands both as one block holding the later bytes."""
    rig = build_rig(world, tmp_path / "staging")
    files_http = file_host_client(rig.settings)
    workspace = NotionWorkspace(rig.client, files_http, rig.settings)
    overlay = WriteOverlay(workspace, rig.queue, wait_s=0.5)
    fresh = None
    try:
        assert overlay.lookup(PAGE) is not None
        handle = overlay.create(f"{PAGE}/draft.txt")
        handle.write(0, b"first version\n")
        world.emulator.pause_api()
        with pytest.raises(NotionFSError):
            handle.flush()  # Notion away: the program is told, the entry stays journalled
        handle.write(0, b"second version, longer\n")
        handle.close()
        entries = rig.journal.entries()
        follower = next(e for e in entries if e.target.action == "follow")
        assert follower.staged_path is not None
        assert Path(follower.staged_path).read_bytes() == b"second version, longer\n"
        first = next(e for e in entries if e.id == follower.target.after)
        assert first.target.action == "append" and first.name == "draft.txt"
        world.emulator.resume_api()
        fresh = rig.restart()  # the crash: nothing closed, nothing tidied
        fresh.drain()
        assert fresh.journal.entries() == []
    finally:
        world.emulator.resume_api()
        for queue in (rig.queue, fresh.queue if fresh else None):
            if queue is not None:
                queue.close()
        files_http.close()
        rig.client.close()
    page = world.refs.big_page.id
    drafts = [b for b in rig.children(page) if b["type"] == "file"
              and b["file"]["name"] == "draft.txt"]
    assert len(drafts) == 1
    assert rig.block_bytes(drafts[0]["id"]) == b"second version, longer\n"


def test_a_healthy_upload_slower_than_the_wait_lets_close_succeed(
    world: World, tmp_path: Path
) -> None:
    """A big file on a slow link outlasts the flush's wait with nothing failed: close()
    succeeds (the bytes are journalled), the state says it is still on its way, and it
    lands. Notion down, by contrast, is an error close() hears of (EIO)."""
    rig = build_rig(world, tmp_path / "staging")
    rig.queue.start()
    files_http = file_host_client(rig.settings)
    workspace = NotionWorkspace(rig.client, files_http, rig.settings)
    overlay = WriteOverlay(workspace, rig.queue, wait_s=0.3)
    try:
        assert overlay.lookup(PAGE) is not None
        world.emulator.faults.latency_s = 0.25  # create, send, append: ~0.75 s in all
        handle = overlay.create(f"{PAGE}/slow.txt")
        handle.write(0, b"on a slow link\n")
        handle.flush()  # no error: still running, nothing failed
        handle.close()
        node = overlay.lookup(f"{PAGE}/slow.txt")
        assert node is not None and overlay.xattrs(node)["state"] != "done"
        deadline = time.monotonic() + 20
        while overlay.xattrs(node)["state"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert overlay.xattrs(node)["state"] == "done"
        world.emulator.faults.latency_s = 0.0
        world.emulator.pause_api()
        down = overlay.create(f"{PAGE}/down.txt")
        down.write(0, b"Notion is away\n")
        with pytest.raises(NotionFSError):
            down.flush()
        down.close()
    finally:
        world.emulator.faults.latency_s = 0.0
        world.emulator.resume_api()
        overlay.close()
        rig.queue.close()
        files_http.close()
        rig.client.close()
    drafts = [b for b in rig.children(world.refs.big_page.id) if b["type"] == "file"
              and b["file"]["name"] == "slow.txt"]
    assert len(drafts) == 1


def test_a_refused_version_is_kept_once_and_a_flush_again_retries_that_entry(
    overlay: tuple[WriteOverlay, Rig],
) -> None:
    """Notion refuses a save for good: close() after it sends nothing more (the refused
    entry keeps the bytes, for `notionfs uploads`); an fsync again before the close sends the
    same entry again, never a second entry over the same staged copy."""
    source, rig = overlay
    counters = rig.world.emulator.counters
    page = rig.world.refs.big_page.id

    def notion_files() -> list[str]:
        return [b["file"]["name"] for b in rig.children(page) if b["type"] == "file"]

    kept = source.create(f"{PAGE}/kept.txt")
    kept.write(0, b"refused bytes")
    rig.world.emulator.faults.writes.fail_next(400, route=APPEND)
    with pytest.raises(NotionFSError):
        kept.flush()
    kept.close()
    (entry,) = rig.journal.entries()
    assert entry.state == "failed" and entry.staged_path is not None
    assert Path(entry.staged_path).read_bytes() == b"refused bytes"
    assert counters.calls(APPEND) == 1 and notion_files() == []

    again = source.create(f"{PAGE}/again.txt")
    again.write(0, b"second try")
    rig.world.emulator.faults.writes.fail_next(400, route=APPEND)
    with pytest.raises(NotionFSError):
        again.flush()
    again.flush()  # the program tries again: the same entry is sent again, and lands
    again.close()
    assert [e.id for e in rig.journal.entries()] == [entry.id]
    assert notion_files() == ["again.txt"] and counters.calls(APPEND) == 3
