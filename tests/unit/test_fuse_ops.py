"""The FUSE adapter without FUSE: errno mapping, deadlines and stale answers, EROFS, and the
same behaviour whether a binding calls the methods (mfusepy) or ``operations(op, ...)``
(fusepy)."""

from __future__ import annotations

import errno
import stat
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from notionfs import fuse_ops as ops_module
from notionfs.config import Settings
from notionfs.errors import NetworkError, NotFoundError
from notionfs.fuse_ops import ENOATTR, WRITE_OPS, NotionOperations
from notionfs.fusebind import _CallDispatch
from notionfs.nodes import Kind, Node
from notionfs.workspace import FsStats, Reader

ROOT = Node(Kind.ROOT, "root", "", 1)
DOC = Node(Kind.FILE, "root/doc", "doc.txt", 7, object_id="abc", notion_url="https://x/abc")
SLOW = Node(Kind.FILE, "root/slow", "slow.bin", 8)
SUB = Node(Kind.PAGE, "root/sub", "sub", 9)
INDEX = Node(Kind.GENERATED, "root/index.md", "index.md", 10)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]

    def close(self) -> None:
        self.closed = True


class FakeSource:
    """A MountSource with two files; lookups of "/slow" block until released; "/boom"
    raises a bug; "/offline" a network error."""

    def __init__(self) -> None:
        self.root = ROOT
        self.release = threading.Event()
        self.fresh = True
        self.lookups: list[tuple[str, str]] = []  # (path, thread name)
        self.sizes = {DOC.key: 11, SLOW.key: 5}

    def lookup(self, path: str) -> Node | None:
        self.lookups.append((path, threading.current_thread().name))
        if path == "/slow":
            self.release.wait(5)
            return SLOW
        if path == "/boom":
            raise ZeroDivisionError("a bug")
        if path == "/offline":
            raise NetworkError("Notion is unreachable")
        if path == "/gone":
            raise NotFoundError(404, "object_not_found", "no")
        return {"/": ROOT, "/doc.txt": DOC}.get(path)

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        if not self.fresh or path in ("/slow", "/boom", "/offline", "/gone"):
            return False, None
        return True, {"/": ROOT, "/doc.txt": DOC}.get(path)

    def lookup_held(self, path: str) -> Node | None:
        return {"/": ROOT, "/doc.txt": DOC, "/slow": SLOW}.get(path)

    def listdir(self, folder: Node) -> list[Node]:
        return [DOC]

    def listdir_held(self, folder: Node) -> list[Node] | None:
        return [DOC]

    def is_fresh(self, folder: Node) -> bool:
        return self.fresh

    def size(self, node: Node) -> int:
        return self.sizes[node.key]

    def known_size(self, node: Node) -> int | None:
        return self.sizes.get(node.key)

    def identity(self, node: Node) -> str:
        return node.key

    def open(self, node: Node) -> Reader:
        return _Bytes(b"hello world")

    def xattrs(self, node: Node) -> dict[str, str]:
        return {"id": node.object_id} if node.object_id else {}

    def statfs(self) -> FsStats:
        return FsStats(4096, 4096, 10, 5, 0, 0)

    def close(self) -> None:
        pass


def _ops(deadline_s: float = 5.0) -> tuple[NotionOperations, FakeSource]:
    source = FakeSource()
    return NotionOperations(source, Settings(op_deadline_s=deadline_s)), source


def _errno(call: Any, *args: Any) -> int:
    with pytest.raises(OSError) as caught:
        call(*args)
    assert caught.value.errno is not None
    return caught.value.errno


@pytest.mark.parametrize("style", ["methods", "dispatch"])
def test_errors_map_to_errno_under_both_calling_styles(style: str) -> None:
    ops, _ = _ops()
    target: Any = ops if style == "methods" else _CallDispatch(ops)

    def call(op: str, *args: Any) -> Any:
        return getattr(target, op)(*args) if style == "methods" else target(op, *args)

    assert call("getattr", "/doc.txt")["st_size"] == 11
    assert _errno(call, "getattr", "/missing") == errno.ENOENT
    assert _errno(call, "getattr", "/gone") == errno.ENOENT
    assert _errno(call, "getattr", "/boom") == errno.EIO  # a bug: EIO, never EINVAL
    assert _errno(call, "getattr", "/offline") == errno.EIO
    assert _errno(call, "getxattr", "/doc.txt", "user.notion.url") == ENOATTR
    assert call("getxattr", "/doc.txt", "user.notion.id") == b"abc"
    assert call("listxattr", "/doc.txt") == ["user.notion.id"]
    for op in WRITE_OPS:
        assert _errno(call, op, "/doc.txt", 0) == errno.EROFS


