"""Saving into a --writable mount through the kernel, against the emulator: real programs
write, a fresh mount (a second process on the same emulator) shows exactly what they saved,
by sha256, with no duplicates; failures reach the program and lose nothing."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from notionfs.emulator import samples
from notionfs.emulator.model import Block, Page

from .mounting import Mount, fusermount, mounted, requires_fuse, sha256_file
from .test_lifecycle import start_mount, wait_mounted, wait_until

pytestmark = [pytest.mark.e2e, requires_fuse]

WRITABLE = ("--writable", "--deadline", "20")
PAGE = "Nested files/Page in column"  # holds column-notes.txt only


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_of(folder: Path) -> dict[str, str]:
    """Every file directly in ``folder`` (no generated index.md) by name: its sha256."""
    return {
        p.name: sha(p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in ("index.md", "index.csv")
    }


def _unmount(m: Mount) -> None:
    subprocess.run([fusermount(), "-u", str(m.path)], check=True, timeout=30)
    assert m.proc.wait(timeout=30) == 0, m.log_text()


@contextmanager
def remounted(m: Mount, tmp_path: Path, name: str, *args: str,
              same_cache: bool = False, at: Path | None = None) -> Iterator[Path]:
    """A second mount process on ``m``'s emulator (at ``m``'s mountpoint, or ``at`` beside
    it), with a cache of its own (nothing learnt by the first mount's metadata cache or
    staging area), or with the first one's (its journal and staged files: what a restart
    after a crash finds)."""
    mountpoint = m.path if at is None else at
    log = tmp_path / f"{name}.log"
    env_cache = tmp_path / ("cache" if same_cache else f"cache-{name}")
    old = os.environ.get("NOTIONFS_CACHE_DIR")
    os.environ["NOTIONFS_CACHE_DIR"] = str(env_cache)
    try:
        proc = start_mount(m.emulator, mountpoint, log, "--poll-interval", "0", *args)
    finally:
        if old is None:
            os.environ.pop("NOTIONFS_CACHE_DIR", None)
        else:
            os.environ["NOTIONFS_CACHE_DIR"] = old
    try:
        wait_mounted(proc, mountpoint, log)
        yield log
    finally:
        subprocess.run([fusermount(), "-u", str(mountpoint)], check=False, timeout=30)
        assert proc.wait(timeout=30) == 0, log.read_text()


def block_names(m: Mount, page_title: str) -> list[str]:
    """The names of the file blocks Notion holds on a page (trashed ones left out)."""
    names: list[str] = []

    def visit(nodes: list[Any]) -> None:
        for node in nodes:
            if isinstance(node, Block) and not node.in_trash:
                if node.file is not None:
                    names.append(node.file.name)
                visit(node.children)

    with m.emulator.reading():  # never a block half made by a request under way
        page = next(n for n in m.emulator.workspace.walk()
                    if isinstance(n, Page) and n.title == page_title)
        visit(page.children)
    return names


def test_a_mount_is_writable_by_default_and_a_second_one_of_the_workspace_reads_only(
    tmp_path: Path,
) -> None:
    data = b"saved by a mount given no flags\n"
    with mounted(tmp_path, samples.nested_files(), args=("--deadline", "20")) as m:
        (m.path / PAGE / "plain.txt").write_bytes(data)
        assert files_of(m.path / PAGE)["plain.txt"] == sha(data)
        assert block_names(m, "Page in column").count("plain.txt") == 1
        # A second mount of the same workspace with the same cache: the first owns the
        # upload journal, so this one serves reads only, and says why.
        beside = tmp_path / "beside"
        beside.mkdir()
        with remounted(m, tmp_path, "beside", same_cache=True, at=beside) as log:
            assert files_of(beside / PAGE)["plain.txt"] == sha(data)
            with pytest.raises(OSError) as refused:
                (beside / PAGE / "other.txt").write_bytes(b"x")
            assert refused.value.errno == errno.EROFS
            assert "mounting read-only" in log.read_text()
            assert "in use by another notionfs mount" in log.read_text()
        # --writable insists: no silent read-only mount.
        old = os.environ.get("NOTIONFS_CACHE_DIR")
        os.environ["NOTIONFS_CACHE_DIR"] = str(tmp_path / "cache")
        try:
            insisting = start_mount(m.emulator, beside, tmp_path / "insist.log", "--writable")
        finally:
            os.environ.pop("NOTIONFS_CACHE_DIR", None)
            if old is not None:
                os.environ["NOTIONFS_CACHE_DIR"] = old
        assert insisting.wait(timeout=60) == 2
        said = insisting.stdout.read().decode() if insisting.stdout else ""
        assert "in use by another notionfs mount" in said, said
        (m.path / PAGE / "plain.txt").unlink()  # the first mount still writes
    assert block_names(m, "Page in column").count("plain.txt") == 0


def test_cp_rsync_and_back_out_then_a_fresh_mount_shows_exactly_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "photo.png").write_bytes(os.urandom(300_000))
    (src / "notes two.txt").write_bytes(b"hello from cp\n" * 100)
    (src / "synced.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(50_000))
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        before = files_of(page)
        subprocess.run(["cp", str(src / "photo.png"), str(src / "notes two.txt"), str(page)],
                       check=True, timeout=60)
        subprocess.run(["rsync", "-rt", str(src / "synced.pdf"), str(page) + "/"],
                       check=True, timeout=60)
        out = tmp_path / "out"
        out.mkdir()
        for name in ("photo.png", "notes two.txt", "synced.pdf"):
            shutil.copy(page / name, out / name)
        subprocess.run(["diff", "-r", str(src), str(out)], check=True, timeout=30)
        expected = dict(before, **{p.name: sha(p.read_bytes()) for p in src.iterdir()})
        assert files_of(page) == expected
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE) == expected
    assert sorted(block_names(m, "Page in column")) == sorted(expected)


def test_overwrite_replaces_in_place_and_rm_trashes(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        target = page / "column-notes.txt"
        target.write_bytes(b"rewritten\n")
        assert target.read_bytes() == b"rewritten\n"
        (page / "extra.txt").write_bytes(b"extra")
        os.rename(page / "extra.txt", page / "extra 2.txt")  # before Notion lists it
        assert (page / "extra 2.txt").read_bytes() == b"extra"
        assert "extra 2.txt" in block_names(m, "Page in column")
        os.unlink(page / "extra 2.txt")
        with open(page / "column-notes.txt", "ab") as f:  # rm while being rewritten
            f.write(b"more")
            os.unlink(page / "column-notes.txt")
        assert "column-notes.txt" not in block_names(m, "Page in column")
        (page / "column-notes.txt").write_bytes(b"rewritten\n")
        assert sorted(os.listdir(page)) == ["column-notes.txt", "index.md"]
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE) == {"column-notes.txt": sha(b"rewritten\n")}
    assert block_names(m, "Page in column") == ["column-notes.txt"]


def test_python_atomic_save(tmp_path: Path) -> None:
    import tempfile

    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        for round_ in range(2):
            data = f"version {round_}\n".encode()
            fd, temp = tempfile.mkstemp(dir=page)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, page / "saved.txt")
            assert (page / "saved.txt").read_bytes() == data
        assert sorted(os.listdir(page)) == ["column-notes.txt", "index.md", "saved.txt"]
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE)["saved.txt"] == sha(b"version 1\n")
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "saved.txt"]


def test_what_cannot_be_written_fails_at_once(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        calls = m.emulator.counters.total
        with pytest.raises(PermissionError) as refused:
            open(page / "program.exe", "wb").close()
        assert refused.value.errno == errno.EPERM
        assert "program.exe" in m.log_text() and "does not take .exe" in m.log_text()
        with pytest.raises(PermissionError) as generated:
            open(page / "index.md", "wb").close()
        assert generated.value.errno == errno.EACCES
        with pytest.raises(PermissionError):
            os.chmod(page / "column-notes.txt", 0o600)
        os.chmod(page / "column-notes.txt", 0o644)  # what it shows: accepted
        os.utime(page / "column-notes.txt", (1, 1))  # accepted, not kept
        assert m.emulator.counters.total == calls  # refused before asking Notion anything


def test_efbig_at_the_free_limit(tmp_path: Path) -> None:
    limit = 5 * 1024 * 1024
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        m.emulator.uploads.plan = "free"
        page = m.path / PAGE
        fd = os.open(page / "big.pdf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        written = 0
        try:
            with pytest.raises(OSError) as too_big:
                while True:
                    written += os.write(fd, b"x" * (1 << 20))
            assert too_big.value.errno == errno.EFBIG
            assert written == limit  # every byte up to the limit, none past it
        finally:
            os.close(fd)
        assert "this workspace takes files up to 5242880" in m.log_text()


def test_notion_down_during_close_then_the_upload_completes(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        m.emulator.pause_api()
        f = open(page / "late.png", "wb")
        f.write(data)
        with pytest.raises(OSError) as failed:
            f.close()
        assert failed.value.errno == errno.EIO
        assert (page / "late.png").read_bytes() == data  # the staged copy answers
        state = os.getxattr(page / "late.png", "user.notionfs.state").decode()
        assert state.startswith("staged: attempt 1 failed: NetworkError"), state
        assert "user.notionfs.state" in os.listxattr(page / "late.png")
        m.emulator.resume_api()
        assert wait_until(lambda: "late.png" in block_names(m, "Page in column"), 60)
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE)["late.png"] == sha(data)
    assert block_names(m, "Page in column").count("late.png") == 1


def test_scratch_files_are_never_uploaded(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        for name in (".goutputstream-ABC123", ".notes.txt.swp", "4913", "notes.txt~",
                     ".~lock.report.odt#", "~$report.docx"):
            (page / name).write_bytes(b"scratch")
            assert (page / name).read_bytes() == b"scratch"
        assert sorted(block_names(m, "Page in column")) == ["column-notes.txt"]
        os.unlink(page / "4913")
        os.rename(page / ".goutputstream-ABC123", page / "renamed.txt")
        assert (page / "renamed.txt").read_bytes() == b"scratch"
        assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "renamed.txt"]
        _unmount(m)
    assert list((tmp_path / "cache" / "staging").rglob("journal.db"))
    staged = list((tmp_path / "cache" / "staging").rglob("*.stage"))
    assert staged == []  # scratch files go at unmount; uploaded ones once Notion has them


def test_mkdir_rmdir_and_renames_of_folders_and_files(tmp_path: Path) -> None:
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        top = m.path / "Nested files"
        os.mkdir(top / "Plans")
        assert (top / "Plans").is_dir() and os.listdir(top / "Plans") == ["index.md"]
        (top / "Plans" / "draft.txt").write_bytes(b"draft\n")
        with pytest.raises(OSError) as not_empty:
            os.rmdir(top / "Plans")
        assert not_empty.value.errno == errno.ENOTEMPTY
        os.mkdir(top / "Scratch")
        os.rmdir(top / "Scratch")
        assert not (top / "Scratch").exists()
        os.mkdir(top / "Attachments" / "New row")
        assert (top / "Attachments" / "New row").is_dir()
        os.rename(top / "Plans", top / "Plans 2026")
        os.rename(top / "Plans 2026", top / "Page in toggle" / "Plans 2026")
        moved = top / "Page in toggle" / "Plans 2026"
        os.rename(moved / "draft.txt", moved / "final.txt")
        subprocess.run(["mv", str(moved / "final.txt"), str(top / PAGE.split("/")[1])],
                       check=True, timeout=30)
        assert sorted(os.listdir(moved)) == ["index.md"]
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            fresh = m.path / "Nested files"
            assert not (fresh / "Plans").exists() and not (fresh / "Scratch").exists()
            assert (fresh / "Page in toggle" / "Plans 2026").is_dir()
            assert (fresh / "Attachments" / "New row").is_dir()
            assert files_of(m.path / PAGE)["final.txt"] == sha(b"draft\n")
    assert block_names(m, "Plans 2026") == []
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "final.txt"]


def test_renames_onto_names_notion_already_has_replace_them(tmp_path: Path) -> None:
    """rename(2) onto an existing name replaces it, as on any disk: the file renamed takes
    the name, the one it replaced goes to Notion's trash; an empty folder likewise."""
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        (page / "old.txt").write_bytes(b"old version\n")
        (page / "new.txt").write_bytes(b"new version\n")
        _unmount(m)  # both are plain Notion file blocks for the next mount
        with remounted(m, tmp_path, "again", "--deadline", "20"):
            subprocess.run(["mv", "-f", str(page / "new.txt"), str(page / "old.txt")],
                           check=True, timeout=30)
            assert files_of(page) == {"column-notes.txt": files_of(page)["column-notes.txt"],
                                      "old.txt": sha(b"new version\n")}
            with pytest.raises(OSError) as onto_index:
                os.rename(page / "old.txt", page / "index.md")
            assert onto_index.value.errno == errno.EPERM
            top = m.path / "Nested files"
            os.mkdir(top / "Blank")
            os.mkdir(top / "Drafts")
            (top / "Drafts" / "d.txt").write_bytes(b"d\n")
            os.rename(top / "Drafts", top / "Blank")  # onto an empty folder: replaces it
            assert (top / "Blank" / "d.txt").read_bytes() == b"d\n"
            assert not (top / "Drafts").exists()
            os.mkdir(top / "Full")
            (top / "Full" / "f.txt").write_bytes(b"f\n")
            with pytest.raises(OSError) as not_empty:
                os.rename(top / "Blank", top / "Full")
            assert not_empty.value.errno == errno.ENOTEMPTY
        with remounted(m, tmp_path, "fresh"):
            assert files_of(page)["old.txt"] == sha(b"new version\n")
            assert "new.txt" not in files_of(page)
            assert sorted(os.listdir(m.path / "Nested files" / "Blank")) == ["d.txt",
                                                                              "index.md"]
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "old.txt"]
    titles = [n.title for n in m.emulator.workspace.walk()
              if isinstance(n, Page) and not n.in_trash]
    assert titles.count("Blank") == 1 and "Drafts" not in titles


