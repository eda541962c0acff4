"""The local layer of a writable mount: its files not yet listed by Notion, merged over listings.

A file being written (or an editor's scratch file, never uploaded) is a ``LocalFile`` here
from its creation until a listing fetched after its upload shows it; until then lookups and
listings show it under its name, over whatever Notion lists there.

Lock order: ``LocalLayer._lock`` is a leaf, never held across a network call or a wait;
a file's own ``LocalFile.lock`` is never held together with it.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

from .filetypes import SUPPORTED_TYPES
from .journal import Target
from .nodes import Kind, Node
from .propentries import shown_entries
from .staging import StagedFile, StagingArea
from .workspace import NotionWorkspace

__all__ = [
    "FUSE_HIDDEN",
    "FolderRef",
    "LocalFile",
    "LocalLayer",
    "is_scratch_name",
    "remember",
    "split_path",
]

logger = logging.getLogger(__name__)

# What libfuse renames a file removed while open to, until its last handle closes.
FUSE_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-fA-F]+")
# Editors' and copiers' temporary files: kept in the local layer, never uploaded. GLib's
# atomic save, vim's swap / write probe / backup, LibreOffice's and Office's locks, and
# the temporaries of rsync (".NAME.XXXXXX") and Python's tempfile ("tmpXXXXXXXX", "*.tmp")
# whose extension Notion would refuse anyway.
_SCRATCH_PATTERNS = (
    re.compile(r"\.goutputstream-.*", re.S),
    re.compile(r"\..*\.sw[a-z]", re.S),
    re.compile(r"4913"),
    re.compile(r".*~", re.S),
    re.compile(r"\.~lock\..*#", re.S),
    re.compile(r"~\$.*", re.S),
    re.compile(r".*\.tmp", re.S | re.I),
    re.compile(r"tmp[a-z0-9_]{8}"),
    FUSE_HIDDEN,
)
_RSYNC_TEMP = re.compile(r"\..+\.([A-Za-z0-9]{6})", re.S)


def is_scratch_name(name: str) -> bool:
    """Whether ``name`` is an editor's or copier's temporary file (local only)."""
    if any(p.fullmatch(name) for p in _SCRATCH_PATTERNS):
        return True
    rsync = _RSYNC_TEMP.fullmatch(name)
    return rsync is not None and rsync.group(1).lower() not in SUPPORTED_TYPES


def split_path(path: str) -> tuple[str, str]:
    """``(parent, name)`` of a mount path; the root's parent is itself."""
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or "/", name


@dataclass(eq=False)
class LocalFile:
    """One file of the local layer."""

    folder_key: str
    folder_id: str | None
    name: str
    staged: StagedFile
    node: Node
    target: Target | None  # None: a new block (or, for a scratch file, nowhere)
    scratch: bool
    opens: int = 0
    dirty: bool = True
    version: int = 0
    entry_id: str | None = None
    # Entries of earlier versions still running that ``entry_id`` follows (oldest first),
    # and whether ``entry_id`` is such a follower (later versions then follow it too).
    earlier: list[str] = field(default_factory=list)
    following: bool = False
    handed_over: bool = False  # the queue owns ``staged``'s path: copy before writing again
    result_id: str | None = None
    done_at: float | None = None  # monotonic time the upload was confirmed
    removed: bool = False  # unlinked while open: its handles write to nowhere in Notion
    lock: threading.RLock = field(default_factory=threading.RLock)


@dataclass(frozen=True)
class FolderRef:
    """A folder a local file is in, when no Node of it is at hand."""

    key: str
    object_id: str | None


