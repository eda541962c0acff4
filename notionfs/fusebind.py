"""The one place a FUSE binding is imported: mfusepy, fusepy's maintained fork, over libfuse 3
where libfuse 3 can mount here, else fusepy over libfuse 2; either can be chosen by name.

libfuse 3 is preferred because it lets the kernel send 1 MiB reads instead of 128 KiB ones:
a cold sequential read through the mount runs about twice as fast, on half the CPU per
byte (BENCHMARKS.md). It can mount when the process is root or libfuse 3's own
``fusermount3`` is installed (package fuse3); a user with only libfuse 2's ``fusermount``
(package fuse) gets fusepy, as before.

The adapter (fuse_ops.py) is a plain class whose methods each carry their own wrapper, so it
behaves the same under both: fusepy routes every callback through ``operations(op, *args)``
(given here by a small dispatcher), while mfusepy calls the methods directly and registers
only those the class defines. Both turn an ``OSError`` raised by a method into ``-errno``.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from .config import Settings
from .errors import ConfigError

__all__ = [
    "BINDINGS", "Binding", "auto_binding", "fuse_options", "kernel_read_bytes", "load_binding",
    "libfuse3_can_mount", "libfuse_paths", "tune_read_ahead",
]

logger = logging.getLogger(__name__)

BINDINGS = ("auto", "fusepy", "mfusepy")
_LIBFUSE2_READ_BYTES = 128 * 1024  # libfuse 2's ceiling on the kernel's read requests


def libfuse_paths() -> dict[int, str | None]:
    """The libfuse shared libraries this machine has, by major version."""
    return {2: ctypes.util.find_library("fuse"), 3: ctypes.util.find_library("fuse3")}


@dataclass(frozen=True)
class Binding:
    """A loaded binding: its name, the libfuse major version it drives, and its FUSE class."""

    name: str
    libfuse_major: int
    fuse_class: Any

    def serve(self, operations: object, mountpoint: str, options: dict[str, Any]) -> None:
        """Mount and serve in the foreground, multi-threaded, until unmounted."""
        target = _CallDispatch(operations) if self.name == "fusepy" else operations
        self.fuse_class(
            target, mountpoint, raw_fi=True, foreground=True, nothreads=False, **options
        )


class _CallDispatch:
    """fusepy calls ``operations(op, *args)``; this forwards to the method of that name
    (the method's own wrapper does the errno mapping and the deadline)."""

    def __init__(self, operations: object) -> None:
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._operations, name)

    def __call__(self, op: str, *args: Any) -> Any:
        return getattr(self._operations, op)(*args)


def libfuse3_can_mount() -> bool:
    """libfuse 3 mounts directly as root; anyone else needs its ``fusermount3``."""
    return os.geteuid() == 0 or shutil.which("fusermount3") is not None


def auto_binding(paths: dict[int, str | None]) -> str:
    """What ``auto`` means on this machine: mfusepy where libfuse 3 is installed and can
    mount, else fusepy where libfuse 2 is, else mfusepy (whose error then says why)."""
    if paths[3] and libfuse3_can_mount():
        return "mfusepy"
    return "fusepy" if paths[2] else "mfusepy"


def load_binding(choice: str = "auto") -> Binding:
    """Import the binding ``choice`` names ("auto": see ``auto_binding``). ConfigError says
    what is missing."""
    if choice not in BINDINGS:
        raise ConfigError(f"unknown FUSE binding {choice!r}: choose one of {', '.join(BINDINGS)}")
    paths = libfuse_paths()
    if choice == "auto":
        choice = auto_binding(paths)
        if choice == "mfusepy" and paths[2]:
            try:
                return _load_mfusepy(paths)
            except ConfigError as exc:
                logger.info("%s; using fusepy over libfuse 2", exc)
                choice = "fusepy"
    if choice == "fusepy":
        if not paths[2]:
            raise ConfigError("libfuse 2 is not installed (fusepy needs it)")
        try:
            import fuse
        except (OSError, ImportError) as exc:
            raise ConfigError(f"fusepy cannot load libfuse 2 ({exc})") from None
        return Binding("fusepy", 2, fuse.FUSE)
    return _load_mfusepy(paths)