def test_with_the_feed_on_a_save_leaves_the_next_listing_nothing_to_wait_for(
    tmp_path: Path,
) -> None:
    """The folder a save landed in is listed anew behind its next answer (the local layer
    shows the file meanwhile), not before it: no listing call is answered between the save
    and the `ls` that follows it, and one comes after."""
    children = "GET /v1/blocks/{id}/children"
    with mounted(tmp_path, samples.nested_files(),
                 args=("--poll-interval", "3600", "--deadline", "20")) as m:
        page = m.path / PAGE
        os.listdir(page)
        (page / "one.txt").write_bytes(b"one\n")
        saved = time.monotonic()
        m.emulator.faults.latency_s = 0.3  # a listing waited for would be answered in here
        try:
            listed = os.listdir(page)
            answered = time.monotonic()
            assert wait_until(lambda: any(
                r.route == children and r.at_s > answered
                for r in m.emulator.counters.snapshot().log), 20)
        finally:
            m.emulator.faults.latency_s = 0.0
        assert "one.txt" in listed
        waited = [r for r in m.emulator.counters.snapshot().log
                  if r.route == children and saved < r.at_s <= answered]
        assert waited == []
        assert files_of(page)["one.txt"] == sha(b"one\n")


def test_the_change_feed_never_hides_what_is_not_uploaded_yet(tmp_path: Path) -> None:
    data = os.urandom(70_000)
    children_route = "GET /v1/blocks/{id}/children"
    with mounted(tmp_path, samples.nested_files(), args=(*WRITABLE, "--poll-interval", "1")) as m:
        page = m.path / PAGE
        os.listdir(page)
        # The upload fails twice (at close, then once in the background), then lands.
        m.emulator.faults.writes.fail_next(503, 503, route="POST /v1/file_uploads")
        with pytest.raises(OSError) as failed:
            with open(page / "pending.png", "wb") as f:
                f.write(data)
        assert failed.value.errno == errno.EIO
        os.mkdir(page / "Just made")
        # Someone else edits the page: the feed drops its listing, which is fetched anew.
        notion_page = next(n for n in m.emulator.workspace.walk()
                           if isinstance(n, Page) and n.title == "Page in column")
        notion_page.children.append(Page("Someone's page"))
        m.emulator.touch(notion_page)
        listed = m.emulator.counters.calls(children_route)

        def relisted() -> bool:
            names = os.listdir(page)
            assert "pending.png" in names and "Just made" in names, names
            assert os.stat(page / "pending.png").st_size == len(data)
            return "Someone's page" in names and m.emulator.counters.calls(children_route) > listed

        assert wait_until(relisted, 30)
        assert (page / "pending.png").read_bytes() == data
        assert wait_until(lambda: "pending.png" in block_names(m, "Page in column"), 60)
        assert wait_until(lambda: relisted() and "pending.png" in os.listdir(page), 10)
        assert (page / "pending.png").read_bytes() == data
    assert block_names(m, "Page in column").count("pending.png") == 1


