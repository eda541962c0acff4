"""What a desktop user expects of the mount: cheap listings, free probes, xattrs, smart reads."""

from __future__ import annotations

import errno
import math
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notionfs import fusebind
from notionfs.emulator import samples
from notionfs.emulator.media import pattern_bytes, pattern_range
from notionfs.emulator.model import FileSpec, Page, Workspace, file_block

from .mounting import Mount, mounted, requires_fuse, sha256_file
from .test_lifecycle import mount_entry, wait_until

pytestmark = [pytest.mark.e2e, requires_fuse]

MiB = 1 << 20
KiB = 1 << 10
GALLERY_IMAGES = 130
BIG_BYTES = 64 * MiB
CACHED_BYTES = 8 * MiB
CACHE_BYTES = 4 * MiB  # smaller than CACHED_BYTES: a second read free of requests is the kernel's
PROBE_HEAD_BYTES = 128 * KiB  # Settings.probe_head_bytes
WORKSPACE_NAME = "Desk, top"  # a comma cannot survive inside -o: it becomes a space
NAMES_NOBODY_HAS = [
    ".hidden", ".Trash", ".Trash-0", ".Trash-1000", ".xdg-volume-info", ".DS_Store",
    "._image-001.png", "._anything", ".directory", "desktop.ini", "Thumbs.db",
    "autorun.inf", ".git",
]


# ---- one read-only mount for these checks: nothing here changes the workspace -------------


class Desk:
    def __init__(self, mount: Mount, workspace: Workspace) -> None:
        self.mount = mount
        self.path = mount.path
        self.workspace = workspace
        self.api = mount.emulator.counters
        self.host = mount.emulator.filehost.counters

    def page(self, title: str) -> Page:
        found = next(p for p in self.workspace.pages if p.title == title)
        assert isinstance(found, Page)
        return found


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, big_data_dir: Path) -> Iterator[Desk]:
    gallery = samples.gallery(GALLERY_IMAGES).pages
    big = samples.big_file(big_data_dir, BIG_BYTES, seed="desktop").pages
    cached = Page("Cached", children=[
        file_block("file", FileSpec("eight.bin", pattern_bytes(CACHED_BYTES, "cached")))
    ])
    unopened = Page("Unopened", children=[
        file_block("file", FileSpec("never.bin", pattern_bytes(1000, "never")))
    ])
    workspace = Workspace(name=WORKSPACE_NAME, pages=[*gallery, *big, cached, unopened])
    args = ("--read-only", "--metadata-ttl", "300", "--cache-size", str(CACHE_BYTES))
    with mounted(tmp_path_factory.mktemp("desk"), workspace, args=args) as m:
        assert sorted(os.listdir(m.path)) == ["Big file", "Cached", "Gallery", "Unopened"]
        yield Desk(m, workspace)


def api_calls(desk: Desk, before: dict[str, int]) -> dict[str, int]:
    """Requests per route since ``before`` (a snapshot of ``by_route``)."""
    now = desk.api.snapshot().by_route
    return {route: n - before.get(route, 0) for route, n in now.items() if n > before.get(route, 0)}


def test_mount_identity(desk: Desk) -> None:
    entry = mount_entry(desk.path)
    assert entry is not None
    assert entry["fstype"] == "fuse.notionfs"
    assert entry["source"] == "notion:Desk top"  # the colon: df -l and GLib see a remote
    assert "ro" in entry["options"].split(",")
    assert "allow_other" not in entry["super_options"]  # opt-in only
    found = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", str(desk.path)],
                           capture_output=True, text=True, check=True).stdout
    assert found.split(None, 1) == ["fuse.notionfs", "notion:Desk top\n"]

    def df_targets(*flags: str) -> list[str]:
        out = subprocess.run(["df", "-a", *flags, "--output=target"], capture_output=True,
                             text=True, timeout=30).stdout
        return out.split("\n")

    assert str(desk.path) in df_targets()
    assert str(desk.path) not in df_targets("-l")  # remote: left out of local listings


