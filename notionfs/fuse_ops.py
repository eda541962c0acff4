"""The FUSE adapter: the only module that speaks errno. It talks to a MountSource only, and
every operation carries its own wrapper (errno mapping, deadline, stale answers), so it
behaves the same under fusepy and mfusepy (see fusebind.py)."""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import errno
import functools
import itertools
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cachetools import LRUCache

from .config import Settings
from .errors import DeadlineExceeded, NotionFSError, errno_for
from .fusebind import Binding
from .nodes import Kind, Node
from .workspace import MountSource, Reader, WritableSource

__all__ = ["FuseError", "NotionOperations", "WritableOperations", "run_fuse"]

logger = logging.getLogger(__name__)

XATTR_PREFIX = "user.notion."
# A writable mount's upload state of a file (getfattr -n user.notionfs.state).
STATE_XATTR = "user.notionfs.state"
# Namespaces of extended attributes the mount has none of, and says so (see getxattr).
UNSUPPORTED_XATTR_NAMESPACES = ("security.", "system.", "trusted.")
# ENODATA is Linux's "no such attribute"; macOS calls it ENOATTR (93).
ENOATTR = getattr(errno, "ENODATA", 93) if sys.platform != "darwin" else 93

# Owner-writable modes, as network mounts show them: a copy taken out of the mount is then
# the copier's to change, move and `rm -rf`. Writes still fail: the mount is read-only.
DIR_MODE = 0o755
FILE_MODE = 0o644
# GLib's trash (g_local_file_trash, XDG trash spec) on a mount without a writable
# $topdir/.Trash-$uid fails with "Unable to find or create trash directory". An empty,
# sticky $topdir/.Trash/$uid/{info,files} (the spec's administrator-made trash) leads it on
# to creating the info file, which fails as what it is: "Read-only file system". Looked up
# by name only; listings never show it. A writable mount shows none: GLib's mkdir of
# $topdir/.Trash-$uid is refused (the root holds no pages to make), so GLib says it cannot
# trash there and file managers offer "Delete", which moves the item to Notion's trash.
TRASH_DIR = "/.Trash"
TRASH_SUBDIRS = ("info", "files")
TRASH_INODE = 0x7E5A << 48  # far above the counted inodes of nodes; + 0..3

# Operations a read-only filesystem refuses outright.
WRITE_OPS = (
    "chmod", "chown", "create", "mkdir", "mknod", "rename", "rmdir", "symlink", "link",
    "truncate", "unlink", "utimens", "write", "setxattr", "removexattr",
)  # fmt: skip


