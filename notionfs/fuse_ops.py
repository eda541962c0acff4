"""The fusepy adapter: the only module that imports fuse or speaks errno."""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import errno
import itertools
import logging
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any

from fuse import FUSE, FuseOSError, Operations  # the one place fuse is imported

from .config import Settings
from .errors import DeadlineExceeded, NotionFSError, errno_for
from .tree import Entry, Kind, Reader, Tree

__all__ = ["NotionOperations", "run_fuse", "fuse_options"]

logger = logging.getLogger(__name__)

XATTR_PREFIX = "user.notion."
# ENODATA is Linux's "no such attribute"; macOS calls it ENOATTR (93).
ENOATTR = getattr(errno, "ENODATA", 93) if sys.platform != "darwin" else 93

# Operations that never touch the network: run inline, no deadline machinery needed.
_INLINE_OPS = frozenset({"init", "destroy", "statfs", "release", "releasedir", "opendir"})
# Operations given a fuse_file_info: they run inline and put only their slow part under the
# deadline, because the struct must not be touched once the call has returned.
_SELF_BOUNDED_OPS = frozenset({"open", "read"})
# Operations answered on the FUSE thread when memory holds the answer (see _in_memory).
_MEMORY_OPS = frozenset({"getattr", "readdir", "getxattr", "listxattr", "access"})
# Operations a read-only filesystem refuses outright.
_WRITE_OPS = frozenset(
    {
        "chmod",
        "chown",
        "create",
        "mkdir",
        "mknod",
        "rename",
        "rmdir",
        "symlink",
        "link",
        "truncate",
        "unlink",
        "utimens",
        "write",
        "setxattr",
        "removexattr",
    }
)


# Callbacks arrive on libfuse's own threads (at most ten, kept for the mount's life). For
# each call ctypes makes a Python thread state and destroys it after, which in 3.11 maps and
# unmaps a 16 KiB frame stack every time; holding one more reference keeps it. An empty
# fusepy filesystem: 1.4 -> 2.0 GB/s, getxattr 45 -> 26 us; notionfs cold read +27%.
_thread_state = threading.local()


def _keep_thread_state() -> None:
    if not getattr(_thread_state, "kept", False):
        ctypes.pythonapi.PyGILState_Ensure()  # never released: the thread keeps its state
        _thread_state.kept = True


