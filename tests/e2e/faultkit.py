"""Helpers for the fault, hostile-input, secrets, concurrency and rate tests: timed calls,
ranged reads, small workspaces of known bytes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notionfs.emulator.media import pattern_bytes
from notionfs.emulator.model import FileSpec, Page, file_block

MiB = 1 << 20


@dataclass
class Timed:
    """What a call returned, or the OSError it raised, and how long it took."""

    value: Any
    error: OSError | None
    elapsed_s: float

    @property
    def errno(self) -> int | None:
        return None if self.error is None else self.error.errno


def timed(fn: Callable[..., Any], *args: Any) -> Timed:
    started = time.monotonic()
    try:
        value = fn(*args)
    except OSError as exc:
        return Timed(None, exc, time.monotonic() - started)
    return Timed(value, None, time.monotonic() - started)


def run(command: list[str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


def read_at(path: Path | str, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` through a fresh descriptor (short only at end of file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts: list[bytes] = []
        done = 0
        while done < size:
            chunk = os.pread(fd, size - done, offset + done)
            if not chunk:
                break
            parts.append(chunk)
            done += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def read_all(path: Path | str, chunk_bytes: int = MiB) -> bytes:
    with open(path, "rb", buffering=0) as f:
        parts = []
        while chunk := f.read(chunk_bytes):
            parts.append(chunk)
    return b"".join(parts)


def drop_page_cache(path: Path | str) -> None:
    """Forget the kernel's cached pages of ``path``, so the next read reaches the mount."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll a condition no event announces (a mount recovering by itself)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


def pattern_spec(name: str, size_bytes: int, seed: str | int) -> FileSpec:
    return FileSpec(name, data=pattern_bytes(size_bytes, seed))


def files_page(title: str, specs: list[FileSpec], kind: str = "file") -> Page:
    """A page holding one ``kind`` file block per spec."""
    return Page(title, children=[file_block(kind, spec) for spec in specs])


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def is_generated(path: Path) -> bool:
    """index.md / index.csv: rendered by the mount, with no original in the workspace."""
    return os.getxattr(path, "user.notion.type") == b"generated"


def attachments(folder: Path) -> list[Path]:
    """The file objects in ``folder`` (generated files left out), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not is_generated(p))
