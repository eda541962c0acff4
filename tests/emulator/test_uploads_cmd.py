"""`notionfs uploads`: an upload Notion refused for good is listed, its bytes copied out (also
while the journal is held by a mount), made due again and landed by the next start, or
discarded; unsaved copies a dead mount left are listed."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from notionfs.cli import main
from notionfs.errors import UploadFailedError
from notionfs.journal import Target
from tests.emulator.conftest import World
from tests.emulator.uploading import APPEND, Rig, build_rig, random_bytes, sha


def _refused(world: World, tmp_path: Path, data: bytes, name: str = "scan.pdf") -> Rig:
    """A rig under <tmp>/cache/staging/<area> whose upload of ``data`` Notion refused."""
    rig = build_rig(world, tmp_path / "cache" / "staging" / "area1")
    staged = rig.stage(data)
    page = world.refs.big_page.id
    world.emulator.faults.writes.fail_next(400, route=APPEND)
    entry = rig.queue.submit(staged, Target.append(page, "pdf"), name=name)
    staged.close()
    with pytest.raises(UploadFailedError):
        rig.queue.wait(entry.id, timeout_s=20)
    return rig


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["uploads", *args, "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr()
    return status, out.out + out.err


def test_a_refused_upload_is_listed_saved_retried_and_lands(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data = random_bytes(3_000_000, seed=7)
    rig = _refused(world, tmp_path, data)
    try:
        (entry,) = rig.journal.entries()
        assert entry.state == "failed"
        # While the mount holds the journal: listed, and its bytes can be copied out.
        status, out = _run(tmp_path, capsys, "list")
        assert status == 0 and entry.id[:12] in out and "failed" in out and "scan.pdf" in out
        assert "2.9 MiB" in out and f"page {world.refs.big_page.id}" in out
        assert "validation_error" in out  # Notion's reason
        status, out = _run(tmp_path, capsys, "save", entry.id[:6], str(tmp_path))
        assert status == 0, out
        assert sha((tmp_path / "scan.pdf").read_bytes()) == sha(data)
        status, out = _run(tmp_path, capsys, "save", entry.id[:6], str(tmp_path))
        assert status == 1 and "exists" in out  # never over an existing file
        status, out = _run(tmp_path, capsys, "retry", entry.id[:6])
        assert status == 1 and "unmount it first" in out
    finally:
        rig.queue.close()
    status, out = _run(tmp_path, capsys, "retry", entry.id[:6])
    assert status == 0 and "due again" in out
    fresh = build_rig(world, rig.root)  # the next mount
    try:
        fresh.drain()
        assert fresh.journal.entries() == []
    finally:
        fresh.queue.close()
    blocks = [b for b in fresh.children(world.refs.big_page.id) if b["type"] == "pdf"]
    assert [b["pdf"]["name"] for b in blocks] == ["scan.pdf"]
    assert fresh.block_bytes(blocks[0]["id"]) == data
    status, out = _run(tmp_path, capsys)  # list is the default
    assert status == 0 and "no uploads waiting" in out


def test_discard_drops_the_entry_and_its_bytes_and_unknown_ids_are_usage_errors(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rig = _refused(world, tmp_path, b"%PDF-1.4 refused")
    (entry,) = rig.journal.entries()
    stray = rig.staging.create()  # an unsaved copy, as a dead mount leaves one
    stray.write(0, b"half")
    stray.note({"name": "draft\x1b[31m.txt", "folder_key": "page:x", "folder_id": "x",
                "scratch": False})
    stray.close()
    status, out = _run(tmp_path, capsys, "list")  # the mount holds the journal: in use
    assert "writing" in out and "unsaved" not in out
    assert "draft\\x1b[31m.txt" in out and "\x1b" not in out  # shown, never obeyed
    rig.queue.close()
    status, out = _run(tmp_path, capsys, "list")
    assert "unsaved" in out and "draft" in out and "next --writable mount" in out
    assert _run(tmp_path, capsys, "save", "ffffffffffff", str(tmp_path))[0] == 2
    status, out = _run(tmp_path, capsys, "discard", entry.id)
    assert status == 0 and "discarded" in out
    assert entry.staged_path is not None and not Path(entry.staged_path).exists()
    status, out = _run(tmp_path, capsys, "list")
    assert entry.id[:12] not in out and "draft" in out
    assert hashlib.sha256(stray.path.read_bytes()).hexdigest() == sha(b"half")


def test_save_into_a_folder_never_leaves_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rig = _refused(world, tmp_path, b"%PDF-1.4 kept")
    (entry,) = rig.journal.entries()
    rig.journal.save(entry.but(name="../../escape.pdf"))  # as a damaged journal might say
    rig.queue.close()
    into = tmp_path / "out"
    into.mkdir()
    status, out = _run(tmp_path, capsys, "save", entry.id, str(into))
    assert status == 0, out
    assert [p.name for p in into.iterdir()] == ["escape.pdf"]
    assert not (tmp_path / "escape.pdf").exists()


def test_an_upload_waiting_to_be_tried_again_says_why_and_when(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rig = build_rig(world, tmp_path / "cache" / "staging" / "area1", retry_base_s=600.0,
                    retry_cap_s=600.0)
    staged = rig.stage(b"%PDF-1.4 later")
    world.emulator.faults.writes.fail_next(503, route=APPEND)
    entry = rig.queue.submit(staged, Target.append(world.refs.big_page.id, "pdf"),
                             name="later.pdf")
    staged.close()
    rig.queue.run_due()
    rig.queue.close()
    status, out = _run(tmp_path, capsys, "list")
    (line,) = [line for line in out.splitlines() if entry.id[:12] in line]
    assert status == 0 and "attempt 1 failed" in line and "service_unavailable" in line
    assert re.search(r"retry in (\d+) s", line), line