def test_gio_copy_and_save(tmp_path: Path) -> None:
    if shutil.which("gio") is None:
        pytest.skip("gio is not installed")
    src = tmp_path / "report.pdf"
    src.write_bytes(b"%PDF-1.4\n" + os.urandom(40_000))
    saved = b"saved by gio\n" * 50
    env = dict(os.environ, GIO_USE_VFS="local")
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        subprocess.run(["gio", "copy", str(src), str(page / "report.pdf")], check=True,
                       timeout=60, env=env)
        for _ in range(2):  # a new file, then an existing one replaced through a temporary
            subprocess.run(["gio", "save", str(page / "gio notes.txt")], input=saved,
                           check=True, timeout=60, env=env)
        assert (page / "gio notes.txt").read_bytes() == saved
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            shown = files_of(m.path / PAGE)
    assert shown == {"column-notes.txt": shown["column-notes.txt"],
                     "report.pdf": sha(src.read_bytes()), "gio notes.txt": sha(saved)}
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "gio notes.txt",
                                                        "report.pdf"]


def test_vim_edits_a_text_attachment(tmp_path: Path) -> None:
    if shutil.which("vim") is None:
        pytest.skip("vim is not installed")
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        before = (page / "column-notes.txt").read_bytes()
        subprocess.run(["vim", "-es", "-N", "-u", "NONE", "-i", "NONE",
                        "-c", "normal Goadded by vim", "-c", "wq",
                        str(page / "column-notes.txt")], check=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        after = before + b"added by vim\n"
        assert (page / "column-notes.txt").read_bytes() == after
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE) == {"column-notes.txt": sha(after)}
    assert block_names(m, "Page in column") == ["column-notes.txt"]