class FuseError(OSError):
    """An errno for the kernel; both bindings turn a raised OSError into ``-errno``."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))


# Callbacks arrive on libfuse's own threads (at most ten, kept for the mount's life). For
# each call ctypes makes a Python thread state and destroys it after, which in 3.11 maps and
# unmaps a 16 KiB frame stack every time; holding one more reference keeps it. An empty
# fusepy filesystem: 1.4 -> 2.0 GB/s, getxattr 45 -> 26 us; notionfs cold read +27%.
_thread_state = threading.local()


def _keep_thread_state() -> None:
    if not getattr(_thread_state, "kept", False):
        ctypes.pythonapi.PyGILState_Ensure()  # never released: the thread keeps its state
        _thread_state.kept = True


F = TypeVar("F", bound=Callable[..., Any])

# How an operation runs:
INLINE = "inline"  # never touches the network: on the FUSE thread
BOUNDED = "bounded"  # given a fuse_file_info: inline, with only its slow part under the deadline
MEMORY = "memory"  # inline when memory holds the answer, else under the deadline
NETWORK = "network"  # under the deadline on the pool; past it, a stale answer or EIO


def operation(mode: str) -> Callable[[F], F]:
    """The wrapper every FUSE operation carries: runs it as ``mode`` says and maps every
    exception to an errno (a binding would turn an uncaught one into a misleading EINVAL)."""

    def decorate(method: F) -> F:
        op = method.__name__

        @functools.wraps(method)
        def wrapper(self: NotionOperations, *args: Any) -> Any:
            _keep_thread_state()
            try:
                if mode in (INLINE, BOUNDED) or (mode == MEMORY and self._in_memory(op, args)):
                    return method(self, *args)
                return self._with_deadline(op, functools.partial(method, self), args)
            except FuseError:
                raise
            except NotionFSError as exc:
                code = errno_for(exc)
                logger.warning("%s %s: %s (errno %s)", op, _path_arg(args), exc, code)
                raise FuseError(code) from exc
            except Exception as exc:
                logger.exception("%s %s failed unexpectedly", op, _path_arg(args))
                raise FuseError(errno.EIO) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


class NotionOperations:
    """FUSE callbacks over a MountSource. Every call is bounded by ``settings.op_deadline_s``."""

    use_ns = True
    _glib_trash = True  # the empty trash folders of a read-only mount (see TRASH_DIR)

    def __init__(
        self, source: MountSource, settings: Settings, mounted: threading.Event | None = None
    ) -> None:
        self._source = source
        # Set once the kernel has finished the FUSE handshake: the mount is in place.
        self.mounted = mounted or threading.Event()
        self._settings = settings
        self._uid = os.getuid()
        self._gid = os.getgid()
        self._handles: dict[int, Reader] = {}
        self._handle_ids = itertools.count(1)
        # Per folder (inode): what its last listing with attributes gave the kernel (a mark
        # of its entries and their sizes) and when; see _attrs_still_held. A folder
        # forgotten is given its attributes again.
        self._attrs_given: LRUCache[int, tuple[int, float]] = LRUCache(maxsize=4096)
        self._attrs_given_lock = threading.Lock()  # a leaf
        self._attrs_fresh_s = settings.kernel_answer_s / 2
        self._handles_lock = threading.Lock()  # a leaf: nothing else is taken under it
        # Per handle, a read that outlived its deadline: (start, end, its future).
        self._late_reads: dict[int, tuple[int, int, concurrent.futures.Future[Any]]] = {}
        # Per file path: the size the kernel was last given for it (getattr, a listing with
        # attributes). The kernel ends page-cache reads at that size until it asks again: a
        # file whose size changed since is opened past the page cache (see open).
        self._sizes_told: dict[str, int] = {}
        # Per file (node key): the identity of the version whose pages the kernel holds, and
        # how many handles each version has open.
        self._cached_identity: dict[str, str] = {}
        self._open_versions: collections.Counter[tuple[str, str]] = collections.Counter()
        self._handle_versions: dict[int, tuple[str, str]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=64, thread_name_prefix="notionfs-op"
        )
        # libfuse 3: has the kernel drop what it holds of a path (see use_kernel_invalidation),
        # on a thread of its own.
        self._invalidate: Callable[[str], int] | None = None
        self._invalidator: concurrent.futures.ThreadPoolExecutor | None = None

    # ---- dispatch ----------------------------------------------------------------------

    def _in_memory(self, op: str, args: tuple[Any, ...]) -> bool:
        """Whether fresh listings and known sizes answer this call with no I/O: then it runs
        on the FUSE thread, and a pool full of calls stuck on a slow Notion cannot delay it.
        (A listing that expires in between is fetched inline, still bounded by the client's
        own timeouts.)"""
        known, node = self._source.lookup_memory(args[0])
        if not known or node is None:
            return known
        if op == "getattr":
            return node.is_dir or self._source.known_size(node) is not None
        if op == "readdir":
            return node.is_dir and self._source.is_fresh(node)
        return True  # xattrs and access need nothing but the node

    def _with_deadline(
        self,
        op: str,
        handler: Callable[..., Any],
        args: tuple[Any, ...],
        abandoned: Callable[[concurrent.futures.Future[Any]], None] | None = None,
    ) -> Any:
        """``handler(*args)`` within the deadline; ``abandoned`` gets a call that outlived it."""
        future = self._pool.submit(handler, *args)
        try:
            return future.result(timeout=self._settings.op_deadline_s)
        except concurrent.futures.TimeoutError:
            if abandoned is not None:
                abandoned(future)
            stale = self._stale_answer(op, args)
            if stale is not None:
                logger.warning("%s %s: deadline passed, answering from cache", op, args[0])
                return stale
            raise DeadlineExceeded(
                f"no answer within {self._settings.op_deadline_s:g} s"
            ) from None

    def _stale_answer(self, op: str, args: tuple[Any, ...]) -> Any:
        if op not in ("getattr", "readdir", "open"):
            return None
        node = self._source.lookup_held(args[0])
        if node is None:
            return None
        known_size = None if node.is_dir else self._source.known_size(node)
        if op == "getattr" and (node.is_dir or known_size is not None):
            return self._told(args[0], self._attrs(node, known_size))
        if op == "readdir" and node.is_dir:
            held = self._source.listdir_held(node)
            return None if held is None else _dir_entries(node, held)
        if op == "open" and known_size is not None:
            return node, self._source.open(node)
        return None

    # ---- metadata ----------------------------------------------------------------------

    def _node(self, path: str) -> Node:
        node = self._source.lookup(path)
        if node is None:
            raise FuseError(errno.ENOENT)
        return node

    @operation(MEMORY)
    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        if self._glib_trash and (path == TRASH_DIR or path.startswith(TRASH_DIR + "/")):
            return self._trash_attrs(path)
        return self._told(path, self._attrs(self._node(path)))

    def _told(self, path: str, attrs: dict[str, int]) -> dict[str, int]:
        """Note the size ``attrs`` give the kernel for the file at ``path``."""
        if not stat.S_ISDIR(attrs["st_mode"]):
            if len(self._sizes_told) >= _MAX_SIZES_TOLD:
                self._sizes_told.clear()  # unknown sizes are taken as the kernel's own
            self._sizes_told[path] = attrs["st_size"]
        return attrs

    def _trash_attrs(self, path: str) -> dict[str, int]:
        """The empty trash folders GLib looks for (see TRASH_DIR); nothing else is there."""
        own = f"{TRASH_DIR}/{self._uid}"
        paths = (TRASH_DIR, own, *(f"{own}/{name}" for name in TRASH_SUBDIRS))
        if path not in paths:
            raise FuseError(errno.ENOENT)
        mode = stat.S_IFDIR | (0o1777 if path == TRASH_DIR else 0o700)
        return {"st_mode": mode, "st_nlink": 2, "st_uid": self._uid, "st_gid": self._gid,
                "st_size": 0, "st_blocks": 0, "st_ino": TRASH_INODE + paths.index(path)}

    def _attrs(self, node: Node, size: int | None = None) -> dict[str, int]:
        """What getattr answers; a file's ``size`` is asked of the source unless given."""
        mtime_ns = int(node.mtime_s * 1e9)
        ctime_ns = int(node.ctime_s * 1e9)
        attrs = {
            "st_ino": node.inode,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_atime": mtime_ns,
            "st_mtime": mtime_ns,
            "st_ctime": ctime_ns,
            "st_blksize": self._settings.st_blksize_bytes,
        }
        if node.is_dir:
            attrs.update(st_mode=stat.S_IFDIR | DIR_MODE, st_nlink=2, st_size=0, st_blocks=0)
        else:
            if size is None:
                size = self._source.size(node)
            attrs.update(
                st_mode=stat.S_IFREG | FILE_MODE,
                st_nlink=1,
                st_size=size,
                st_blocks=(size + 511) // 512,
            )
        return attrs

    @operation(MEMORY)
    def readdir(self, path: str, fh: Any, plus: bool = False) -> list[DirEntry]:
        """The folder's entries; with ``plus`` (the kernel asks for attributes too, libfuse 3),
        each entry whose attributes memory holds carries them as getattr would answer, and
        the kernel then needs no lookup of it."""
        if self._glib_trash and (path == TRASH_DIR or path.startswith(TRASH_DIR + "/")):
            attrs = self._trash_attrs(path)
            return [(".", {"st_ino": attrs["st_ino"], "st_mode": stat.S_IFDIR}, 0),
                    ("..", None, 0)]
        node = self._node(path)
        if not node.is_dir:
            raise FuseError(errno.ENOTDIR)
        children = self._source.listdir(node)
        if plus and self._attrs_still_held(node, children):
            plus = False
        if not plus:
            return _dir_entries(node, children)
        prefix = path.rstrip("/")
        return _dir_entries(node, children,
                            lambda child: self._known_attrs(child, f"{prefix}/{child.name}"))

    def _attrs_still_held(self, folder: Node, children: list[Node]) -> bool:
        """Whether the kernel still holds the attributes the last listing of ``folder`` gave
        it, for these same entries: given less than half their lifetime ago, with every size
        known then known the same now. Giving them again would change nothing but cost the
        attributes of every entry (``ls -l`` of 1000 files: 16 -> 36 ms); an entry the kernel
        dropped meanwhile is looked up as without them. Else the listing carries them, and
        this is remembered."""
        mark = hash(tuple((child.inode, self._source.known_size(child)) for child in children))
        now = time.monotonic()
        with self._attrs_given_lock:
            given = self._attrs_given.get(folder.inode)
            if given is not None and given[0] == mark and now - given[1] < self._attrs_fresh_s:
                return True
            self._attrs_given[folder.inode] = (mark, now)
        return False

    def _known_attrs(self, node: Node, path: str) -> dict[str, int]:
        """Full attributes when memory holds them (a folder, a Notion file of known size),
        else only inode and type. Never for index.md / index.csv: their size changes with
        the very listing that renews them, and what a listing renews lives 2 s in the
        kernel, so a program reading one right after the listing shows a change would be
        given the old size; looked up, they are rendered from the listing first."""
        if node.is_dir:
            return self._attrs(node)
        if node.kind is Kind.GENERATED:
            return _dirent(node)
        size = self._source.known_size(node)
        return _dirent(node) if size is None else self._told(path, self._attrs(node, size))

    @operation(MEMORY)
    def access(self, path: str, amode: int) -> int:
        if path == TRASH_DIR or path.startswith(TRASH_DIR + "/"):
            self._trash_attrs(path)
        else:
            self._node(path)
        if amode & os.W_OK:
            raise FuseError(errno.EROFS)
        return 0

    @operation(INLINE)
    def readlink(self, path: str) -> str:
        raise FuseError(errno.EINVAL)

    @operation(INLINE)
    def statfs(self, path: str) -> dict[str, int]:
        # Never touches the network: a file manager calls this constantly.
        stats = self._source.statfs()
        return {
            "f_bsize": stats.block_size,
            "f_frsize": stats.fragment_size,
            "f_blocks": stats.blocks,
            "f_bfree": stats.blocks_free,
            "f_bavail": stats.blocks_free,
            "f_files": stats.files,
            "f_ffree": stats.files_free,
            "f_favail": stats.files_free,
            "f_namemax": stats.name_max,
        }

    # ---- xattrs ------------------------------------------------------------------------

    @operation(INLINE)
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if name.startswith(UNSUPPORTED_XATTR_NAMESPACES):
            # No security labels, ACLs or trusted attributes here, as on a file system
            # without them. `ls -l` asks every entry for security.selinux and the POSIX
            # ACLs; told "not supported", it stops asking for the rest of the mount, where
            # "no such attribute" costs two or three requests per entry listed.
            raise FuseError(errno.EOPNOTSUPP)
        if not name.startswith(XATTR_PREFIX):
            raise FuseError(ENOATTR)  # answered before any lookup
        return self._user_xattr(path, name[len(XATTR_PREFIX) :])

    @operation(MEMORY)
    def _user_xattr(self, path: str, name: str) -> bytes:
        value = self._source.xattrs(self._node(path)).get(name)
        if value is None:
            raise FuseError(ENOATTR)  # ENOSYS would switch xattrs off for the whole mount
        return value.encode("utf-8")

    @operation(MEMORY)
    def listxattr(self, path: str) -> list[str]:
        return [XATTR_PREFIX + name for name in self._source.xattrs(self._node(path))]

    # ---- files -------------------------------------------------------------------------

    @operation(BOUNDED)
    def open(self, path: str, fi: Any) -> int:
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_CREAT):
            raise FuseError(errno.EROFS)
        node, reader = self._with_deadline(
            "open", self._open_reader, (path,), abandoned=_close_when_done
        )
        identity = self._source.identity(node)
        size_changed = self._size_changed(path, node) and not self._kernel_forgets(path)
        with self._handles_lock:
            fh = next(self._handle_ids)
            self._handles[fh] = reader
            # libfuse keys the kernel's inode, and so its page cache, by path: every version
            # of a file shares one. Same identity as the pages held (owner edit time + URL
            # path): keep them. A replaced file: drop them, unless a handle to the version
            # they hold is still open; then this handle bypasses the page cache, so neither
            # reader ever sees the other version's bytes.
            cached = self._cached_identity.get(node.key)
            still_open = cached is not None and self._open_versions[(node.key, cached)] > 0
            if cached == identity:
                fi.keep_cache = 1
            elif still_open:
                fi.direct_io = 1
            else:
                fi.keep_cache = 0
                self._cached_identity[node.key] = identity
            if size_changed:
                # The kernel may still hold the old version's size (up to its attribute
                # timeout) and would end this handle's reads there, silently, and it could
                # not be made to drop it: this handle's reads go past the page cache, to the
                # end of the version opened.
                fi.direct_io = 1
            version = (node.key, identity)
            self._open_versions[version] += 1
            self._handle_versions[fh] = version
        fi.fh = fh
        return 0

    def use_kernel_invalidation(self, invalidate: Callable[[str], int]) -> None:
        """The binding can have the kernel drop its attributes and pages of a path
        (libfuse 3's ``fuse_invalidate_path``; 0 or -errno). A file opened while the kernel
        holds another version's size is then opened as any other, through the page cache:
        its reads go to the end of the version opened, and programs may ``mmap`` it (the
        kernel maps no file it reads past the page cache)."""
        self._invalidate = invalidate
        self._invalidator = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="notionfs-inval"
        )

    def _kernel_forgets(self, path: str) -> bool:
        """Whether the kernel was made to drop what it holds of ``path`` (or held nothing).

        Asked from a thread of its own and waited for at most ``_INVALIDATE_WAIT_S``: the
        kernel drops the file's pages one by one and waits on any that a read is filling.
        """
        invalidate, invalidator = self._invalidate, self._invalidator
        if invalidate is None or invalidator is None:
            return False
        try:
            result = invalidator.submit(invalidate, path).result(timeout=_INVALIDATE_WAIT_S)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            logger.debug("the kernel's copy of %r was not dropped: %r", path, exc)
            return False
        if result not in (0, -errno.ENOENT):  # ENOENT: libfuse (so the kernel) forgot it
            logger.debug("the kernel's copy of %r was not dropped: %s", path, os.strerror(-result))
            return False
        self._sizes_told.pop(path, None)
        return True

    def _size_changed(self, path: str, node: Node) -> bool:
        """Whether ``node``'s size differs from the one the kernel was last given for
        ``path`` (a file the mount is writing excepted: the kernel follows its writes)."""
        told = self._sizes_told.get(path)
        if told is None or node.key.startswith("local:"):
            return False
        return self._source.known_size(node) not in (None, told)

    def _open_reader(self, path: str) -> tuple[Node, Reader]:
        node = self._node(path)
        if node.is_dir:
            raise FuseError(errno.EISDIR)
        return node, self._source.open(node)

    @operation(BOUNDED)
    def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
        fh = fi.fh
        reader = self._handles.get(fh)
        if reader is None:
            raise FuseError(errno.EBADF)
        # Bytes already in memory are answered on this thread: only a read that may wait on
        # the network is worth the hand-off that bounds it with the deadline.
        read_cached = getattr(reader, "read_cached", None)
        cached: bytes | None = read_cached(offset, size) if read_cached is not None else None
        if cached is not None:
            return cached
        self._refuse_retry_of_late_read(fh, offset, offset + size)
        late: list[concurrent.futures.Future[Any]] = []
        try:
            data: bytes = self._with_deadline(
                "read", reader.read, (offset, size), abandoned=late.append
            )
        except DeadlineExceeded:
            with self._handles_lock:
                self._late_reads[fh] = (offset, offset + size, late[0])
            raise
        return data

    def _refuse_retry_of_late_read(self, fh: int, start: int, end: int) -> None:
        """The kernel retries a failed read-ahead page at once with a read of its own; while
        the late read of that range still waits on the host, the retry fails at once too,
        so one read() costs one deadline, not two."""
        with self._handles_lock:
            late = self._late_reads.get(fh)
            if late is None:
                return
            late_start, late_end, future = late
            if future.done():
                del self._late_reads[fh]
                return
        if start < late_end and late_start < end:
            raise DeadlineExceeded("an earlier read of these bytes is still unanswered")

    @operation(INLINE)
    def release(self, path: str | None, fi: Any) -> int:
        with self._handles_lock:
            self._late_reads.pop(fi.fh, None)
            reader = self._handles.pop(fi.fh, None)
            version = self._handle_versions.pop(fi.fh, None)
            if version is not None:
                self._open_versions[version] -= 1
        if reader is not None:
            reader.close()
        return 0

    @operation(INLINE)
    def init(self, path: str) -> None:
        logger.debug("FUSE handshake done")
        self.mounted.set()

    @operation(INLINE)
    def init_with_config(self, conn: Any, config: Any) -> None:
        """libfuse 3 (mfusepy): requests up to ``read_ahead_kb`` (1 MiB) instead of 128 KiB,
        matching the ``max_read`` mount option; then as ``init``. fusepy calls ``init``."""
        read_bytes = self._settings.read_ahead_kb * 1024
        if conn is not None and read_bytes > 0:
            conn.max_read = read_bytes
            conn.max_readahead = read_bytes
        self.init("/")

    @operation(INLINE)
    def destroy(self, path: str) -> None:
        with self._handles_lock:
            readers = list(self._handles.values())
            self._handles.clear()
        for reader in readers:
            reader.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._invalidator is not None:
            self._invalidator.shutdown(wait=False, cancel_futures=True)
        self._source.close()