class NotionOperations(Operations):  # type: ignore[misc]
    """FUSE callbacks over a Tree. Every call is bounded by ``settings.op_deadline_s``."""

    use_ns = True

    def __init__(
        self, tree: Tree, settings: Settings, mounted: threading.Event | None = None
    ) -> None:
        self._tree = tree
        # Set once the kernel has finished the FUSE handshake: the mount is in place.
        self.mounted = mounted or threading.Event()
        self._settings = settings
        self._uid = os.getuid()
        self._gid = os.getgid()
        self._handles: dict[int, Reader] = {}
        self._handle_ids = itertools.count(1)
        self._handles_lock = threading.Lock()
        # Per handle, a read that outlived its deadline: (start, end, its future).
        self._late_reads: dict[int, tuple[int, int, concurrent.futures.Future[Any]]] = {}
        # Per file (entry key): the identity of the version whose pages the kernel holds, and
        # how many handles each version has open.
        self._cached_identity: dict[str, str] = {}
        self._open_versions: collections.Counter[tuple[str, str]] = collections.Counter()
        self._handle_versions: dict[int, tuple[str, str]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=64, thread_name_prefix="notionfs-op"
        )

    # ---- the single entry point fusepy calls ------------------------------------------

    def __call__(self, op: str, *args: Any) -> Any:
        _keep_thread_state()
        if op in _WRITE_OPS:
            raise FuseOSError(errno.EROFS)
        if op == "getxattr" and not args[1].startswith(XATTR_PREFIX):
            # `ls -l` asks every file for security.selinux and system.posix_acl_access:
            # answered here, without the deadline hand-off (warm ls -l of 1000: 200 -> 90 ms).
            raise FuseOSError(ENOATTR)
        handler: Callable[..., Any] | None = getattr(self, op, None)
        if handler is None:
            raise FuseOSError(errno.ENOSYS)
        try:
            if op in _INLINE_OPS or op in _SELF_BOUNDED_OPS or self._in_memory(op, args):
                return handler(*args)
            return self._with_deadline(op, handler, args)
        except FuseOSError:
            raise
        except NotionFSError as exc:
            code = errno_for(exc)
            logger.warning("%s %s: %s (errno %s)", op, _path_arg(args), exc, code)
            raise FuseOSError(code) from exc
        except Exception as exc:  # fusepy would turn this into a misleading EINVAL
            logger.exception("%s %s failed unexpectedly", op, _path_arg(args))
            raise FuseOSError(errno.EIO) from exc

    def _in_memory(self, op: str, args: tuple[Any, ...]) -> bool:
        """Whether fresh listings and known sizes answer this call with no I/O: then it runs
        on the FUSE thread, and a pool full of calls stuck on a slow Notion cannot delay it.
        (A listing that expires in between is fetched inline, still bounded by the client's
        own timeouts.)"""
        if op not in _MEMORY_OPS:
            return False
        known, entry = self._tree.lookup_fresh(args[0])
        if not known or entry is None:
            return known
        if op == "getattr":
            return entry.is_dir or self._tree.known_size(entry) is not None
        if op == "readdir":
            return entry.is_dir and self._tree.is_fresh(entry)
        return True  # xattrs and access need nothing but the entry

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
        entry = self._tree.lookup_cached(args[0])
        if entry is None:
            return None
        if op == "getattr" and (entry.is_dir or self._tree.known_size(entry) is not None):
            return self._attrs(entry, cached_only=True)
        if op == "readdir" and entry.is_dir and entry.children is not None:
            return [".", "..", *entry.children]
        if op == "open" and not entry.is_dir and self._tree.known_size(entry) is not None:
            return entry, self._tree.open(entry)
        return None

    # ---- metadata ----------------------------------------------------------------------

    def _entry(self, path: str) -> Entry:
        entry = self._tree.lookup(path)
        if entry is None:
            raise FuseOSError(errno.ENOENT)
        return entry

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        return self._attrs(self._entry(path))

    def _attrs(self, entry: Entry, cached_only: bool = False) -> dict[str, int]:
        mtime_ns = int(entry.mtime_s * 1e9)
        ctime_ns = int(entry.ctime_s * 1e9)
        attrs = {
            "st_ino": entry.inode,
            "st_uid": self._uid,
            "st_gid": self._gid,
            "st_atime": mtime_ns,
            "st_mtime": mtime_ns,
            "st_ctime": ctime_ns,
            "st_blksize": self._settings.st_blksize_bytes,
        }
        if entry.is_dir:
            attrs.update(st_mode=stat.S_IFDIR | 0o555, st_nlink=2, st_size=0, st_blocks=0)
        else:
            if cached_only:
                size = self._tree.known_size(entry) or 0
            else:
                size = self._tree.size(entry)
            attrs.update(
                st_mode=stat.S_IFREG | 0o444,
                st_nlink=1,
                st_size=size,
                st_blocks=(size + 511) // 512,
            )
        return attrs

    def readdir(self, path: str, fh: Any) -> list[str]:
        entry = self._entry(path)
        if not entry.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return [".", "..", *(child.name for child in self._tree.listdir(entry))]

    def access(self, path: str, amode: int) -> int:
        self._entry(path)
        if amode & os.W_OK:
            raise FuseOSError(errno.EROFS)
        return 0

    def readlink(self, path: str) -> str:
        raise FuseOSError(errno.EINVAL)

    def statfs(self, path: str) -> dict[str, int]:
        # Never touches the network: a file manager calls this constantly.
        return {
            "f_bsize": self._settings.st_blksize_bytes,
            "f_frsize": 4096,
            "f_blocks": 0,
            "f_bfree": 0,
            "f_bavail": 0,
            "f_files": 0,
            "f_ffree": 0,
            "f_favail": 0,
            "f_namemax": 255,
        }

    # ---- xattrs ------------------------------------------------------------------------

    def _xattrs(self, entry: Entry) -> dict[str, str]:
        values = {}
        if entry.object_id:
            values[XATTR_PREFIX + "id"] = entry.object_id
        if entry.notion_url:
            values[XATTR_PREFIX + "url"] = entry.notion_url
        if entry.kind is not Kind.ROOT:
            values[XATTR_PREFIX + "type"] = entry.kind.value
        return values

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        value = self._xattrs(self._entry(path)).get(name)
        if value is None:
            raise FuseOSError(ENOATTR)  # ENOSYS would switch xattrs off for the whole mount
        return value.encode("utf-8")

    def listxattr(self, path: str) -> list[str]:
        return list(self._xattrs(self._entry(path)))

    # ---- files -------------------------------------------------------------------------

    def open(self, path: str, fi: Any) -> int:
        if fi.flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_CREAT):
            raise FuseOSError(errno.EROFS)
        entry, reader = self._with_deadline(
            "open", self._open_reader, (path,), abandoned=_close_when_done
        )
        identity = self._tree.identity(entry)
        with self._handles_lock:
            fh = next(self._handle_ids)
            self._handles[fh] = reader
            # libfuse keys the kernel's inode, and so its page cache, by path: every version
            # of a file shares one. Same identity as the pages held (owner edit time + URL
            # path): keep them. A replaced file: drop them, unless a handle to the version
            # they hold is still open; then this handle bypasses the page cache, so neither
            # reader ever sees the other version's bytes.
            cached = self._cached_identity.get(entry.key)
            still_open = cached is not None and self._open_versions[(entry.key, cached)] > 0
            if cached == identity:
                fi.keep_cache = 1
            elif still_open:
                fi.direct_io = 1
            else:
                fi.keep_cache = 0
                self._cached_identity[entry.key] = identity
            version = (entry.key, identity)
            self._open_versions[version] += 1
            self._handle_versions[fh] = version
        fi.fh = fh
        return 0

    def _open_reader(self, path: str) -> tuple[Entry, Reader]:
        entry = self._entry(path)
        if entry.is_dir:
            raise FuseOSError(errno.EISDIR)
        return entry, self._tree.open(entry)

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        fh = fi.fh
        reader = self._handles.get(fh)
        if reader is None:
            raise FuseOSError(errno.EBADF)
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

    def release(self, path: str, fi: Any) -> int:
        with self._handles_lock:
            self._late_reads.pop(fi.fh, None)
            reader = self._handles.pop(fi.fh, None)
            version = self._handle_versions.pop(fi.fh, None)
            if version is not None:
                self._open_versions[version] -= 1
        if reader is not None:
            reader.close()
        return 0

    def init(self, path: str) -> None:
        logger.debug("FUSE handshake done")
        self.mounted.set()

    def destroy(self, path: str) -> None:
        with self._handles_lock:
            readers = list(self._handles.values())
            self._handles.clear()
        for reader in readers:
            reader.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._tree.close()