def test_imagemagick_writes_its_output_into_a_page(tmp_path: Path) -> None:
    if shutil.which("convert") is None:
        pytest.skip("ImageMagick is not installed")
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        subprocess.run(["convert", "-size", "64x48", "gradient:blue-red",
                        str(page / "gradient.png")], check=True, timeout=60)
        local = tmp_path / "gradient.png"
        shutil.copy(page / "gradient.png", local)
        assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE)["gradient.png"] == sha(local.read_bytes())
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "gradient.png"]


SEND = "POST /v1/file_uploads/{id}/send"


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _big_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(mib):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def test_a_200_mib_file_goes_up_in_parts_one_failed_part_resent(tmp_path: Path) -> None:
    src = tmp_path / "film.mp4"
    digest = _big_file(src, 200)
    with mounted(tmp_path, samples.nested_files(), args=("--writable", "--deadline", "300")) as m:
        page = m.path / PAGE
        os.listdir(page)
        peak_before = _peak_rss_mib(m.proc.pid)
        m.emulator.faults.writes.fail_part(3)
        subprocess.run(["cp", str(src), str(page)], check=True, timeout=300)
        grown = _peak_rss_mib(m.proc.pid) - peak_before
        print(f"\npeak RSS of the mount grew {grown:.0f} MiB over a 200 MiB save")
        assert grown < 100  # staged on disk, sent in streamed parts: never held whole
        assert m.emulator.counters.calls(SEND) == 20 + 1  # 10 MiB parts, part 3 twice
        assert m.emulator.counters.calls("POST /v1/file_uploads") == 1
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert sha256_file(m.path / PAGE / "film.mp4") == digest
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "film.mp4"]