def _read_only(op: str) -> Callable[..., Any]:
    def refuse(self: NotionOperations, *args: Any) -> int:
        raise FuseError(errno.EROFS)

    refuse.__name__ = refuse.__qualname__ = op
    return operation(INLINE)(refuse)


for _op in WRITE_OPS:
    setattr(NotionOperations, _op, _read_only(_op))


class WritableOperations(NotionOperations):
    """The FUSE callbacks of a writable mount: files are created, written, replaced and
    removed through a WritableSource (see docs/SEMANTICS.md, "Writing"). Metadata writes
    Notion has no place for are refused with EPERM, except those that change nothing
    (``cp -p`` and ``rsync -a`` set the mode and owner a file already shows) and times,
    which are accepted and not kept."""

    _glib_trash = False  # GLib finds no trash folder and offers "Delete" (see TRASH_DIR)

    def __init__(
        self,
        source: WritableSource,
        settings: Settings,
        mounted: threading.Event | None = None,
    ) -> None:
        super().__init__(source, settings, mounted)
        self._writer = source

    def _write_handle(self, fi: Any) -> Any:
        handle = self._handles.get(fi.fh if fi is not None else -1)
        if handle is None or not hasattr(handle, "write"):
            raise FuseError(errno.EBADF)
        return handle

    def _register(self, fi: Any, handle: Reader) -> int:
        with self._handles_lock:
            fh = next(self._handle_ids)
            self._handles[fh] = handle
        fi.fh = fh
        fi.keep_cache = 0
        return 0

    @operation(BOUNDED)
    def open(self, path: str, fi: Any) -> int:
        if not fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC):
            return super().open.__wrapped__(self, path, fi)  # type: ignore[attr-defined,no-any-return]
        truncate = bool(fi.flags & os.O_TRUNC)
        node = self._node(path)
        if node.is_dir:
            raise FuseError(errno.EISDIR)
        handle = self._with_deadline(
            "open", lambda _path: self._writer.open_write(node, truncate=truncate), (path,),
            abandoned=_close_handle_when_done,
        )  # fmt: skip
        return self._register(fi, handle)

    @operation(BOUNDED)
    def create(self, path: str, mode: int, fi: Any = None) -> int:
        handle = self._with_deadline(
            "create", self._writer.create, (path,), abandoned=_close_handle_when_done
        )
        return self._register(fi, handle)

    @operation(INLINE)
    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        written: int = self._write_handle(fi).write(offset, data)
        return written

    @operation(INLINE)
    def truncate(self, path: str | None, length: int, fi: Any = None) -> int:
        if fi is not None:
            self._write_handle(fi).truncate(length)
            return 0
        if path is None:
            raise FuseError(errno.EBADF)
        self._writer.truncate_path(self._node(path), length)
        return 0

    @operation(INLINE)
    def flush(self, path: str | None, fi: Any) -> int:
        handle = self._handles.get(fi.fh)
        if handle is not None and hasattr(handle, "flush"):
            handle.flush()
        return 0

    @operation(INLINE)
    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        return self.flush(path, fi)

    @operation(NETWORK)
    def unlink(self, path: str) -> int:
        self._writer.unlink(path)
        return 0

    @operation(NETWORK)
    def rename(self, old: str, new: str, *flags: Any) -> int:
        self._writer.rename(old, new)
        return 0

    @operation(INLINE)
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if name == STATE_XATTR:
            return self._user_xattr(path, "state")
        return super().getxattr.__wrapped__(self, path, name, position)  # type: ignore[attr-defined,no-any-return]

    @operation(MEMORY)
    def listxattr(self, path: str) -> list[str]:
        names = self._source.xattrs(self._node(path))
        state = [STATE_XATTR] if "state" in names else []
        return [XATTR_PREFIX + n for n in names if n != "state"] + state

    @operation(NETWORK)
    def mkdir(self, path: str, mode: int) -> int:
        self._writer.mkdir(path)
        return 0

    @operation(NETWORK)
    def rmdir(self, path: str) -> int:
        self._writer.rmdir(path)
        return 0

    @operation(MEMORY)
    def access(self, path: str, amode: int) -> int:
        node = self._node(path)
        if amode & os.W_OK and not node.is_dir and node.kind is Kind.GENERATED:
            raise FuseError(errno.EACCES)
        return 0

    @operation(MEMORY)
    def chmod(self, path: str, mode: int) -> int:
        node = self._node(path)
        shown = DIR_MODE if node.is_dir else FILE_MODE
        if stat.S_IMODE(mode) != shown:
            logger.warning("chmod %r: Notion keeps no permissions (only %o is shown)",
                           path, shown)
            raise FuseError(errno.EPERM)
        return 0

    @operation(MEMORY)
    def chown(self, path: str, uid: int, gid: int) -> int:
        self._node(path)
        if uid not in (-1, self._uid, 0xFFFFFFFF) or gid not in (-1, self._gid, 0xFFFFFFFF):
            logger.warning("chown %r: Notion keeps no owners", path)
            raise FuseError(errno.EPERM)
        return 0

    @operation(MEMORY)
    def utimens(self, path: str, times: Any = None) -> int:
        self._node(path)  # accepted, not kept: Notion sets its own times
        return 0