def _load_mfusepy(paths: dict[int, str | None]) -> Binding:
    library = paths[3] or paths[2]
    if library is None:
        raise ConfigError("neither libfuse 3 nor libfuse 2 is installed")
    # mfusepy picks its library when imported; point it at libfuse 3 where there is one.
    os.environ.setdefault("FUSE_LIBRARY_PATH", library)
    try:
        import mfusepy
    except (OSError, ImportError) as exc:
        raise ConfigError(f"mfusepy cannot load {library} ({exc})") from None
    major = int(mfusepy.fuse_version_major)
    return Binding("mfusepy", major, _attributed_readdir(mfusepy) if major == 3 else mfusepy.FUSE)


_READDIR_PLUS = 1  # libfuse 3: the kernel asks for entries with their attributes
_FILL_DIR_PLUS = 2  # libfuse 3: this entry carries them
_HELD_RESTS = 64  # open folders whose listing's rest is kept for their next request


def _attributed_readdir(mfusepy: Any) -> Any:
    """mfusepy's FUSE class, answering the kernel's READDIRPLUS with each entry's attributes
    where the adapter gives them in full (``st_nlink`` present): the kernel then looks none
    of them up, and a folder's subfolders and files are stat()ed from what the listing of
    the folder brought (mfusepy passes only inode and type, its TODO).

    libfuse 3 up to 3.15 links attributes only for entries given with offsets (the list
    it collects from a filler without them drops all attributes), so each entry carries
    its place, and libfuse then passes each of the kernel's requests (a page of entries,
    then the next page from where it filled, until one comes back empty) to Python; a
    listing without any attributes to give goes without offsets, and libfuse answers the
    requests after the first from the whole of it, as mfusepy has it do.

    The rest of a listing given with offsets is kept for the next request of the same open
    folder: keyed by libfuse's own handle of it (``buf``, its address, which libfuse passes
    on each request), one rest per handle, used only by a request for the same folder from
    the offset where the page filled; a few folders at a time, least recent dropped. The
    adapter is asked once per listing, not once per page; a rest missing or not matching
    is asked for again, and the entries from that offset are those of the listing then.
    """

    class AttributedReaddirFUSE(mfusepy.FUSE):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.keep_rests()
            super().__init__(*args, **kwargs)  # mounts, and serves until unmounted

        def _init(self, conn: Any, config: Any) -> None:
            self._offer_invalidation()
            super()._init(conn, config)

        def _offer_invalidation(self) -> None:
            """Give the adapter libfuse's ``fuse_invalidate_path`` (the kernel drops its
            attributes and pages of a path), bound to this mount's handle: known only inside
            a callback, so taken here, in the handshake."""
            use = getattr(self.operations, "use_kernel_invalidation", None)
            if use is None:
                return
            try:
                handle = ctypes.c_void_p(mfusepy._libfuse.fuse_get_context().contents.fuse)
                invalidate_path = mfusepy._libfuse.fuse_invalidate_path
            except (AttributeError, ValueError) as exc:  # a libfuse without it
                logger.debug("the kernel's caches cannot be invalidated: %s", exc)
                return
            invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            invalidate_path.restype = ctypes.c_int
            encoding, errors = self.encoding, self.errors
            use(lambda path: int(invalidate_path(handle, path.encode(encoding, errors))))

        def keep_rests(self) -> None:
            # libfuse's handle -> (folder, offset, the entries from that offset on)
            self._rests: LRUCache[int, tuple[bytes | None, int, list[Any]]] = LRUCache(
                _HELD_RESTS
            )
            self._rests_lock = threading.Lock()  # a leaf

        def readdir_fuse_3(
            self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
        ) -> int:
            plus = bool(flags & _READDIR_PLUS)
            with self._rests_lock:
                kept = self._rests.pop(buf, None)
            whole = False  # given without offsets: libfuse keeps the listing and the rest
            if kept is not None and kept[0] == path and kept[1] == offset:
                entries = kept[2]
            else:
                decoded = None if path is None else path.decode(self.encoding, self.errors)
                entries = self.operations.readdir(decoded, fip.contents.fh, plus)[offset:]
                whole = offset == 0 and not (plus and any(_full(a) for _, a, _ in entries))
            st = mfusepy.c_stat()
            for index, (name, attrs, _offset) in enumerate(entries):
                fill = 0
                if attrs is not None:
                    if plus and _full(attrs):
                        ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
                        mfusepy.set_st_attrs(st, attrs, use_ns=True)
                        fill = _FILL_DIR_PLUS
                    else:
                        st.st_ino = attrs["st_ino"]
                        st.st_mode = attrs["st_mode"]
                encoded = name.encode(self.encoding, self.errors)
                place = 0 if whole else offset + index + 1
                stat_given = st if attrs is not None else None
                if filler(buf, encoded, stat_given, place, fill) != 0 and not whole:
                    with self._rests_lock:  # the page is full: this entry starts the next
                        self._rests[buf] = (path, place - 1, entries[index:])
                    return 0
            if entries and not whole:
                with self._rests_lock:  # all of it fit: the next request finds the end
                    self._rests[buf] = (path, offset + len(entries), [])
            return 0

    return AttributedReaddirFUSE