def _close_when_done(future: concurrent.futures.Future[Any]) -> None:
    """An open that outlived its deadline: close the reader it makes, nobody will."""

    def close(done: concurrent.futures.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            done.result()[1].close()

    future.add_done_callback(close)


def _path_arg(args: tuple[Any, ...]) -> str:
    return repr(args[0]) if args and isinstance(args[0], str) else ""


def fuse_options(settings: Settings, fsname: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The options passed to libfuse (``-o``), with the reasons in docs/SEMANTICS.md."""
    timeout_s = max(1.0, settings.metadata_ttl_s)
    options: dict[str, Any] = {
        "fsname": _option_value(fsname),
        "subtype": "notionfs",
        "ro": True,
        "use_ino": True,
        "default_permissions": True,
        "attr_timeout": timeout_s,
        "entry_timeout": timeout_s,
        "negative_timeout": timeout_s,
        "max_read": 131072,
        "max_readahead": 131072,
    }
    if sys.platform == "darwin":
        # Finder's volume name (the name after "notion:"), and no ._ files written or asked for.
        volname = _option_value(fsname.split(":", 1)[-1])[:32]
        options.update(noappledouble=True, volname=volname)
    options.update(extra)
    return options


def _option_value(text: str) -> str:
    """``text`` safe inside ``-o``: libfuse splits options at commas and unescapes
    backslashes, and the mount table has no place for control characters."""
    cleaned = "".join(" " if ch in ",\\" or not ch.isprintable() else ch for ch in text)
    return " ".join(cleaned.split())


def run_fuse(
    tree: Tree,
    settings: Settings,
    mountpoint: str,
    options: dict[str, Any],
    *,
    mounted: threading.Event | None = None,
) -> None:
    """Mount and serve until unmounted (fusermount -u). ``mounted`` is set once the kernel
    talks to us. Signals are the caller's business (see cli.py): libfuse's own handlers end
    the loop while callbacks may still run in Python, which then hangs the exit."""
    operations = NotionOperations(tree, settings, mounted)
    FUSE(operations, mountpoint, raw_fi=True, foreground=True, nothreads=False, **options)
