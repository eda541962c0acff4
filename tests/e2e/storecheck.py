"""Scans a metadata cache's files for the Notion token and signed-URL query markers."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What a signed URL's query carries: S3's presigned fields and Notion's own file URLs'
# `signature=`. Matched without regard to case.
SIGNED_QUERY_MARKERS = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "signature=",
)
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Hit:
    path: Path
    what: str  # "the token" or the marker found
    where: str  # "byte 1234" or "row of table listings"

    def __str__(self) -> str:  # never quotes the secret itself
        return f"{self.what} in {self.path.name} ({self.where})"


def scan_cache(
    root: Path, token: str, markers: Sequence[str] = SIGNED_QUERY_MARKERS
) -> list[Hit]:
    """Every place under ``root`` where ``token`` or a marker appears; [] when clean.

    Two looks at each file: its raw bytes (every file: databases, their -wal and -shm,
    set-aside copies; freed pages keep deleted rows), and, for each SQLite database, its
    rows as SQLite reads them with its -wal applied (a string longer than a page is split
    across overflow pages, which hides it from a byte search).

    Run it in a process that does not have the databases open (after the mount stopped,
    or with it in another process): closing a descriptor of a file drops the POSIX locks
    its process holds on it, SQLite's included.
    """
    if not token:
        raise ValueError("scan_cache needs the token to look for")
    needles = [("the token", token.encode(), False)]
    needles += [(marker, marker.lower().encode(), True) for marker in markers]
    hits: list[Hit] = []
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            path = Path(dirpath, name)
            data = path.read_bytes()
            lowered = data.lower()
            for what, needle, fold in needles:
                at = (lowered if fold else data).find(needle)
                if at >= 0:
                    hits.append(Hit(path, what, f"byte {at}"))
            if data.startswith(_SQLITE_MAGIC):
                hits += _scan_rows(path, needles)
    return hits


def _scan_rows(path: Path, needles: list[tuple[str, bytes, bool]]) -> list[Hit]:
    """The rows of ``path`` (with its -wal), read from a copy so the original is untouched."""
    hits: list[Hit] = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp, "copy.sqlite3")
        shutil.copyfile(path, copy)
        if Path(f"{path}-wal").exists():
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        conn = sqlite3.connect(copy)
        try:
            tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )]
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for row in conn.execute(f"SELECT * FROM {quoted}"):
                    text = "\x00".join(str(value) for value in row).encode()
                    for what, needle, fold in needles:
                        if needle in (text.lower() if fold else text):
                            hits.append(Hit(path, what, f"row of table {table}"))
        except sqlite3.DatabaseError:
            pass  # a damaged (set-aside) copy: its bytes were scanned above
        finally:
            conn.close()
    return hits