def test_a_1_gib_save_keeps_the_mount_s_memory_flat(tmp_path: Path) -> None:
    """1 GiB written through the kernel and uploaded: the mount's peak resident set stays
    within its read cache bound + 100 MiB of what it was before (bytes are staged on disk
    and sent in streamed parts)."""
    cache_mib = 64
    src = tmp_path / "recording.mp4"
    digest = _big_file(src, 1024)
    args = ("--deadline", "600", "--cache-size", f"{cache_mib}M")
    with mounted(tmp_path, samples.nested_files(), args=args) as m:
        page = m.path / PAGE
        os.listdir(page)
        before = _peak_rss_mib(m.proc.pid)
        subprocess.run(["dd", f"if={src}", f"of={page / 'recording.mp4'}", "bs=4M",
                        "status=none"], check=True, timeout=600)
        peak = _peak_rss_mib(m.proc.pid)
        print(f"\npeak RSS of the mount: {before:.0f} MiB before, {peak:.0f} MiB after a "
              "1 GiB save")
        assert peak - before < cache_mib + 100
        assert m.emulator.counters.calls("POST /v1/file_uploads") == 1
        assert m.emulator.counters.calls(SEND) == 103  # 10 MiB parts
        assert sha256_file(page / "recording.mp4") == digest  # read back through the mount
        assert _peak_rss_mib(m.proc.pid) - before < cache_mib + 100
    assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "recording.mp4"]


