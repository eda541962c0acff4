"""Staged files: bytes being written live on disk, in a private directory bounded in bytes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from notionfs.errors import StagingFullError
from notionfs.storefile import check_secret_free

__all__ = ["NOTE_SUFFIX", "STAGE_SUFFIX", "StagingArea", "StagedFile", "PartReader"]

logger = logging.getLogger(__name__)

STAGE_SUFFIX = ".stage"
# Beside a staged file, where its bytes were going (folder and name): what a later mount
# needs to save a file whose writer died before it was journalled.
NOTE_SUFFIX = ".where"
_NOTE_SCRATCH = ".new"  # a note being written, renamed over the note when complete
_HASH_CHUNK_BYTES = 1 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def ensure_private_dir(root: Path) -> None:
    """``root`` exists, is a directory of ours, and is readable by us alone (0700)."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{root} is not a directory")
    if st.st_uid != os.geteuid():
        raise PermissionError(f"{root} belongs to another user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(root, 0o700)


class StagingArea:
    """The directory of staged files and the byte bound over all of them.

    Sizes are counted as each file's apparent size (its end offset), holes included: the
    upload sends every byte, so that is what the file will cost. Files found at start (left
    by a process that died) count from the first moment.
    """

    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.root = root
        self.max_bytes = max_bytes
        ensure_private_dir(root)
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        for path in self.files():
            self._sizes[str(path)] = path.stat().st_size

    def files(self) -> list[Path]:
        """Every staged file on disk, oldest first."""
        found = [p for p in self.root.iterdir() if p.name.endswith(STAGE_SUFFIX) and p.is_file()]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def orphans(self, known: Iterable[Path]) -> list[Path]:
        """Staged files no journal entry names: written, but never handed to an upload
        (the mount died while they were open). Their notes say where they were going."""
        named = {str(Path(p)) for p in known}
        return [p for p in self.files() if str(p) not in named]

    def note_of(self, path: Path) -> dict[str, object] | None:
        """The note kept beside staged file ``path`` (None: none, or unreadable)."""
        try:
            note = json.loads(_note_path(Path(path)).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return note if isinstance(note, dict) else None

    def sweep_notes(self) -> None:
        """Remove notes whose staged file is gone (a crash between the two unlinks of
        ``remove``) and half-written ones (a crash inside ``StagedFile.note``)."""
        for path in self.root.iterdir():
            if path.name.endswith(NOTE_SUFFIX):
                stray = not path.with_name(
                    path.name.removesuffix(NOTE_SUFFIX) + STAGE_SUFFIX).exists()
            else:
                stray = path.name.endswith(_NOTE_SCRATCH) and NOTE_SUFFIX in path.name
            if stray:
                with contextlib.suppress(OSError):
                    path.unlink()

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    @property
    def free_bytes(self) -> int:
        return max(0, self.max_bytes - self.used_bytes)

    def create(self) -> StagedFile:
        """A new empty staged file (0600)."""
        path = self.root / f"{uuid.uuid4().hex}{STAGE_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        with self._lock:
            self._sizes[str(path)] = 0
        return StagedFile(self, path, fd)

    def open(self, path: Path) -> StagedFile:
        """An existing staged file of this area (one a journal entry names)."""
        path = Path(path)
        if path.parent != self.root or not path.name.endswith(STAGE_SUFFIX):
            raise ValueError(f"{path} is not a staged file of {self.root}")
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        size = os.fstat(fd).st_size
        with self._lock:
            self._sizes[str(path)] = size
        return StagedFile(self, path, fd)

    def remove(self, path: Path) -> None:
        """Delete a staged file (its upload is done, or it was discarded)."""
        with self._lock:
            self._sizes.pop(str(path), None)
        for gone in (path, _note_path(Path(path))):
            try:
                os.unlink(gone)
            except FileNotFoundError:
                pass

    def _resize(self, path: Path, old: int, new: int) -> None:
        """Account for a file growing from ``old`` to ``new`` bytes; StagingFullError past
        the bound (nothing is counted then)."""
        with self._lock:
            used = sum(self._sizes.values())
            if new > old and used + (new - old) > self.max_bytes:
                raise StagingFullError(
                    f"staging area {self.root} is full: {used} of {self.max_bytes} bytes used, "
                    f"{new - old} more asked"
                )
            self._sizes[str(path)] = new

    def _set_size(self, path: Path, size: int) -> None:
        with self._lock:
            self._sizes[str(path)] = size


class StagedFile:
    """One file being written: positional reads and writes, never held whole in memory.

    Thread-safe: writes and truncations are serialised (the size and the area's count move
    together); reads use pread and run alongside them.
    """

    def __init__(self, area: StagingArea, path: Path, fd: int) -> None:
        self.area = area
        self.path = path
        self._fd = fd
        self._lock = threading.RLock()
        self._size = os.fstat(fd).st_size
        self._closed = False

    def __repr__(self) -> str:
        return f"StagedFile({self.path.name}, {self._size} bytes)"

    def __enter__(self) -> StagedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self._size

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (past the end leaves a hole); the bytes written."""
        if offset < 0:
            raise ValueError("negative offset")
        if not data:
            return 0
        with self._lock:
            self._check_open()
            old = self._size
            new = max(old, offset + len(data))
            self.area._resize(self.path, old, new)
            try:
                written = _pwrite_all(self._fd, data, offset)
            except OSError as exc:
                self._settle(old)
                if exc.errno in _FULL_ERRNOS:
                    raise StagingFullError(f"disk full under {self.area.root}: {exc}") from exc
                raise
            self._size = new
            return written

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (fewer at the end; holes read as zeros)."""
        if offset < 0 or size < 0:
            raise ValueError("negative offset or size")
        self._check_open()
        return os.pread(self._fd, size, offset)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise ValueError("negative size")
        with self._lock:
            self._check_open()
            old = self._size
            self.area._resize(self.path, old, size)
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                self._settle(old)
                raise
            self._size = size

    def fsync(self) -> None:
        with self._lock:
            self._check_open()
            os.fsync(self._fd)

    def note(self, fields: dict[str, object]) -> None:
        """Keep ``fields`` beside the file (replacing its note), atomically: a crash leaves
        the old note or the new one. Never a secret (checked)."""
        text = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        check_secret_free(text, "a staged file's note")
        final = _note_path(self.path)
        scratch = final.with_name(f"{final.name}.{uuid.uuid4().hex[:8]}{_NOTE_SCRATCH}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
        try:
            _pwrite_all(fd, text.encode("utf-8"), 0)
        finally:
            os.close(fd)
        os.replace(scratch, final)

    def sha256(self) -> str:
        """The hex SHA-256 of the whole file, read in 1 MiB pieces."""
        digest = hashlib.sha256()
        offset = 0
        while True:
            chunk = self.read(offset, _HASH_CHUNK_BYTES)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            offset += len(chunk)

    def reader(self, offset: int = 0, length: int | None = None) -> PartReader:
        """A file-like window on ``length`` bytes from ``offset`` (to the end by default),
        for streaming one part of an upload."""
        end = self._size if length is None else min(self._size, offset + length)
        return PartReader(self, offset, max(0, end - offset))

    def close(self) -> None:
        """Close the descriptor; the file stays on disk, still counted."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def discard(self) -> None:
        """Close and delete the file, giving its bytes back to the area."""
        self.close()
        self.area.remove(self.path)

    def _settle(self, old: int) -> None:
        # A failed write or truncate: count the size the file really has now.
        try:
            actual = os.fstat(self._fd).st_size
        except OSError:
            actual = old
        self.area._set_size(self.path, actual)
        self._size = actual

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path.name} is closed")


class PartReader(io.RawIOBase):
    """A read-only, seekable window on a staged file, as httpx's multipart encoder wants:
    it reads 64 KiB at a time and measures the length by seeking (there is no fileno, which
    would make it take the whole file's size)."""

    def __init__(self, staged: StagedFile, offset: int, length: int) -> None:
        super().__init__()
        self._staged = staged
        self._start = offset
        self._length = length
        self._pos = 0
        self.max_read_bytes = 0  # the largest single read: what this reader ever held

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self._length + offset
        else:
            raise ValueError(f"bad whence {whence}")
        self._pos = max(0, target)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._length - self._pos
        if remaining <= 0:
            return b""
        want = remaining if size is None or size < 0 else min(size, remaining)
        data = self._staged.read(self._start + self._pos, want)
        self._pos += len(data)
        self.max_read_bytes = max(self.max_read_bytes, len(data))
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __len__(self) -> int:
        return self._length


def _note_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(STAGE_SUFFIX) + NOTE_SUFFIX)


def _pwrite_all(fd: int, data: bytes, offset: int) -> int:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done