def _full(attrs: dict[str, int] | None) -> bool:
    """Whether a listing entry carries full attributes (see fuse_ops.readdir)."""
    return attrs is not None and "st_nlink" in attrs


def kernel_read_bytes(settings: Settings, libfuse_major: int) -> int:
    """The size of the kernel's read requests on this mount (``max_read``)."""
    if libfuse_major == 2 or settings.read_ahead_kb <= 0:
        return _LIBFUSE2_READ_BYTES
    return settings.read_ahead_kb * 1024


def fuse_options(
    settings: Settings, fsname: str, extra: dict[str, Any], *, libfuse_major: int = 2
) -> dict[str, Any]:
    """The options passed to libfuse (``-o``), with the reasons in docs/SEMANTICS.md."""
    timeout_s = settings.kernel_answer_s
    options: dict[str, Any] = {
        "fsname": _option_value(fsname),
        "subtype": "notionfs",
        "use_ino": True,
        "default_permissions": True,
        "attr_timeout": timeout_s,
        "entry_timeout": timeout_s,
        "negative_timeout": timeout_s,
    }
    if not settings.writable:
        options["ro"] = True
    if libfuse_major == 2:
        # libfuse 2's ceiling; our own read-ahead does the rest.
        options.update(max_read=_LIBFUSE2_READ_BYTES, max_readahead=_LIBFUSE2_READ_BYTES)
        if settings.writable:
            # Without it libfuse 2 has the kernel send writes of one page (4 KiB) each: a
            # save crawls at ~20 MB/s. libfuse 3 writes big by default.
            options.update(big_writes=True, max_write=131072)
    elif settings.read_ahead_kb > 0:
        # libfuse 3 lets requests grow to 1 MiB; the adapter's init says the same to the
        # kernel (libfuse refuses a mount whose two figures differ), see tune_read_ahead.
        options.update(max_read=kernel_read_bytes(settings, libfuse_major))
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


def tune_read_ahead(mountpoint: str, read_ahead_kb: int) -> bool:
    """Raise the mount's read-ahead window (its backing device's ``read_ahead_kb``) so the
    kernel sends reads as large as libfuse 3 allows. The kernel starts a FUSE mount at
    128 KiB and lets the filesystem only lower it; raising it needs root (or the udev rule
    in README.md). Returns whether it took."""
    try:
        device = os.stat(mountpoint).st_dev
        path = f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb"
        with open(path, "w", encoding="ascii") as knob:
            knob.write(str(read_ahead_kb))
    except OSError as exc:
        logger.info("read-ahead of %s left at the kernel's default: %s", mountpoint, exc)
        return False
    logger.debug("read-ahead of %s raised to %d KiB", mountpoint, read_ahead_kb)
    return True