class LocalLayer:
    """The workspace with the local files over it: lookups and listings merged by name, and
    the registry of local files (by folder and name, and by node key)."""

    def __init__(self, workspace: NotionWorkspace, staging: StagingArea) -> None:
        self._ws = workspace
        self._staging = staging
        self._lock = threading.Lock()
        self._locals: dict[str, dict[str, LocalFile]] = {}  # folder key -> name -> file
        self._by_key: dict[str, LocalFile] = {}  # node key -> file
        self._ids = itertools.count(1)

    # ---- reads: the workspace with the local layer over it --------------------------------

    def lookup(self, path: str) -> Node | None:
        parent, name = split_path(path)
        if not name:
            return self._ws.lookup(path)
        folder = self._ws.lookup(parent)
        if folder is None or not folder.is_dir:
            return None
        local = self.local(folder.key, name)
        if local is not None:
            return local.node
        return self._ws.lookup(path)

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        parent, name = split_path(path)
        if name:
            known, folder = self._ws.lookup_memory(parent)
            if known and folder is not None:
                local = self.local(folder.key, name)
                if local is not None:
                    return True, local.node
        return self._ws.lookup_memory(path)

    def lookup_held(self, path: str) -> Node | None:
        parent, name = split_path(path)
        if name:
            folder = self._ws.lookup_held(parent)
            if folder is not None:
                local = self.local(folder.key, name)
                if local is not None:
                    return local.node
        return self._ws.lookup_held(path)

    def listdir(self, folder: Node) -> list[Node]:
        return self._merge(folder, self._ws.listdir(folder))

    def listdir_held(self, folder: Node) -> list[Node] | None:
        held = self._ws.listdir_held(folder)
        return None if held is None else self._merge(folder, held)

    def _merge(self, folder: Node, children: list[Node]) -> list[Node]:
        self._settle(folder)
        with self._lock:
            locals_ = dict(self._locals.get(folder.key, {}))
        if not locals_:
            return children
        merged = {child.name: child for child in children}
        for name, local in locals_.items():
            merged[name] = local.node
        return list(merged.values())

    def _settle(self, folder: Node) -> None:
        """Forget local files a listing fetched after their upload shows: Notion has them."""
        listed_at = self._ws.listed_at(folder)
        if listed_at is None:
            return
        with self._lock:
            candidates = [
                local for local in self._locals.get(folder.key, {}).values()
                if local.done_at is not None and local.done_at < listed_at
                and local.opens == 0 and not local.dirty
            ]  # fmt: skip
        if not candidates:
            return
        held = self._ws.listdir_held(folder) or []
        shown = {n.object_id for n in held if n.kind is Kind.FILE} | shown_entries(held)
        for local in candidates:
            if local.result_id in shown:
                self.forget(local)

    def local(self, folder_key: str, name: str) -> LocalFile | None:
        with self._lock:
            return self._locals.get(folder_key, {}).get(name)

    def by_node(self, node: Node) -> LocalFile | None:
        if not node.key.startswith("local:"):
            return None
        with self._lock:
            return self._by_key.get(node.key)

    # ---- the registry ------------------------------------------------------------------------

    def files(self) -> list[LocalFile]:
        """Every local file, at this moment."""
        with self._lock:
            return list(self._by_key.values())

    def of_entry(self, entry_id: str) -> tuple[LocalFile | None, LocalFile | None]:
        """(the file whose latest version is the journal entry ``entry_id``, or else the
        file a later version of which follows it)."""
        with self._lock:
            local = next((f for f in self._by_key.values() if f.entry_id == entry_id), None)
            earlier = None
            if local is None:
                earlier = next((f for f in self._by_key.values() if entry_id in f.earlier),
                               None)
        return local, earlier

    def opened(self, local: LocalFile) -> None:
        with self._lock:
            local.opens += 1

    def closed(self, local: LocalFile) -> bool:
        """One handle of ``local`` closed: whether it was the last."""
        with self._lock:
            local.opens = max(0, local.opens - 1)
            return local.opens == 0

    def add(self, folder: Node | FolderRef, name: str, *, scratch: bool,
            target: Target | None) -> LocalFile:
        staged = self._staging.create()
        key = f"local:{folder.key}/{next(self._ids)}:{uuid.uuid4().hex[:8]}"
        now = time.time()
        node = Node(Kind.FILE, key, name, self._ws.inode(key), ctime_s=now, mtime_s=now)
        local = LocalFile(folder.key, folder.object_id, name, staged, node, target, scratch)
        remember(local)
        with self._lock:
            old = self._locals.setdefault(folder.key, {}).get(name)
            self._locals[folder.key][name] = local
            self._by_key[key] = local
        if old is not None:
            self.drop(old)
        return local

    def move(self, local: LocalFile, name: str, target: Target | None) -> None:
        node = Node(Kind.FILE, local.node.key, name, local.node.inode,
                    ctime_s=local.node.ctime_s, mtime_s=time.time())
        with self._lock:
            folder = self._locals.setdefault(local.folder_key, {})
            if folder.get(local.name) is local:
                del folder[local.name]
            old = folder.get(name)
            folder[name] = local
            local.name = name
            local.node = node
            if target is not None:
                local.target = target
        remember(local)
        if old is not None and old is not local:
            self.drop(old)

    def forget(self, local: LocalFile) -> None:
        with self._lock:
            folder = self._locals.get(local.folder_key, {})
            if folder.get(local.name) is local:
                del folder[local.name]
            self._by_key.pop(local.node.key, None)
        self.drop(local)

    def drop(self, local: LocalFile) -> None:
        """Close a local file; its staged copy goes unless the queue owns it. A file still
        open is closed by its last handle."""
        with self._lock:
            self._by_key.pop(local.node.key, None)
            local.removed = True
            if local.opens > 0:
                return
        close_staged(local)


def remember(local: LocalFile) -> None:
    """Note beside ``local``'s staged copy where it goes (its folder and name), for the next
    mount should this one die before the copy is journalled (recovery.py). Best effort: a
    note that cannot be written costs that safety net, never the write."""
    try:
        local.staged.note({"folder_key": local.folder_key, "folder_id": local.folder_id,
                           "name": local.name, "scratch": local.scratch})
    except (OSError, ValueError) as error:
        logger.warning("%r: no recovery note beside its staged copy: %s", local.name, error)


def close_staged(local: LocalFile) -> None:
    if local.handed_over:
        local.staged.close()
    else:
        local.staged.discard()
