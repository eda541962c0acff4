"""The one place a FUSE binding is imported: fusepy over libfuse 2 (the default), or mfusepy,
fusepy's maintained fork, over libfuse 3 (chosen by name, or when libfuse 2 is absent).

The adapter (fuse_ops.py) is a plain class whose methods each carry their own wrapper, so it
behaves the same under both: fusepy routes every callback through ``operations(op, *args)``
(given here by a small dispatcher), while mfusepy calls the methods directly and registers
only those the class defines. Both turn an ``OSError`` raised by a method into ``-errno``.
"""

from __future__ import annotations

import ctypes.util
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["BINDINGS", "Binding", "load_binding", "libfuse_paths"]

BINDINGS = ("auto", "fusepy", "mfusepy")


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


def load_binding(choice: str = "auto") -> Binding:
    """Import the binding ``choice`` names ("auto": fusepy where libfuse 2 is present, else
    mfusepy over libfuse 3). ConfigError says what is missing."""
    if choice not in BINDINGS:
        raise ConfigError(f"unknown FUSE binding {choice!r}: choose one of {', '.join(BINDINGS)}")
    paths = libfuse_paths()
    if choice == "auto":
        choice = "fusepy" if paths[2] else "mfusepy"
    if choice == "fusepy":
        if not paths[2]:
            raise ConfigError("libfuse 2 is not installed (fusepy needs it)")
        try:
            import fuse
        except (OSError, ImportError) as exc:
            raise ConfigError(f"fusepy cannot load libfuse 2 ({exc})") from None
        return Binding("fusepy", 2, fuse.FUSE)
    library = paths[3] or paths[2]
    if library is None:
        raise ConfigError("neither libfuse 3 nor libfuse 2 is installed")
    # mfusepy picks its library when imported; point it at libfuse 3 where there is one.
    os.environ.setdefault("FUSE_LIBRARY_PATH", library)
    try:
        import mfusepy
    except (OSError, ImportError) as exc:
        raise ConfigError(f"mfusepy cannot load {library} ({exc})") from None
    return Binding("mfusepy", int(mfusepy.fuse_version_major), mfusepy.FUSE)