def test_foreign_xattrs_answer_without_a_lookup() -> None:
    ops, source = _ops()
    assert _errno(ops.getxattr, "/doc.txt", "user.xdg.comment") == ENOATTR
    for name in ("security.selinux", "system.posix_acl_access", "system.posix_acl_default",
                 "trusted.overlay.opaque"):
        # Not ENOATTR, which has `ls -l` ask every entry again; not ENOSYS, which would
        # switch every xattr off for the whole mount.
        assert _errno(ops.getxattr, "/doc.txt", name) == errno.EOPNOTSUPP
    assert source.lookups == []


def test_memory_answers_run_on_the_calling_thread_and_the_rest_on_the_pool() -> None:
    ops, source = _ops()
    ops.getattr("/doc.txt")
    source.fresh = False
    ops.getattr("/doc.txt")
    threads = [name for _, name in source.lookups]
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("notionfs-op")


def test_past_the_deadline_a_held_answer_or_eio() -> None:
    ops, source = _ops(deadline_s=0.2)
    started = time.monotonic()
    attrs = ops.getattr("/slow")  # the held node has a known size: answered from cache
    assert attrs["st_size"] == 5
    del source.sizes[SLOW.key]
    assert _errno(ops.getattr, "/slow") == errno.EIO  # nothing held that can answer
    assert time.monotonic() - started < 3
    source.release.set()


def test_readdir_entries_carry_inodes() -> None:
    ops, _ = _ops()
    entries = ops.readdir("/", None)
    assert [e[0] for e in entries] == [".", "..", "doc.txt"]
    assert entries[2][1] == {"st_ino": 7, "st_mode": 0o100000}
    assert entries[0][1] is not None and entries[0][1]["st_ino"] == 1


def test_open_read_release_and_write_flags() -> None:
    ops, _ = _ops()
    fi = SimpleNamespace(flags=0, fh=0, keep_cache=0, direct_io=0)
    assert ops.open("/doc.txt", fi) == 0
    assert ops.read("/doc.txt", 5, 6, fi) == b"world"
    reader = ops._handles[fi.fh]
    assert ops.release("/doc.txt", fi) == 0
    assert isinstance(reader, _Bytes) and reader.closed
    assert _errno(ops.read, "/doc.txt", 5, 0, fi) == errno.EBADF
    import os

    writer = SimpleNamespace(flags=os.O_WRONLY, fh=0, keep_cache=0, direct_io=0)
    assert _errno(ops.open, "/doc.txt", writer) == errno.EROFS


def test_statfs_comes_from_the_source() -> None:
    ops, _ = _ops()
    assert ops.statfs("/")["f_blocks"] == 10


def test_a_listing_with_attributes_carries_what_getattr_would_answer() -> None:
    ops, source = _ops()
    source.listdir = lambda folder: [DOC, SLOW, SUB, INDEX]  # type: ignore[method-assign]
    source.sizes.pop(SLOW.key)  # its size is not known yet: it would have to be probed
    source.sizes[INDEX.key] = 120  # rendered, but its size changes with the listing
    plain = {name: attrs for name, attrs, _ in ops.readdir("/", None)}
    assert plain["doc.txt"] == {"st_ino": DOC.inode, "st_mode": stat.S_IFREG}
    with_attrs = {name: attrs for name, attrs, _ in ops.readdir("/", None, True)}
    assert with_attrs["doc.txt"] == ops.getattr("/doc.txt")
    assert with_attrs["doc.txt"]["st_size"] == 11
    assert with_attrs["sub"]["st_nlink"] == 2 and with_attrs["sub"]["st_mode"] & stat.S_IFDIR
    # No size without I/O: only inode and type, and the kernel looks it up when it needs it.
    assert with_attrs["slow.bin"] == {"st_ino": SLOW.inode, "st_mode": stat.S_IFREG}
    assert with_attrs["index.md"] == {"st_ino": INDEX.inode, "st_mode": stat.S_IFREG}
    assert "st_nlink" not in with_attrs["."] and with_attrs[".."] is None