def _refuse(op: str, code: int, why: str) -> Callable[..., Any]:
    def refuse(self: NotionOperations, *args: Any) -> int:
        logger.warning("%s %s: %s", op, _path_arg(args), why)
        raise FuseError(code)

    refuse.__name__ = refuse.__qualname__ = op
    return operation(INLINE)(refuse)


for _op in ("mknod", "symlink", "link"):
    setattr(WritableOperations, _op, _refuse(_op, errno.EPERM, "Notion has no such files"))
for _op in ("setxattr", "removexattr"):
    setattr(WritableOperations, _op, _refuse(_op, errno.EPERM, "attributes are not kept"))


def _close_handle_when_done(future: concurrent.futures.Future[Any]) -> None:
    """A write open that outlived its deadline: close the handle it makes, nobody will."""

    def close(done: concurrent.futures.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result().close()

    future.add_done_callback(close)


DirEntry = tuple[str, "dict[str, int] | None", int]


# Paths whose told size is kept (about 100 bytes each); past it the notes start afresh.
_MAX_SIZES_TOLD = 200_000
# How long an open waits for the kernel to drop a file's old size and pages before it opens
# the file past the page cache instead.
_INVALIDATE_WAIT_S = 1.0


def _dir_entries(
    folder: Node, children: list[Node], attrs: Callable[[Node], dict[str, int]] | None = None
) -> list[DirEntry]:
    """Entries with their inode and type at least: with ``use_ino``, libfuse 3 would
    otherwise send inode 0, and glibc's readdir skips such entries as deleted. ``attrs``
    gives a child's attributes: full ones (they carry ``st_nlink``) or only those two."""
    attrs = attrs or _dirent
    entries: list[DirEntry] = [(".", _dirent(folder), 0), ("..", None, 0)]
    entries.extend((child.name, attrs(child), 0) for child in children)
    return entries


def _dirent(node: Node) -> dict[str, int]:
    return {"st_ino": node.inode, "st_mode": stat.S_IFDIR if node.is_dir else stat.S_IFREG}


def _close_when_done(future: concurrent.futures.Future[Any]) -> None:
    """An open that outlived its deadline: close the reader it makes, nobody will."""

    def close(done: concurrent.futures.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result()[1].close()

    future.add_done_callback(close)


def _path_arg(args: tuple[Any, ...]) -> str:
    return repr(args[0]) if args and isinstance(args[0], str) else ""


def run_fuse(
    binding: Binding,
    source: MountSource,
    settings: Settings,
    mountpoint: str,
    options: dict[str, Any],
    *,
    mounted: threading.Event | None = None,
) -> None:
    """Mount and serve until unmounted (fusermount -u). ``mounted`` is set once the kernel
    talks to us. Signals are the caller's business (see cli.py): libfuse's own handlers end
    the loop while callbacks may still run in Python, which then hangs the exit."""
    operations = (
        WritableOperations(source, settings, mounted)
        if isinstance(source, WritableSource)
        else NotionOperations(source, settings, mounted)
    )
    binding.serve(operations, mountpoint, options)