def test_kill_9_during_an_upload_and_the_next_mount_finishes_it(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    digest = _big_file(src, 60)
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        # Part 4 keeps failing: the upload stops part way, journalled.
        m.emulator.faults.writes.fail_part(4, times=10_000)
        copy = subprocess.Popen(["cp", str(src), str(page)], stderr=subprocess.PIPE)
        assert wait_until(lambda: m.emulator.counters.calls(SEND) >= 4, 120)
        m.proc.kill()  # kill -9: no unmount, no tidying
        m.proc.wait(timeout=10)
        copy.wait(timeout=60)
        subprocess.run([fusermount(), "-u", "-z", str(m.path)], check=False, timeout=30)
        assert block_names(m, "Page in column") == ["column-notes.txt"]
        m.emulator.faults.writes.reset()
        with remounted(m, tmp_path, "after-crash", "--writable", same_cache=True) as log:
            assert wait_until(lambda: "clip.mp4" in block_names(m, "Page in column"), 120)
            assert "unfinished upload(s) to finish" in log.read_text()
            assert wait_until(lambda: "clip.mp4" in os.listdir(m.path / PAGE), 30)
            assert sha256_file(m.path / PAGE / "clip.mp4") == digest
    assert sorted(block_names(m, "Page in column")) == ["clip.mp4", "column-notes.txt"]
    assert m.emulator.counters.calls("POST /v1/file_uploads") == 1  # resumed, not restarted


def test_kill_9_while_a_program_is_writing_and_the_next_mount_saves_its_bytes(
    tmp_path: Path,
) -> None:
    """A program has written part of a file and still holds it open when the mount is
    killed: nothing was flushed, so nothing was journalled. The next mount finds the staged
    copy and saves it beside whatever is there, as NAME (recovered DATE TIME).ext."""
    data = os.urandom(300_000)
    writer_code = (
        "import os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n"
        "os.write(fd, sys.stdin.buffer.read())\n"
        "print('written', flush=True)\n"
        "time.sleep(600)\n"
    )
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        writer = subprocess.Popen(
            ["python3", "-c", writer_code, str(page / "take.mp4")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert writer.stdin is not None and writer.stdout is not None
            writer.stdin.write(data)
            writer.stdin.close()
            assert writer.stdout.readline() == b"written\n"
            m.proc.kill()  # kill -9, the file still open in the writer
            m.proc.wait(timeout=10)
        finally:
            writer.kill()
            writer.wait(timeout=30)
        subprocess.run([fusermount(), "-u", "-z", str(m.path)], check=False, timeout=30)
        assert block_names(m, "Page in column") == ["column-notes.txt"]
        with remounted(m, tmp_path, "after-crash", "--writable", same_cache=True) as log:
            def recovered() -> list[str]:
                return [n for n in block_names(m, "Page in column")
                        if n.startswith("take (recovered ") and n.endswith(").mp4")]
            assert wait_until(lambda: len(recovered()) == 1, 60), log.read_text()
            (name,) = recovered()
            assert "saved beside it as" in log.read_text()
            assert wait_until(lambda: name in os.listdir(m.path / PAGE), 30)
            assert sha256_file(m.path / PAGE / name) == sha(data)
    assert sorted(block_names(m, "Page in column")) == sorted(["column-notes.txt", name])


def test_a_save_notion_refuses_is_kept_and_notionfs_uploads_gets_it_back(
    tmp_path: Path,
) -> None:
    """Notion refuses a save for good: close() says EIO, the bytes stay on disk with their
    journal entry (once, not re-sent at close or unmount). `notionfs uploads` lists it and
    copies the bytes out while mounted; after `uploads retry` the next mount lands it."""
    data = os.urandom(200_000)

    def uploads(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "notionfs", "uploads", *args,
             "--cache-dir", str(tmp_path / "cache")],
            capture_output=True, text=True, timeout=60, check=False)

    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        m.emulator.faults.writes.fail_next(400, route="PATCH /v1/blocks/{id}/children")
        with pytest.raises(OSError) as caught:
            (page / "refused.png").write_bytes(data)
        assert caught.value.errno == errno.EIO
        listed = uploads("list")
        rows = [line.split() for line in listed.stdout.splitlines() if "refused.png" in line]
        assert len(rows) == 1 and rows[0][1] == "failed", listed.stdout + listed.stderr
        entry_id = rows[0][0]
        saved = uploads("save", entry_id, str(tmp_path))
        assert saved.returncode == 0, saved.stderr
        assert sha((tmp_path / "refused.png").read_bytes()) == sha(data)
        _unmount(m)
        assert block_names(m, "Page in column") == ["column-notes.txt"]
        listed = uploads("list")
        assert [line.split()[1] for line in listed.stdout.splitlines()
                if "refused.png" in line] == ["failed"], listed.stdout
        retried = uploads("retry", entry_id)
        assert retried.returncode == 0, retried.stderr
        with remounted(m, tmp_path, "again", "--writable", same_cache=True):
            assert wait_until(lambda: "refused.png" in block_names(m, "Page in column"), 60)
            assert wait_until(lambda: "refused.png" in os.listdir(m.path / PAGE), 30)
            assert sha256_file(m.path / PAGE / "refused.png") == sha(data)
        assert sorted(block_names(m, "Page in column")) == ["column-notes.txt", "refused.png"]
        assert "no uploads waiting" in uploads("list").stdout


def test_a_file_changed_in_notion_meanwhile_is_saved_beside_it(tmp_path: Path) -> None:
    from datetime import timedelta

    theirs, mine = b"their version\n", b"my version\n"
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        block = next(n for n in m.emulator.workspace.walk()
                     if isinstance(n, Block) and n.file is not None
                     and n.file.name == "column-notes.txt")
        with open(page / "column-notes.txt", "wb") as f:
            # Someone else saves a new version while the file is open here.
            assert block.file is not None and block.last_edited_time is not None
            block.file.data = theirs
            block.file.version += 1
            block.last_edited_time += timedelta(minutes=5)
            f.write(mine)
        names = sorted(os.listdir(page))
        beside = [n for n in names if n.startswith("column-notes (conflict ")]
        assert len(beside) == 1 and beside[0].endswith(").txt"), names
        assert (page / beside[0]).read_bytes() == mine
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE) == {"column-notes.txt": sha(theirs),
                                               beside[0]: sha(mine)}
    assert sorted(block_names(m, "Page in column")) == sorted(["column-notes.txt", beside[0]])


def test_a_cut_connection_after_the_attach_makes_no_duplicate(tmp_path: Path) -> None:
    data = os.urandom(30_000)
    with mounted(tmp_path, samples.nested_files(), args=WRITABLE) as m:
        page = m.path / PAGE
        os.listdir(page)
        # Notion appends the block, then the answer is lost.
        m.emulator.faults.writes.cut_next(route="PATCH /v1/blocks/{id}/children")
        try:
            (page / "once.png").write_bytes(data)
        except OSError as error:  # EIO if the check had to wait for a retry
            assert error.errno == errno.EIO
        assert wait_until(lambda: "once.png" in block_names(m, "Page in column"), 60)
        assert (page / "once.png").read_bytes() == data
        assert m.emulator.counters.calls("PATCH /v1/blocks/{id}/children") == 1
        _unmount(m)
        with remounted(m, tmp_path, "fresh"):
            assert files_of(m.path / PAGE)["once.png"] == sha(data)
    assert block_names(m, "Page in column").count("once.png") == 1
