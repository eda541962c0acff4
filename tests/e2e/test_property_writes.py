"""Saving into a row's files property folder of a --writable mount through the kernel,
against the emulator: cp a file in and diff it back, overwrite, rm and mv entries, an empty
property's first file; a fresh mount (a second process) shows exactly the entries expected,
by sha256, and Notion holds them in the expected order, with no duplicates."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import Page

from .mounting import Mount, fusermount, mounted, requires_fuse
from .test_lifecycle import wait_until
from .test_writes import WRITABLE, _unmount, files_of, remounted, sha

pytestmark = [pytest.mark.e2e, requires_fuse]

TABLE = "Nested files/Attachments"  # rows "Two files", "External", "Same names", "Empty"
PROP = "Files"
CREATE, SEND = "POST /v1/file_uploads", "POST /v1/file_uploads/{id}/send"
GET_PAGE, UPDATE_PAGE = "GET /v1/pages/{id}", "PATCH /v1/pages/{id}"
WRITE_ROUTES = {CREATE, SEND, UPDATE_PAGE, "POST /v1/file_uploads/{id}/complete",
                "PATCH /v1/blocks/{id}/children", "PATCH /v1/blocks/{id}", "DELETE /v1/blocks/{id}"}


def entries(m: Mount, row: str) -> list[tuple[str, str]]:
    """(name, sha256) of each entry of the row's Files property, in Notion's order."""
    with m.emulator.reading():  # never a property half rewritten by a request under way
        page = next(n for n in m.emulator.workspace.walk()
                    if isinstance(n, Page) and n.title == row)
        return [(spec.name, sha(spec.read())) for spec in page.properties.get(PROP) or []]


def test_cp_overwrite_rm_mv_and_a_fresh_mount_shows_exactly_the_entries(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    spec = src / "spec.pdf"
    spec.write_bytes(b"%PDF-1.4\n" + os.urandom(40_000))
    photo = src / "photo.png"
    photo.write_bytes(os.urandom(70_000))
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        table = m.path / TABLE
        folder = table / "Two files" / PROP
        a, b = entries(m, "Two files")
        assert sorted(os.listdir(folder)) == ["a.txt", "b.png"]
        # A new file: the last entry. Count what it costs Notion.
        before = m.emulator.counters.snapshot()
        subprocess.run(["cp", str(spec), str(folder)], check=True, timeout=60)
        routes = [r.route for r in m.emulator.counters.snapshot().log[len(before.log):]]
        writes = sorted(r for r in routes if r in WRITE_ROUTES or r == "GET /v1/users/me")
        print(f"\ncp of one new file into a files property: {len(routes)} API calls: "
              f"{sorted(routes)}")
        assert writes == sorted(["GET /v1/users/me", CREATE, SEND, UPDATE_PAGE]), routes
        assert routes.count(GET_PAGE) >= 1  # the page read fresh before the write
        out = tmp_path / "out.pdf"
        subprocess.run(["cp", str(folder / "spec.pdf"), str(out)], check=True, timeout=60)
        subprocess.run(["diff", str(spec), str(out)], check=True, timeout=30)
        assert entries(m, "Two files") == [a, b, ("spec.pdf", sha(spec.read_bytes()))]
        # Overwrite in place, rm, mv: the array keeps its order.
        (folder / "a.txt").write_bytes(b"a, rewritten\n")
        assert (folder / "a.txt").read_bytes() == b"a, rewritten\n"
        os.unlink(folder / "b.png")
        os.rename(folder / "spec.pdf", folder / "specification.pdf")
        expected = [("a.txt", sha(b"a, rewritten\n")),
                    ("specification.pdf", sha(spec.read_bytes()))]
        assert entries(m, "Two files") == expected
        assert sorted(os.listdir(folder)) == ["a.txt", "specification.pdf"]
        # An empty property (shown as a folder on a writable mount) takes its first file.
        empty = table / "Empty" / PROP
        assert os.listdir(empty) == []
        subprocess.run(["cp", str(photo), str(empty)], check=True, timeout=60)
        assert entries(m, "Empty") == [("photo.png", sha(photo.read_bytes()))]
        # Beside an external entry: it stays, as it was.
        external = entries(m, "External")
        (table / "External" / PROP / "notes.txt").write_bytes(b"notes\n")
        assert entries(m, "External") == [*external, ("notes.txt", sha(b"notes\n"))]
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            fresh = m.path / TABLE
            assert files_of(fresh / "Two files" / PROP) == dict(expected)
            assert files_of(fresh / "Empty" / PROP) == {"photo.png": sha(photo.read_bytes())}
            assert files_of(fresh / "External" / PROP) == dict(entries(m, "External"))
    external_specs = next(n for n in m.emulator.workspace.walk()
                          if isinstance(n, Page) and n.title == "External").properties[PROP]
    assert [s.external for s in external_specs] == [True, False]


def test_a_read_only_mount_lists_no_empty_property(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=("--read-only",)) as m:
        assert sorted(os.listdir(m.path / TABLE / "Empty")) == ["index.md"]
        assert sorted(os.listdir(m.path / TABLE / "Two files")) == [PROP, "index.md"]
        with pytest.raises(OSError) as refused:
            (m.path / TABLE / "Two files" / PROP / "x.txt").write_bytes(b"x")
        assert refused.value.errno == errno.EROFS


def test_an_atomic_save_and_a_cut_answer_leave_one_entry_each(tmp_path: Path) -> None:
    import tempfile

    data = os.urandom(20_000)
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        folder = m.path / TABLE / "Same names" / PROP
        first, second = entries(m, "Same names")
        # Python's atomic save over the second "same.txt" (shown under another name: the
        # mount's names are unique): that entry is replaced in its place, under that name.
        shown_before = files_of(folder)
        other = next(name for name, digest in shown_before.items() if digest == second[1])
        fd, temp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(b"saved\n")
        os.replace(temp, folder / other)
        assert (folder / other).read_bytes() == b"saved\n"
        assert entries(m, "Same names") == [first, (other, sha(b"saved\n"))]
        # Notion applies the write, then the answer is lost: checked, never sent twice.
        m.emulator.faults.writes.cut_next(route=UPDATE_PAGE)
        patches = m.emulator.counters.calls(UPDATE_PAGE)
        try:
            (folder / "once.png").write_bytes(data)
        except OSError as error:  # EIO if the check had to wait for a retry
            assert error.errno == errno.EIO
        assert wait_until(lambda: [n for n, _ in entries(m, "Same names")].count("once.png")
                          == 1, 60)
        assert m.emulator.counters.calls(UPDATE_PAGE) == patches + 1
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            shown = files_of(m.path / TABLE / "Same names" / PROP)
    assert sorted(shown.values()) == sorted(h for _, h in entries(m, "Same names"))
    assert [n for n, _ in entries(m, "Same names")].count("once.png") == 1


def test_notion_down_at_close_then_the_entry_lands_once(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        folder = m.path / TABLE / "Two files" / PROP
        os.listdir(folder)
        m.emulator.pause_api()
        f = open(folder / "late.png", "wb")
        f.write(data)
        with pytest.raises(OSError) as failed:
            f.close()
        assert failed.value.errno == errno.EIO  # close() hears of it
        assert (folder / "late.png").read_bytes() == data  # the staged copy answers
        m.emulator.resume_api()
        assert wait_until(lambda: ("late.png", sha(data)) in entries(m, "Two files"), 60)
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / TABLE / "Two files" / PROP)["late.png"] == sha(data)
    assert [n for n, _ in entries(m, "Two files")] == ["a.txt", "b.png", "late.png"]


def test_kill_9_before_the_attach_and_the_next_mount_finishes_it(tmp_path: Path) -> None:
    src = tmp_path / "report.pdf"
    src.write_bytes(b"%PDF-1.4\n" + os.urandom(30_000))
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        folder = m.path / TABLE / "Two files" / PROP
        os.listdir(folder)
        # Uploaded, but Notion keeps refusing the property write for now (nothing applied).
        m.emulator.faults.writes.fail_next(*[503] * 10_000, route=UPDATE_PAGE)
        copy = subprocess.Popen(["cp", str(src), str(folder)], stderr=subprocess.PIPE)
        assert wait_until(lambda: m.emulator.counters.calls(UPDATE_PAGE) >= 1, 60)
        m.proc.kill()  # kill -9: no unmount, no tidying
        m.proc.wait(timeout=10)
        copy.wait(timeout=60)
        subprocess.run([fusermount(), "-u", "-z", str(m.path)], check=False, timeout=30)
        assert [n for n, _ in entries(m, "Two files")] == ["a.txt", "b.png"]
        m.emulator.faults.writes.reset()
        with remounted(m, tmp_path, "after-crash", "--writable", same_cache=True) as log:
            assert wait_until(lambda: len(entries(m, "Two files")) == 3, 60)
            assert "unfinished upload(s) to finish" in log.read_text()
    assert entries(m, "Two files")[2] == ("report.pdf", sha(src.read_bytes()))
    assert m.emulator.counters.calls(CREATE) == 1  # the same upload attached, not redone