@pytest.mark.skipif(shutil.which("gio") is None, reason="gio (libglib2.0-bin) is not installed")
def test_gio_sees_a_read_only_fuse_filesystem(desk: Desk) -> None:
    out = subprocess.run(["gio", "info", "-f", str(desk.path)], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    attributes = dict(
        line.strip().split(": ", 1) for line in out.splitlines() if line.startswith("  ")
    )
    assert attributes["filesystem::type"] == "fuse"
    assert attributes["filesystem::readonly"] == "TRUE"
    # GLib decides "remote" from the mount's type alone (gio/glocalfile.c, is_remote_fs_type):
    # only nfs, nfs4, cifs, smb, smb2 and fuse.sshfs count, so fuse.notionfs is local to it,
    # whatever the fsname says. GLib's thumbnailers see a local mount; the size probe warms
    # the heads they read.
    assert attributes["filesystem::remote"] == "FALSE"


def test_listing_a_gallery_costs_the_listing_and_one_probe_per_image(desk: Desk) -> None:
    gallery = desk.path / "Gallery"
    api_before, host_before = desk.api.snapshot().by_route, desk.host.snapshot()

    subprocess.run(["ls", "-l", str(gallery)], check=True, capture_output=True, timeout=60)
    images = sorted(n for n in os.listdir(gallery) if n.endswith(".png"))
    assert len(images) == GALLERY_IMAGES

    calls = api_calls(desk, api_before)
    pages = math.ceil(GALLERY_IMAGES / 100)
    assert calls.pop("GET /v1/pages/{id}") == 1
    assert calls.pop("GET /v1/blocks/{id}/children") >= pages  # the emulator may page shorter
    assert calls == {}, "no other API call (no URL refresh, no search)"
    probes = desk.host.snapshot().log[len(host_before.log):]
    assert len(probes) == GALLERY_IMAGES
    assert {p.range for p in probes} == {f"bytes=0-{PROBE_HEAD_BYTES - 1}"}
    sizes = {n: (gallery / n).stat().st_size for n in images}
    spec_sizes = sorted(b.file.size for b in desk.page("Gallery").children if b.file)
    assert sorted(sizes.values()) == spec_sizes

    # A MIME sniffer or thumbnailer reads the first KiB: the probe already brought it.
    host_after_listing = desk.host.snapshot()
    for name in images:
        with open(gallery / name, "rb") as f:
            assert f.read(KiB).startswith(b"\x89PNG\r\n\x1a\n")
    assert desk.host.requests == host_after_listing.requests

    # Again within the TTL: no network at all.
    api_total, host_requests = desk.api.total, desk.host.requests
    subprocess.run(["ls", "-l", str(gallery)], check=True, capture_output=True, timeout=60)
    os.listdir(gallery)
    for name in images:
        (gallery / name).stat()
    assert (desk.api.total, desk.host.requests) == (api_total, host_requests)


def test_names_nobody_has_cost_nothing(desk: Desk) -> None:
    gallery, unopened = desk.path / "Gallery", desk.path / "Unopened"
    os.listdir(gallery)
    api_total, host_requests = desk.api.total, desk.host.requests
    # Any name a listed folder does not hold; in a folder never listed, the well-known ones.
    probes = [(folder, name) for folder in (desk.path, gallery)
              for name in [*NAMES_NOBODY_HAS, "no such file.png"]
              if (folder, name) != (desk.path, ".Trash")]  # the root's: see test_newuser
    probes += [(unopened, name) for name in NAMES_NOBODY_HAS]
    for folder, name in probes:
        with pytest.raises(FileNotFoundError):
            os.stat(folder / name)
    assert (desk.api.total, desk.host.requests) == (api_total, host_requests)


def test_statfs_never_touches_the_network(desk: Desk) -> None:
    api_total = desk.api.total
    desk.mount.emulator.pause_api()
    try:
        out = subprocess.run(["df", str(desk.path)], capture_output=True, text=True, timeout=15)
        assert out.returncode == 0, out.stderr
        assert "notion:Desk top" in out.stdout
        assert os.statvfs(desk.path).f_namemax == 255
    finally:
        desk.mount.emulator.resume_api()
    assert desk.api.total == api_total


def test_extended_attributes(desk: Desk) -> None:
    gallery_page = desk.page("Gallery")
    first_block = gallery_page.children[0]
    folder, image = desk.path / "Gallery", desk.path / "Gallery" / "image-001.png"

    assert os.getxattr(folder, "user.notion.id").decode() == gallery_page.id
    assert os.getxattr(folder, "user.notion.type") == b"page"
    # The page's own url, as Notion gives it from 2025-09-03 on.
    assert os.getxattr(folder, "user.notion.url").decode() == (
        "https://app.notion.com/p/Gallery-" + gallery_page.id.replace("-", ""))
    assert os.getxattr(image, "user.notion.id").decode() == first_block.id
    assert os.getxattr(image, "user.notion.type") == b"file"
    assert first_block.id.replace("-", "") in os.getxattr(image, "user.notion.url").decode()
    for path in (folder, image):
        assert sorted(os.listxattr(path)) == [
            "user.notion.id", "user.notion.type", "user.notion.url"
        ]
        for unknown in ("user.notion.nope", "user.xdg.comment"):
            with pytest.raises(OSError) as missing:
                os.getxattr(path, unknown)
            assert missing.value.errno == errno.ENODATA  # not ENOSYS: xattrs stay on
        # Namespaces the mount has nothing in: "not supported", as a file system without
        # security labels or ACLs answers.
        for unsupported in ("security.selinux", "system.posix_acl_access", "trusted.x"):
            with pytest.raises(OSError) as refused_name:
                os.getxattr(path, unsupported)
            assert refused_name.value.errno == errno.EOPNOTSUPP
    with pytest.raises(OSError) as refused:
        os.setxattr(image, "user.xdg.comment", b"hello")
    assert refused.value.errno == errno.EROFS

    if shutil.which("getfattr"):
        out = subprocess.run(["getfattr", "-d", str(image)], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        assert f'user.notion.id="{first_block.id}"' in out
        assert 'user.notion.type="file"' in out


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_ls_l_asks_for_security_labels_and_acls_once_per_mount(
    desk: Desk, tmp_path: Path
) -> None:
    """`ls -l` asks each entry for its SELinux label and POSIX ACL unless the file system
    says it has none ("not supported"); then it stops asking for the rest of the device.
    Each of those questions would be a request to the mount."""
    folder, trace = desk.path / "Gallery", tmp_path / "ls.trace"
    traced = subprocess.run(
        ["strace", "-f", "-e", "trace=getxattr,lgetxattr,fgetxattr", "-o", str(trace),
         "ls", "-l", str(folder)],
        capture_output=True, text=True, timeout=60,
    )
    if "ptrace" in traced.stderr and "Operation not permitted" in traced.stderr:
        pytest.skip("ptrace is not permitted here")
    assert traced.returncode == 0, traced.stderr
    listed = [line for line in traced.stdout.splitlines() if line.endswith(".png")]
    assert len(listed) == GALLERY_IMAGES  # ls -l printed every image
    asked = [line for line in trace.read_text().splitlines() if "xattr(" in line]
    assert asked, trace.read_text()[-2000:]  # ls does ask: the count below means something
    assert all("EOPNOTSUPP" in line for line in asked), asked
    assert len(asked) <= 4, asked  # the folder and at most one entry, not 2 x 130


def test_writing_is_refused_as_read_only(desk: Desk) -> None:
    image = desk.path / "Gallery" / "image-002.png"
    for mode in ("wb", "r+b", "ab"):
        with pytest.raises(OSError) as refused:
            open(image, mode).close()
        assert refused.value.errno == errno.EROFS
    for command in (["touch", str(desk.path / "Gallery" / "new.txt")],
                    ["touch", str(image)],
                    ["mkdir", str(desk.path / "Gallery" / "new folder")],
                    ["rm", "-f", str(image)],
                    ["mv", str(image), str(desk.path / "Gallery" / "moved.png")]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode != 0
        assert "Read-only file system" in done.stderr, command
    assert image.exists()


def test_tail_first_reader_fetches_only_the_tail(desk: Desk) -> None:
    big = desk.path / "Big file" / "big.bin"
    assert big.stat().st_size == BIG_BYTES
    sent = desk.host.bytes_sent
    with open(big, "rb") as f:
        f.seek(-64 * KiB, os.SEEK_END)
        tail = f.read()
    assert tail == pattern_range(BIG_BYTES - 64 * KiB, 64 * KiB, "big_file/desktop")
    assert desk.host.bytes_sent - sent < MiB


def test_seek_heavy_reader_gets_right_sized_requests(desk: Desk) -> None:
    big = desk.path / "Big file" / "big.bin"
    rng = random.Random(7)
    offsets = [rng.randrange(0, BIG_BYTES - 4 * KiB) for _ in range(32)]
    before = desk.host.snapshot()
    fd = os.open(big, os.O_RDONLY)
    try:
        for offset in offsets:
            assert os.pread(fd, 4 * KiB, offset) == pattern_range(
                offset, 4 * KiB, "big_file/desktop"
            )
    finally:
        os.close(fd)
    requests = desk.host.snapshot().log[len(before.log):]
    assert requests, "the reads went to the host"
    largest = max(r.bytes_sent for r in requests)
    assert largest <= 256 * KiB, f"a 4 KiB random read fetched {largest} bytes at once"
    assert sum(r.bytes_sent for r in requests) <= len(offsets) * 256 * KiB


def test_reopened_file_is_served_from_the_page_cache(desk: Desk) -> None:
    path = desk.path / "Cached" / "eight.bin"
    want = desk.page("Cached").children[0].file
    assert want is not None
    assert sha256_file(path) == want.sha256()
    sent = desk.host.bytes_sent
    assert sha256_file(path) == want.sha256()
    assert desk.host.bytes_sent == sent, "an unchanged file is read again from the page cache"


# ---- a second mount, short TTL: Notion changes under it ------------------------------------


class Changing:
    def __init__(self, mount: Mount, desk_page: Page, held_page: Page) -> None:
        self.mount = mount
        self.desk = desk_page
        self.held = held_page


NOTES_BYTES = 256 * KiB
HELD_BYTES = 3 * MiB


@pytest.fixture(scope="module")
def changing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Changing]:
    desk_page = Page("Desk", children=[
        Page("Alpha"), Page("Beta"), Page("Gamma"),
        file_block("file", FileSpec("notes.bin", pattern_bytes(NOTES_BYTES, "notes/1"))),
    ])
    held_page = Page("Held", children=[
        file_block("file", FileSpec("report.bin", pattern_bytes(HELD_BYTES, "report/1"))),
    ])
    workspace = Workspace(name="Changing", pages=[desk_page, held_page])
    args = ("--metadata-ttl", "1", "--cache-size", "1M")
    with mounted(tmp_path_factory.mktemp("changing"), workspace, args=args) as m:
        yield Changing(m, desk_page, held_page)


def replace_file(changing: Changing, block_index: int, owner: Page, data: bytes) -> None:
    """What an edit in Notion does: a new file object in the block, the block edited now."""
    block = owner.children[block_index]
    assert block.file is not None
    block.file = FileSpec(block.file.name, data)
    changing.mount.emulator.touch(block)


def test_changes_in_notion_show_up_after_the_ttl(changing: Changing) -> None:
    folder = changing.mount.path / "Desk"
    notes = folder / "notes.bin"
    assert sorted(n for n in os.listdir(folder) if n != "index.md") == [
        "Alpha", "Beta", "Gamma", "notes.bin"
    ]
    old = pattern_bytes(NOTES_BYTES, "notes/1")
    assert notes.read_bytes() == old
    assert notes.read_bytes() == old  # now in the kernel's page cache, kept across opens
    inode = notes.stat().st_ino

    alpha, _, gamma, _ = changing.desk.children
    assert isinstance(alpha, Page) and isinstance(gamma, Page)
    alpha.title = "Alpha renamed"
    gamma.in_trash = True
    changing.desk.children.append(Page("Delta"))
    new = pattern_bytes(NOTES_BYTES, "notes/2")  # same size: only the content tells
    replace_file(changing, 3, changing.desk, new)
    changing.mount.emulator.touch(changing.desk)

    want = ["Alpha renamed", "Beta", "Delta", "notes.bin"]
    assert wait_until(lambda: sorted(n for n in os.listdir(folder) if n != "index.md") == want)
    assert wait_until(lambda: notes.read_bytes() == new), "the replaced file is served stale"
    # A new version is a new file (as an editor's save-by-rename makes one), with a page
    # cache of its own.
    # (the kernel may keep the old name-to-inode entry for its entry timeout, 1 s here)
    assert wait_until(lambda: notes.stat().st_ino != inode, 10)
    assert notes.read_bytes() == new


def test_a_handle_open_across_a_replacement(changing: Changing) -> None:
    """What docs/SEMANTICS.md promises: a reopen reads the new version whole; the old handle
    keeps reading the version it opened, or fails with ESTALE, and never mixes in new bytes."""
    path = changing.mount.path / "Held" / "report.bin"
    old = pattern_bytes(HELD_BYTES, "report/1")
    new = pattern_bytes(HELD_BYTES, "report/2")
    chunk = 64 * KiB
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(fd, MiB, 0) == old[:MiB]
        replace_file(changing, 0, changing.held, new)
        assert wait_until(lambda: path.read_bytes() == new), "a reopen must see the new version"
        for offset in range(MiB, HELD_BYTES, chunk):
            try:
                got = os.pread(fd, chunk, offset)
            except OSError as exc:
                assert exc.errno == errno.ESTALE
                break
            assert got != new[offset:offset + chunk], f"new bytes at {offset}"
            assert got == old[offset:offset + chunk], f"other bytes at {offset}"
    finally:
        os.close(fd)


# ---- libfuse 3: a listing brings its entries' attributes ------------------------------------

SHELF_BOXES = 40
SHELF_FILES = 12


def _fuse_replies(pid: int, trace: Path) -> subprocess.Popen[str]:
    """strace on the mount process, one line per FUSE reply (libfuse replies with writev;
    HTTP and the log use other calls). Returns once it is attached."""
    tracer = subprocess.Popen(
        ["strace", "-f", "-e", "trace=writev", "-o", str(trace), "-p", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert tracer.stderr is not None
    line = tracer.stderr.readline()  # "strace: Process N attached" (or why not)
    if "attached" not in line:
        tracer.kill()
        pytest.skip(f"strace cannot attach here: {line.strip()}")
    return tracer


def _replies_during(mount: Mount, trace: Path, action: Callable[[], object]) -> int:
    tracer = _fuse_replies(mount.proc.pid, trace)
    try:
        os.statvfs(mount.path)  # one request whose reply shows the trace is live
        assert wait_until(lambda: "writev(" in trace.read_text(), timeout_s=10)
        before = trace.read_text().count("writev(")
        action()
        os.statvfs(mount.path)  # and one after: its reply is written once the rest are
        assert wait_until(lambda: trace.read_text().count("writev(") >= before + 1, 10)
        time.sleep(0.2)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    return trace.read_text().count("writev(") - before - 1


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_a_listing_gives_the_kernel_each_entry_s_attributes(tmp_path: Path) -> None:
    """Under libfuse 3 the kernel lists with READDIRPLUS: answered with each entry's
    attributes (a folder's always, a file's once its size is known), stat()ing what was
    listed asks the mount nothing. Before, every entry listed cost a LOOKUP of its own."""
    if fusebind.libfuse_paths()[3] is None:
        pytest.skip("libfuse 3 is not installed")
    shelf = Page("Shelf", children=[
        *(Page(f"Box {n:02d}") for n in range(SHELF_BOXES)),
        *(file_block("file", FileSpec(f"label-{n:02d}.bin", pattern_bytes(100 + n, f"l{n}")))
          for n in range(SHELF_FILES)),
    ])
    workspace = Workspace(pages=[shelf])
    with mounted(tmp_path, workspace, args=("--fuse-binding", "mfusepy")) as mount:
        folder = mount.path / "Shelf"
        names = os.listdir(folder)  # the first listing: sizes are probed behind it
        assert len(names) == SHELF_BOXES + SHELF_FILES + 1  # and index.md
        boxes = [folder / n for n in names if n.startswith("Box")]
        replies = _replies_during(mount, tmp_path / "boxes.trace",
                                  lambda: [os.stat(box) for box in boxes])
        assert replies == 0, f"{replies} requests to stat {len(boxes)} listed folders"

        labels = sorted(n for n in names if n.startswith("label-"))
        counted = mount.emulator.filehost.counters
        assert wait_until(lambda: counted.requests >= SHELF_FILES)  # every size probed
        sizes = {}

        def relist_and_stat() -> None:
            os.listdir(folder)
            sizes.update((n, os.stat(folder / n).st_size) for n in labels)

        replies = _replies_during(mount, tmp_path / "files.trace", relist_and_stat)
        assert sizes == {f"label-{n:02d}.bin": 100 + n for n in range(SHELF_FILES)}
        # The listing itself: opendir, the entries (with their attributes), the end of
        # them, releasedir, and perhaps the folder's own attributes; no entry looked up.
        assert replies <= 6, f"{replies} requests to list and stat {len(labels)} files"
