"""Staged files: positional writes on disk, the byte bound, modes, sparse files, threads."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from notionfs.errors import StagingFullError, errno_for
from notionfs.staging import StagingArea


def test_writes_reads_and_truncates_at_any_offset(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1 << 20)
    with area.create() as staged:
        assert staged.write(0, b"hello world") == 11
        staged.write(6, b"WORLD!")
        assert staged.read(0, 100) == b"hello WORLD!"
        assert staged.size == 12
        staged.truncate(5)
        assert staged.read(0, 100) == b"hello" and staged.size == 5
        staged.truncate(8)  # growing by truncate reads as zeros
        assert staged.read(0, 100) == b"hello\0\0\0"
        assert staged.sha256() == hashlib.sha256(b"hello\0\0\0").hexdigest()
        assert area.used_bytes == 8


def test_a_write_past_the_end_leaves_a_hole_not_zeros_on_disk(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1 << 30)
    with area.create() as staged:
        staged.write(512 << 20, b"tail")
        staged.fsync()
        st = os.stat(staged.path)
        assert st.st_size == (512 << 20) + 4
        assert st.st_blocks * 512 < 1 << 20  # sparse: the hole costs no disk
        assert staged.read(100 << 20, 4) == b"\0" * 4
        assert area.used_bytes == (512 << 20) + 4  # counted as it will be uploaded


def test_the_bound_refuses_the_write_that_would_pass_it(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1000)
    first = area.create()
    second = area.create()
    first.write(0, b"a" * 600)
    second.write(0, b"b" * 400)  # exactly at the bound
    with pytest.raises(StagingFullError) as caught:
        second.write(400, b"c")
    assert errno_for(caught.value) == 28  # ENOSPC
    assert second.size == 400 and second.read(0, 1000) == b"b" * 400  # nothing written
    first.write(0, b"z" * 600)  # overwriting in place costs nothing
    first.truncate(100)
    second.write(400, b"c" * 500)  # the freed bytes are usable again
    assert area.used_bytes == 1000
    second.discard()
    assert area.used_bytes == 100 and not second.path.exists()
    first.close()


def test_modes_are_private_and_files_survive_a_new_area(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        area = StagingArea(tmp_path / "staging", 1 << 20)
        staged = area.create()
    finally:
        os.umask(old)
    staged.write(0, b"kept across a crash")
    staged.fsync()
    assert stat.S_IMODE(os.stat(area.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(staged.path).st_mode) == 0o600
    # A new process: the file is found, counted, and reopened by path.
    again = StagingArea(tmp_path / "staging", 1 << 20)
    assert again.used_bytes == len(b"kept across a crash")
    assert again.files() == [staged.path]
    assert again.orphans([]) == [staged.path] and again.orphans([staged.path]) == []
    with again.open(staged.path) as reopened:
        assert reopened.read(0, 100) == b"kept across a crash"
    with pytest.raises(ValueError):
        again.open(tmp_path / "elsewhere.stage")
    staged.close()


def test_parallel_writers_and_readers(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 64 << 20)
    staged = area.create()
    block = 64 * 1024

    def writer(index: int) -> None:
        for i in range(index, 256, 8):
            staged.write(i * block, bytes([i % 256]) * block)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert staged.size == 256 * block == area.used_bytes
    for i in range(256):
        assert staged.read(i * block, block) == bytes([i % 256]) * block
    staged.discard()


def test_a_part_reader_streams_a_window(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1 << 20)
    with area.create() as staged:
        staged.write(0, bytes(range(256)) * 10)
        reader = staged.reader(100, 300)
        assert len(reader) == 300
        assert reader.seek(0, os.SEEK_END) == 300 and reader.seek(0) == 0
        assert reader.read(10) == (bytes(range(256)) * 10)[100:110]
        assert reader.tell() == 10
        reader.seek(0)
        assert reader.read() == (bytes(range(256)) * 10)[100:400]
        assert reader.read(5) == b""
        assert not hasattr(reader, "fileno") or _no_fileno(reader)
        tail = staged.reader(2500)  # to the end
        assert tail.read() == (bytes(range(256)) * 10)[2500:]


def _no_fileno(reader: object) -> bool:
    try:
        reader.fileno()  # type: ignore[attr-defined]
    except OSError:
        return True
    return False


def test_a_note_sits_beside_its_file_is_replaced_whole_and_goes_with_it(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1 << 20)
    staged = area.create()
    assert area.note_of(staged.path) is None
    staged.note({"name": "a.txt", "folder_id": "p1"})
    staged.note({"name": "b.txt", "folder_id": "p1"})
    assert area.note_of(staged.path) == {"name": "b.txt", "folder_id": "p1"}
    notes = [p for p in area.root.iterdir() if not p.name.endswith(".stage")]
    assert len(notes) == 1 and stat.S_IMODE(notes[0].stat().st_mode) == 0o600
    assert area.files() == [staged.path]  # a note is not a staged file
    assert area.orphans([]) == [staged.path] and area.orphans([staged.path]) == []
    with pytest.raises(ValueError, match="token"):
        staged.note({"name": "ntn_" + "x" * 46})
    assert area.note_of(staged.path) == {"name": "b.txt", "folder_id": "p1"}
    staged.discard()
    assert list(area.root.iterdir()) == []


def test_sweeping_notes_removes_only_those_of_no_staged_file(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging", 1 << 20)
    live = area.create()
    live.note({"name": "a.txt"})
    gone = area.create()
    gone.note({"name": "b.txt"})
    os.unlink(gone.path)  # a crash between remove()'s two unlinks
    half = area.root / f"{live.path.stem}.where.0123abcd.new"  # a crash inside note()
    half.write_text("{")
    area.sweep_notes()
    assert sorted(p.name for p in area.root.iterdir()) == sorted(
        [live.path.name, f"{live.path.stem}.where"])
    assert area.note_of(live.path) == {"name": "a.txt"}
    live.close()
    gone.close()
