"""What the mount shows: node kinds, immutable nodes, and the inode table that numbers them."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .models import FileRef

if TYPE_CHECKING:
    from .pagetext import GeneratedText
    from .remote import RemoteFile

__all__ = ["Kind", "Role", "Node", "InodeTable", "ROOT_KEY"]

ROOT_KEY = "root"


class Kind(enum.Enum):
    ROOT = "root"
    PAGE = "page"
    DATABASE = "database"
    DATA_SOURCE = "data_source"
    FILES_PROPERTY = "files_property"
    FILE = "file"
    GENERATED = "generated"  # index.md / index.csv, rendered from the folder's listing

    @property
    def is_dir(self) -> bool:
        return self not in (Kind.FILE, Kind.GENERATED)


class Role(enum.Enum):
    """Where a file comes from within its folder's owner (what its key used to spell)."""

    NONE = ""
    BLOCK = "block"  # an image / video / audio / file / pdf block
    COVER = "cover"
    ICON = "icon"
    PROPERTY = "property"  # an entry of a row's files property


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    """One name in the mount, as one listing saw it. Never mutated: a listing that sees a
    change makes a new node (same key and inode while the identity holds), so readers on
    other threads never see half an update. A folder's contents live in the listing cache
    under its key, not on the node."""

    kind: Kind
    key: str  # stable identity within the mount: drives the inode number and the listing
    name: str
    inode: int
    object_id: str | None = None
    ctime_s: float = 0.0
    mtime_s: float = 0.0
    notion_url: str | None = None
    role: Role = Role.NONE
    remote: RemoteFile | None = None  # files: where their bytes come from
    text: GeneratedText | None = None  # generated files: their rendered bytes
    # What a folder needs to list itself: a row's files property (and the property id), or
    # the database of a data source.
    files: tuple[FileRef, ...] = ()
    owner_id: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind.is_dir


class InodeTable:
    """Inode numbers by identity key: the same key gets the same number for the mount's life."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inodes: dict[str, int] = {ROOT_KEY: 1}

    def inode(self, key: str) -> int:
        with self._lock:
            ino = self._inodes.get(key)
            if ino is None:
                ino = self._inodes[key] = len(self._inodes) + 1
            return ino