def test_a_listing_gives_attributes_again_only_when_the_kernel_may_have_lost_them() -> None:
    ops, source = _ops()
    source.listdir = lambda folder: [DOC, SLOW]  # type: ignore[method-assign]
    source.sizes.pop(SLOW.key)

    def full() -> set[str]:
        return {name for name, attrs, _ in ops.readdir("/", None, True)
                if attrs is not None and "st_nlink" in attrs}

    assert full() == {"doc.txt"}
    # Listed again at once: the kernel still holds what the first listing gave it.
    assert full() == set()
    # A size learned since: that listing carries attributes again.
    source.sizes[SLOW.key] = 5
    assert full() == {"doc.txt", "slow.bin"}
    assert full() == set()
    # Half their lifetime in the kernel gone: given again, before they run out there.
    ops._attrs_fresh_s = 0.0
    assert full() == {"doc.txt", "slow.bin"}


def test_a_file_whose_size_changed_since_the_kernel_was_told_is_opened_past_the_page_cache(
) -> None:
    """The kernel ends page-cache reads at the size it holds: a new version of another size,
    opened while it may still hold the old one, is read with direct_io (whole); once the
    kernel has been given the new size (getattr, a listing with attributes), normally."""
    ops, source = _ops()

    def opened() -> SimpleNamespace:
        fi = SimpleNamespace(flags=0, fh=0, keep_cache=0, direct_io=0)
        assert ops.open("/doc.txt", fi) == 0
        ops.release("/doc.txt", fi)
        return fi

    assert opened().direct_io == 0  # never told: the kernel looked it up as it is now
    assert ops.getattr("/doc.txt")["st_size"] == 11
    assert opened().direct_io == 0
    source.sizes[DOC.key] = 40  # replaced in Notion by a larger version
    assert opened().direct_io == 1
    assert opened().direct_io == 1  # until the kernel asks again
    assert ops.getattr("/doc.txt")["st_size"] == 40
    assert opened().direct_io == 0
    source.sizes[DOC.key] = 3
    assert opened().direct_io == 1
    entries = ops.readdir("/", None, True)  # a listing with attributes tells it too
    assert entries[2][1] is not None and entries[2][1]["st_size"] == 3
    assert opened().direct_io == 0


def test_where_the_kernel_can_be_made_to_drop_the_old_size_the_file_opens_as_any_other() -> None:
    """libfuse 3: the open of a file whose size changed has the kernel drop its attributes
    and pages of the path first (on a thread of its own), and then goes through the page
    cache (mmap works); if the kernel cannot be made to, or takes too long, direct_io."""
    ops, source = _ops()
    asked: list[tuple[str, str]] = []
    answer = [0]
    stuck = threading.Event()

    def invalidate(path: str) -> int:
        asked.append((path, threading.current_thread().name))
        if answer[0] == 1:
            stuck.wait(5)
        return answer[0]

    ops.use_kernel_invalidation(invalidate)

    def opened() -> SimpleNamespace:
        fi = SimpleNamespace(flags=0, fh=0, keep_cache=0, direct_io=0)
        assert ops.open("/doc.txt", fi) == 0
        ops.release("/doc.txt", fi)
        return fi

    assert ops.getattr("/doc.txt")["st_size"] == 11
    assert opened().direct_io == 0 and asked == []  # same size: nothing to drop
    source.sizes[DOC.key] = 40
    assert opened().direct_io == 0
    assert [path for path, _ in asked] == ["/doc.txt"]
    assert asked[0][1].startswith("notionfs-inval")
    assert opened().direct_io == 0 and len(asked) == 1  # the kernel holds no size now
    assert ops.getattr("/doc.txt")["st_size"] == 40
    source.sizes[DOC.key] = 3
    answer[0] = -errno.ENOENT  # libfuse forgot the path: so did the kernel
    assert opened().direct_io == 0 and len(asked) == 2
    assert ops.getattr("/doc.txt")["st_size"] == 3
    source.sizes[DOC.key] = 50
    answer[0] = -errno.EIO
    assert opened().direct_io == 1 and len(asked) == 3
    answer[0] = 1  # the kernel keeps the invalidation waiting
    ops_module._INVALIDATE_WAIT_S, saved = 0.2, ops_module._INVALIDATE_WAIT_S
    try:
        started = time.monotonic()
        assert opened().direct_io == 1
        assert time.monotonic() - started < 2
    finally:
        ops_module._INVALIDATE_WAIT_S = saved
        stuck.set()
