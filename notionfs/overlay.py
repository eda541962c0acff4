"""The write overlay: a writable mount source over a workspace, with the local layer of files
not yet uploaded (and editors' scratch files, never uploaded).

What a program writes lands in a staged file (staging.py) and goes to Notion through the
upload queue (uploadqueue.py) when the file is flushed or fsynced, so ``close()`` sees a
failure; a failed upload stays staged and journalled and is retried in the background.
Until a listing fetched after the upload shows the new block, the folder shows the local
file (its staged bytes and size) under its name: read-after-write holds within the mount.
The overlay hides nothing Notion lists, except that a local file being written over a
Notion file shows in its place.

Lock order: ``WriteOverlay._lock`` is a leaf, never held across a network call or a wait.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import (
    ConflictError,
    CrossFolderError,
    FolderNotEmptyError,
    GeneratedFileError,
    NoSuchPathError,
    NotionFSError,
    NotWritableError,
    UploadFailedError,
)
from .filetypes import SUPPORTED_TYPES, check_file
from .journal import Entry, Target
from .nodes import Kind, Node, Role
from .propentries import (
    entry_of,
    folder_key_of,
    landed_target,
    property_folder,
    shown_entries,
)
from .staging import StagedFile
from .uploadqueue import UploadQueue, new_block_target
from .workspace import FsStats, NotionWorkspace, Reader, WritableSource

__all__ = [
    "WritableSource",  # the contract, defined in workspace.py
    "WriteHandle",
    "WriteOverlay",
    "is_scratch_name",
]

logger = logging.getLogger(__name__)

# What libfuse renames a file removed while open to, until its last handle closes.
_FUSE_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-fA-F]+")
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
    _FUSE_HIDDEN,
)
_RSYNC_TEMP = re.compile(r"\..+\.([A-Za-z0-9]{6})", re.S)


def is_scratch_name(name: str) -> bool:
    """Whether ``name`` is an editor's or copier's temporary file (local only)."""
    if any(p.fullmatch(name) for p in _SCRATCH_PATTERNS):
        return True
    rsync = _RSYNC_TEMP.fullmatch(name)
    return rsync is not None and rsync.group(1).lower() not in SUPPORTED_TYPES


@dataclass(eq=False)
class _Local:
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


class WriteHandle:
    """An open file of the local layer: a Reader with writes. Thread-safe per file."""

    def __init__(self, overlay: WriteOverlay, local: _Local) -> None:
        self._overlay = overlay
        self.local = local
        self._closed = False

    def read(self, offset: int, size: int) -> bytes:
        return self.local.staged.read(offset, size)

    def read_cached(self, offset: int, size: int) -> bytes:
        return self.local.staged.read(offset, size)

    def write(self, offset: int, data: bytes) -> int:
        return self._overlay._write(self.local, offset, data)

    def truncate(self, length: int) -> None:
        self._overlay._truncate(self.local, length)

    def flush(self) -> None:
        self._overlay._flush(self.local)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._overlay._release(self.local)


class WriteOverlay:
    """A NotionWorkspace as a WritableSource: reads pass through, local files overlaid."""

    def __init__(
        self,
        workspace: NotionWorkspace,
        queue: UploadQueue,
        *,
        wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ws = workspace
        self._queue = queue
        self._api = queue.engine.api
        self._wait_s = wait_s
        self._clock = clock
        self.root = workspace.root
        self._lock = threading.Lock()
        self._locals: dict[str, dict[str, _Local]] = {}  # folder key -> name -> file
        self._by_key: dict[str, _Local] = {}  # node key -> file
        self._ids = itertools.count(1)
        queue.on_done = self._landed

    def _landed(self, entry: Entry) -> None:
        """An upload landed (this mount's, or one an earlier mount left): the folder it
        changed is listed anew on its next access."""
        target = entry.target
        key = None
        if target.action == "append" and target.parent_id:
            key = f"page:{target.parent_id}"
        elif target.is_property:
            key = folder_key_of(target)
        elif target.block_id:
            key = self._ws.folder_of_block(target.block_id)
        if key is not None:
            self._ws.invalidate_key(key)
        with self._lock:
            local = next((f for f in self._by_key.values() if f.entry_id == entry.id), None)
            earlier = None
            if local is None:
                earlier = next((f for f in self._by_key.values() if entry.id in f.earlier),
                               None)
        if earlier is not None:
            # An earlier version landed; the later ones follow it into the same block.
            with earlier.lock:
                if entry.id in earlier.earlier:
                    earlier.earlier.remove(entry.id)
                if entry.result_id:
                    earlier.result_id = entry.result_id
            return
        if local is None:
            return
        # Landed after its program gave up waiting. Not under local.lock: a flush may hold
        # it while it waits for this very entry.
        if entry.result_id:
            local.result_id = entry.result_id
            local.target = landed_target(entry)
        local.following = False
        local.earlier.clear()
        local.done_at = self._clock()
        if local.dirty and local.opens == 0 and not local.scratch:
            # Written again while its first upload was pending: now a replace of its block.
            threading.Thread(target=self._hand_over, args=(local,), daemon=True,
                             name="notionfs-rewrite").start()

    def _unmount_target(self, local: _Local) -> tuple[Target, str]:
        """Where a file changed but not uploaded goes at unmount. Written again while its
        first upload (a new block) is still pending: once that lands, a replace of its
        block; if it does not land in time, beside it under a dated name, journalled like
        any save. Never dropped: the later bytes are what the program wrote last."""
        if local.target is None and local.entry_id is not None:
            try:
                self._settle_previous(local)
            except NotionFSError as exc:
                name = _dated(local.name, "later version")
                logger.warning("%r: its first upload is still pending (%s); the later version "
                               "is kept beside it as %r", local.name, exc, name)
                if local.folder_id is None:
                    raise
                return self._new_target(local, name), name
        return local.target or self._new_target(local), local.name

    def _hand_over(self, local: _Local) -> None:
        try:
            with local.lock:
                if not local.dirty or local.target is None:
                    return
                entry = self._queue.submit(local.staged, local.target, name=local.name)
                local.entry_id, local.handed_over, local.dirty = entry.id, True, False
        except NotionFSError as error:
            logger.warning("%r: not uploaded, kept locally: %s", local.name, error)

    # ---- reads: the workspace with the local layer over it --------------------------------

    def lookup(self, path: str) -> Node | None:
        parent, name = _split(path)
        if not name:
            return self._ws.lookup(path)
        folder = self._ws.lookup(parent)
        if folder is None or not folder.is_dir:
            return None
        local = self._local(folder.key, name)
        if local is not None:
            return local.node
        return self._ws.lookup(path)

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        parent, name = _split(path)
        if name:
            known, folder = self._ws.lookup_memory(parent)
            if known and folder is not None:
                local = self._local(folder.key, name)
                if local is not None:
                    return True, local.node
        return self._ws.lookup_memory(path)

    def lookup_held(self, path: str) -> Node | None:
        parent, name = _split(path)
        if name:
            folder = self._ws.lookup_held(parent)
            if folder is not None:
                local = self._local(folder.key, name)
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
                self._forget(local)

    def _local(self, folder_key: str, name: str) -> _Local | None:
        with self._lock:
            return self._locals.get(folder_key, {}).get(name)

    def is_fresh(self, folder: Node) -> bool:
        return self._ws.is_fresh(folder)

    def size(self, node: Node) -> int:
        local = self._by_node(node)
        return local.staged.size if local is not None else self._ws.size(node)

    def known_size(self, node: Node) -> int | None:
        local = self._by_node(node)
        return local.staged.size if local is not None else self._ws.known_size(node)

    def identity(self, node: Node) -> str:
        local = self._by_node(node)
        if local is not None:
            return f"{node.key}#{local.version}"
        return self._ws.identity(node)

    def open(self, node: Node) -> Reader:
        local = self._by_node(node)
        if local is None:
            return self._ws.open(node)
        with self._lock:
            local.opens += 1
        return WriteHandle(self, local)

    def xattrs(self, node: Node) -> dict[str, str]:
        local = self._by_node(node)
        if local is None:
            values = self._ws.xattrs(node)
        else:
            values = {"type": "file"}
            if local.result_id and property_folder(local.folder_key) is None:
                values["id"] = local.result_id
            values["state"] = self._state(local)
        return values

    def _state(self, local: _Local) -> str:
        if local.scratch:
            return "local (a temporary file, never uploaded)"
        if local.entry_id is None:
            return "staged (not flushed yet)"
        status = self._queue.status(local.entry_id)
        return "done" if status is None else str(status)

    def statfs(self) -> FsStats:
        return self._ws.statfs()

    def close(self) -> None:
        """At unmount: scratch files go; a file written but never flushed (still open) is
        journalled, to be uploaded by the next mount; then the workspace stops."""
        with self._lock:
            locals_ = list(self._by_key.values())
        for local in locals_:
            if local.dirty and not local.scratch:
                try:
                    with local.lock:
                        target, name = self._unmount_target(local)
                        self._queue.submit(local.staged, target, name=name)
                        local.handed_over = True
                except NotionFSError as error:
                    logger.warning("%r: not uploaded, its staged copy kept: %s", local.name,
                                   error)
                    local.handed_over = True  # kept on disk, never deleted unasked
            self._drop(local)
        self._ws.close()

    def _by_node(self, node: Node) -> _Local | None:
        if not node.key.startswith("local:"):
            return None
        with self._lock:
            return self._by_key.get(node.key)

    # ---- writes ----------------------------------------------------------------------------

    def create(self, path: str) -> WriteHandle:
        parent, name = _split(path)
        folder = self._ws.lookup(parent)
        if folder is None or not folder.is_dir:
            raise NoSuchPathError(f"no folder {parent!r}")
        scratch = is_scratch_name(name)
        if not scratch:
            self._check_folder(folder, name)
            check_file(name)  # UnsupportedFileError before any byte is written
        existing = self.lookup(path)
        if existing is not None:
            return self.open_write(existing, truncate=True)
        local = self._add(folder, name, scratch=scratch, target=None)
        return self._handle(local)

    def open_write(self, node: Node, *, truncate: bool) -> WriteHandle:
        local = self._by_node(node)
        if local is None:
            local = self._adopt(node, copy=not truncate)
        elif truncate:
            self._truncate(local, 0)
        return self._handle(local)

    def truncate_path(self, node: Node, length: int) -> None:
        local = self._by_node(node)
        if local is not None and local.opens > 0:
            self._truncate(local, length)  # uploaded by the open handle's flush
            return
        handle = self.open_write(node, truncate=length == 0)
        try:
            if length:
                handle.truncate(length)
            handle.flush()
        finally:
            handle.close()

    def _handle(self, local: _Local) -> WriteHandle:
        with self._lock:
            local.opens += 1
        return WriteHandle(self, local)

    def _check_folder(self, folder: Node, name: str) -> None:
        if folder.kind is Kind.FILES_PROPERTY and property_folder(folder.key) is not None:
            return  # a row's files property: the file becomes a new entry
        if folder.kind is not Kind.PAGE or not folder.object_id:
            raise NotWritableError(
                f"{name!r}: new files go into page folders and files properties only "
                f"(this is a {folder.kind.value} folder)"
            )

    def _adopt(self, node: Node, *, copy: bool) -> _Local:
        """A Notion file opened for writing: a local copy that replaces it in place."""
        if node.kind is Kind.GENERATED:
            raise GeneratedFileError(f"{node.name!r} is generated from the page: read only")
        ref = entry_of(node)
        if ref is not None:
            # A property entry: its file replaced in place. If someone changed or removed it
            # meanwhile, its key is gone from the property and the upload lands beside it.
            folder = _FolderRef(ref.folder.key, ref.folder.page_id)
            target = ref.target("property_replace")
        else:
            if node.kind is not Kind.FILE or node.role is not Role.BLOCK or not node.object_id:
                raise NotWritableError(f"{node.name!r} is not a file block: it cannot be "
                                       "written")
            folder_key = node.key.rsplit("/", 1)[0]
            page_id = folder_key[len("page:"):] if folder_key.startswith("page:") else None
            folder = _FolderRef(folder_key, page_id)
            # The block's edit time now: an upload over a version someone saved meanwhile is
            # refused (ConflictError) and lands beside it instead.
            block = self._api.get_block(node.object_id)
            edited = block.get("last_edited_time")
            target = Target.replace(node.object_id,
                                    expect_edited=edited if isinstance(edited, str) else None)
        local = self._add(folder, node.name, scratch=False, target=target)
        if copy:
            try:
                reader = self._ws.open(node)
                try:
                    offset, size = 0, self._ws.size(node)
                    while offset < size:
                        chunk = reader.read(offset, min(1 << 20, size - offset))
                        if not chunk:
                            break
                        local.staged.write(offset, chunk)
                        offset += len(chunk)
                finally:
                    reader.close()
            except BaseException:
                self._forget(local)
                raise
        local.dirty = not copy  # an unchanged copy is not uploaded again
        return local

    def _add(self, folder: Node | _FolderRef, name: str, *, scratch: bool,
             target: Target | None) -> _Local:
        staged = self._queue.staging.create()
        key = f"local:{folder.key}/{next(self._ids)}:{uuid.uuid4().hex[:8]}"
        now = time.time()
        node = Node(Kind.FILE, key, name, self._ws.inode(key), ctime_s=now, mtime_s=now)
        local = _Local(folder.key, folder.object_id, name, staged, node, target, scratch)
        with self._lock:
            old = self._locals.setdefault(folder.key, {}).get(name)
            self._locals[folder.key][name] = local
            self._by_key[key] = local
        if old is not None:
            self._drop(old)
        return local

    def _write(self, local: _Local, offset: int, data: bytes) -> int:
        with local.lock:
            end = offset + len(data)
            if not local.scratch and end > local.staged.size:
                self._queue.check_size(end, what=repr(local.name))
            self._own(local)
            written = local.staged.write(offset, data)
            local.dirty = True
            local.version += 1
            return written

    def _truncate(self, local: _Local, length: int) -> None:
        with local.lock:
            if not local.scratch and length > local.staged.size:
                self._queue.check_size(length, what=repr(local.name))
            self._own(local)
            local.staged.truncate(length)
            local.dirty = True
            local.version += 1

    def _own(self, local: _Local) -> None:
        """Before changing bytes the queue was handed: a fresh staged copy of our own."""
        if not local.handed_over:
            return
        fresh = self._queue.staging.create()
        try:
            offset = 0
            while chunk := local.staged.read(offset, 1 << 20):
                fresh.write(offset, chunk)
                offset += len(chunk)
        except BaseException:
            fresh.discard()
            raise
        local.staged.close()
        local.staged = fresh
        local.handed_over = False

    def _flush(self, local: _Local) -> None:
        """Upload what changed, waiting up to the deadline: a failure reaches close()."""
        with local.lock:
            if local.scratch or not local.dirty or local.removed:
                return
            if local.staged.size == 0 and local.target is None and local.entry_id is None:
                # A new file still empty: a close of one of several descriptors (dd opens
                # its output, then moves it to stdout), or `touch`. The last close hands
                # it over (see _release); bytes written before then go up once.
                return
            entry = self._submit_version(local)
            local.entry_id = entry.id
            local.handed_over = True
            local.dirty = False
            local.done_at = None
        self._await(local, entry)

    def _submit_version(self, local: _Local) -> Entry:
        """Journal what ``local`` holds now (under its lock): over the block it has, or a
        new one; written again while its first upload (a new block) still runs, as that
        upload's follower, journalled at once (a replace of the block it makes)."""
        first = self._new_target(local) if local.target is None else None
        if first is not None and first.action != "append" and local.entry_id is not None:
            self._settle_previous(local)  # a property entry: wait for the first to land
        elif local.entry_id is not None and (local.target is None or local.following):
            first = first or self._new_target(local)
            assert first.parent_id is not None and first.block_kind is not None
            follow = Target.follow(local.entry_id, first.parent_id, first.block_kind)
            try:
                entry = self._queue.submit(local.staged, follow, name=local.name)
            except KeyError:  # the first landed and was tidied away: its block is known
                self._settle_previous(local)
            else:
                if entry.target.action == "follow":  # else it already settled
                    local.earlier.append(local.entry_id)
                    local.following = True
                else:
                    local.following = False
                return entry
        return self._queue.submit(local.staged, local.target or self._new_target(local),
                                  name=local.name)

    def _settle_previous(self, local: _Local) -> None:
        """A new file flushed again before its first upload finished: wait for that one,
        so the second becomes a replace of its block, never a second block."""
        if local.target is not None or local.entry_id is None:
            return
        done = self._queue.wait(local.entry_id, timeout_s=self._wait_s)
        self._confirmed(local, done)

    def _new_target(self, local: _Local, name: str | None = None) -> Target:
        """Where a new file of ``local``'s folder called ``name`` (its own) goes."""
        prop = property_folder(local.folder_key)
        if prop is not None:
            return prop.append()
        if local.folder_id is None:
            raise NotWritableError(f"{local.name!r}: its folder takes no new files")
        return new_block_target(local.folder_id, name or local.name)

    def _await(self, local: _Local, entry: Entry) -> None:
        try:
            done = self._queue.wait(entry.id, timeout_s=self._wait_s)
        except ConflictError as conflict:
            self._beside(local, entry, conflict)
            return
        except UploadFailedError:
            with local.lock:
                local.dirty = True  # refused for good: a later flush may try again
            raise
        with local.lock:
            self._confirmed(local, done)

    def _beside(self, local: _Local, failed: Entry, conflict: ConflictError) -> None:
        """The file changed in Notion since it was opened: this version goes beside it, as
        ``NAME (conflict YYYY-MM-DD HHMM).ext``, never over the other person's."""
        name = _dated(local.name, "conflict")
        logger.warning("%s; saved beside it as %r", conflict, name)
        with local.lock:
            if local.folder_id is None:
                raise conflict
            # The refused entry's staged copy (kept) goes up under the new name.
            entry = self._queue.submit(local.staged, self._new_target(local, name), name=name)
            self._queue.journal.delete(failed.id)
            local.entry_id = entry.id
            local.target = None
            local.dirty = False
        self._move_local(local, name, None)
        done = self._queue.wait(entry.id, timeout_s=self._wait_s)
        with local.lock:
            self._confirmed(local, done)

    def _confirmed(self, local: _Local, done: Entry) -> None:
        if done.result_id:
            local.result_id = done.result_id
            local.target = landed_target(done)
        if done.id == local.entry_id:
            local.following = False
            local.earlier.clear()
        local.done_at = self._clock()
        self._ws.invalidate_key(local.folder_key)

    def _release(self, local: _Local) -> None:
        with self._lock:
            local.opens = max(0, local.opens - 1)
            last = local.opens == 0
        if local.removed:
            if last:
                self._close_staged(local)
            return
        if last and local.dirty and not local.scratch:
            # Closed without a flush (a flush that failed before submitting): hand it
            # over now, in the background; the journal keeps it.
            try:
                with local.lock:
                    if not local.dirty:
                        return
                    entry = self._submit_version(local)
                    local.entry_id, local.handed_over, local.dirty = entry.id, True, False
            except NotionFSError as error:
                logger.warning("%r: not uploaded, kept locally: %s", local.name, error)

    def unlink(self, path: str) -> None:
        node = self.lookup(path)
        if node is None:
            raise NoSuchPathError(f"no file {path!r}")
        local = self._by_node(node)
        if local is not None:
            self._unlink_local(local)
            return
        self._trash(node)

    def _remove_open(self, node: Node, local: _Local | None, hidden: str) -> None:
        """``rm`` of a file still open (libfuse renames it to ``hidden`` until its last
        handle closes): removed from Notion now; open handles keep its bytes locally."""
        if local is None:
            self._trash(node)
            return
        self._unlink_local(local, keep=True)
        with local.lock:
            local.scratch = True
            local.target = None
            local.dirty = False
        self._move_local(local, hidden, None)

    def _unlink_local(self, local: _Local, *, keep: bool = False) -> None:
        with local.lock:
            pending = [] if local.entry_id is None else [local.entry_id, *local.earlier[::-1]]
        for entry_id in pending if not local.scratch else []:  # the latest version first
            status = self._queue.status(entry_id)
            if status is not None and status.state not in ("done", "failed"):
                try:
                    self._queue.discard(entry_id)
                except ValueError:  # running: let it land, then trash what it made
                    done = self._queue.wait(entry_id, timeout_s=self._wait_s)
                    self._confirmed(local, done)
        if local.target is not None and local.target.is_property:
            # In a files property: the entry it landed in, or the one it was replacing,
            # leaves the property.
            if not local.scratch and local.target.entry_key:
                prop = property_folder(local.folder_key)
                assert prop is not None
                self._edit_entry(prop.entry("property_remove", local.target.entry_key,
                                            local.target.entry_index), local.name)
            if not keep:
                self._forget(local)
            return
        # What Notion holds under this name goes to the trash: the block this file landed
        # in, or the one it was replacing.
        replacing = local.target.block_id if local.target is not None else None
        block_id = local.result_id or replacing
        if block_id is not None and not local.scratch:
            self._run_trash(block_id, local.name)
            self._ws.invalidate_key(local.folder_key)
        if not keep:
            self._forget(local)

    def _trash(self, node: Node) -> None:
        if node.kind is Kind.GENERATED:
            raise GeneratedFileError(f"{node.name!r} is generated from the page: read only")
        ref = entry_of(node)
        if ref is not None:  # a files property's entry leaves the property
            self._edit_entry(ref.target("property_remove"), node.name)
            return
        if node.kind is not Kind.FILE or node.role is not Role.BLOCK or not node.object_id:
            raise NotWritableError(f"{node.name!r} is not a file block: it cannot be removed")
        self._run_trash(node.object_id, node.name)
        self._ws.invalidate_key(node.key.rsplit("/", 1)[0])

    def _run_trash(self, block_id: str, name: str) -> None:
        entry = self._queue.submit_trash(block_id)
        logger.info("%r: moving block %s to the trash", name, block_id)
        self._queue.wait(entry.id, timeout_s=self._wait_s)

    def rename(self, old: str, new: str) -> None:
        old_parent, old_name = _split(old)
        new_parent, new_name = _split(new)
        node = self.lookup(old)
        if node is None:
            raise NoSuchPathError(f"no file {old!r}")
        if node.is_dir:
            self._rename_folder(node, old_parent, new_parent, new_name, new)
            return
        if old_parent != new_parent:
            raise CrossFolderError(f"{old!r} -> {new!r}: files move between pages as a copy")
        local = self._by_node(node)
        if _FUSE_HIDDEN.fullmatch(new_name):
            self._remove_open(node, local, new_name)
            return
        if entry_of(node) is not None or (local and property_folder(local.folder_key)):
            self._rename_in_property(node, local, new)
            return
        if local is None:
            self._rename_block(node, old_parent, new_name, new)
            return
        if is_scratch_name(new_name):
            self._move_local(local, new_name, None)
            return
        if not local.scratch and local.result_id is not None and not local.dirty:
            replaced = self._replaceable(new, new_name)
            kind = str(self._api.get_block(local.result_id).get("type", "file"))
            check_file(new_name, into=kind)
            self._api.rename_file_block(local.result_id, kind, new_name)
            if replaced is not None:
                self._remove_replaced(replaced)
            self._move_local(local, new_name, None)
            self._ws.invalidate_key(local.folder_key)
            return
        if not local.scratch and local.entry_id is not None:
            raise NotWritableError(f"{old!r} -> {new!r}: an uploaded file keeps its name "
                                   "until Notion lists it")
        folder = self._ws.lookup(new_parent)
        if folder is None:
            raise NoSuchPathError(f"no folder {new_parent!r}")
        self._check_folder(folder, new_name)
        check_file(new_name)
        replaced = self.lookup(new)
        target: Target | None = None
        if replaced is not None:
            target = self._replace_target(replaced, new_name)
        with local.lock:
            local.scratch = False
            local.dirty = True
            local.folder_id = folder.object_id
        self._move_local(local, new_name, target)
        self._flush(local)

    def _rename_block(self, node: Node, parent: str, name: str, new: str) -> None:
        """A Notion file renamed within its page: the block's name changes."""
        if node.kind is Kind.GENERATED:
            raise GeneratedFileError(f"{node.name!r} is generated from the page: read only")
        if node.kind is not Kind.FILE or node.role is not Role.BLOCK or not node.object_id:
            raise NotWritableError(f"{node.name!r} is not a file block: it keeps its name")
        if is_scratch_name(name):
            raise NotWritableError(f"{name!r} is a temporary name: Notion files keep theirs")
        replaced = self._replaceable(new, name)
        kind = str(self._api.get_block(node.object_id).get("type", "file"))
        check_file(name, into=kind)
        self._api.rename_file_block(node.object_id, kind, name)
        logger.info("%r renamed to %r (block %s)", node.name, name, node.object_id)
        if replaced is not None:
            self._remove_replaced(replaced)
        folder = self._ws.lookup(parent)
        if folder is not None:
            self._ws.invalidate(folder)

    def _replaceable(self, path: str, name: str) -> Node | None:
        """The file a rename onto ``path`` replaces (None: the name is free), or why it may
        not be replaced. Checked before anything changes in Notion."""
        replaced = self.lookup(path)
        if replaced is None:
            return None
        if replaced.is_dir:
            raise NotWritableError(f"{name!r} is a folder: a file cannot replace it")
        if self._by_node(replaced) is None and (
            replaced.kind is not Kind.FILE or replaced.role is not Role.BLOCK
        ):
            raise NotWritableError(f"{name!r} is not a file block: it cannot be replaced")
        return replaced

    def _remove_replaced(self, replaced: Node) -> None:
        """The file a rename replaced goes to Notion's trash, after the renamed file holds
        its name: a failure here leaves both in Notion (the listing tells them apart), never
        neither."""
        local = self._by_node(replaced)
        if local is not None:
            self._unlink_local(local)
        else:
            self._trash(replaced)

    # ---- folders: pages and rows -------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        parent_path, name = _split(path)
        folder = self._ws.lookup(parent_path)
        if folder is None:
            raise NoSuchPathError(f"no folder {parent_path!r}")
        page = self._api.create_page(self._parent_of_pages(folder, name), name)
        logger.info("%r: page %s created", path, page.get("id"))
        self._ws.invalidate(folder)

    def rmdir(self, path: str) -> None:
        parent_path, _name = _split(path)
        node = self.lookup(path)
        if node is None:
            raise NoSuchPathError(f"no folder {path!r}")
        self._check_empty_page(path, node)
        assert node.object_id is not None
        self._api.trash_page(node.object_id)
        logger.info("%r: page %s moved to Notion's trash (kept there 30 days)", path,
                    node.object_id)
        folder = self._ws.lookup(parent_path)
        if folder is not None:
            self._ws.invalidate(folder)

    def _check_empty_page(self, path: str, node: Node) -> None:
        """A page folder that may go to the trash: nothing in it but generated text."""
        if node.kind is not Kind.PAGE or not node.object_id:
            raise NotWritableError(f"{path!r} is not a page: only pages are removed")
        inside = [c.name for c in self.listdir(node) if c.kind is not Kind.GENERATED]
        if inside:
            raise FolderNotEmptyError(f"{path!r} still holds {', '.join(inside[:3])}")

    def _rename_folder(self, node: Node, old_parent: str, new_parent: str, name: str,
                       new: str) -> None:
        if node.kind is not Kind.PAGE or not node.object_id:
            raise NotWritableError(f"{node.name!r} is not a page: it keeps its name and place")
        replaced = self.lookup(new)
        if replaced is not None:
            self._check_empty_page(new, replaced)  # rename(2) replaces only an empty folder
        source = self._ws.lookup(old_parent)
        target = self._ws.lookup(new_parent)
        if target is None:
            raise NoSuchPathError(f"no folder {new_parent!r}")
        if new_parent != old_parent:
            self._api.move_page(node.object_id, self._parent_of_pages(target, name))
            logger.info("page %s moved into %r", node.object_id, new_parent)
        if name != node.name:
            self._api.rename_page(node.object_id, name)
            logger.info("page %s retitled %r", node.object_id, name)
        if replaced is not None and replaced.object_id:
            self._api.trash_page(replaced.object_id)
            logger.info("%r: the empty page %s it replaced moved to Notion's trash", new,
                        replaced.object_id)
        for folder in (source, target):
            if folder is not None:
                self._ws.invalidate(folder)

    def _parent_of_pages(self, folder: Node, name: str) -> dict[str, str]:
        """Where a page made or moved into ``folder`` goes, as Notion's ``parent``."""
        if folder.kind is Kind.PAGE and folder.object_id:
            return {"page_id": folder.object_id}
        if folder.kind is Kind.DATA_SOURCE and folder.object_id:
            return {"data_source_id": folder.object_id}
        if folder.kind is Kind.DATABASE and folder.object_id:
            client = self._api.client
            if client.version == "2022-06-28":
                return {"database_id": folder.object_id}
            sources = client.get_database(folder.object_id).data_sources
            if len(sources) == 1:
                return {"data_source_id": sources[0].id}
        raise NotWritableError(
            f"{name!r}: pages go into page or database folders (this is a "
            f"{folder.kind.value} folder)"
        )

    def _replace_target(self, replaced: Node, name: str) -> Target | None:
        """What a file renamed over ``replaced`` uploads to: its block, kept in place."""
        other = self._by_node(replaced)
        if other is None:
            if replaced.kind is not Kind.FILE or replaced.role is not Role.BLOCK:
                raise NotWritableError(f"{name!r} cannot be replaced")
            return Target.replace(replaced.object_id or "")
        if other.entry_id is not None and other.result_id is None:
            done = self._queue.wait(other.entry_id, timeout_s=self._wait_s)
            self._confirmed(other, done)
        return other.target

    def _move_local(self, local: _Local, name: str, target: Target | None) -> None:
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
        if old is not None and old is not local:
            self._drop(old)

    def _forget(self, local: _Local) -> None:
        with self._lock:
            folder = self._locals.get(local.folder_key, {})
            if folder.get(local.name) is local:
                del folder[local.name]
            self._by_key.pop(local.node.key, None)
        self._drop(local)

    def _drop(self, local: _Local) -> None:
        """Close a local file; its staged copy goes unless the queue owns it. A file still
        open is closed by its last handle."""
        with self._lock:
            self._by_key.pop(local.node.key, None)
            local.removed = True
            if local.opens > 0:
                return
        self._close_staged(local)

    def _close_staged(self, local: _Local) -> None:
        if local.handed_over:
            local.staged.close()
        else:
            local.staged.discard()

    # ---- a row's files property ------------------------------------------------------------

    def _edit_entry(self, target: Target, name: str) -> Entry:
        """Remove or rename an entry of a files property through the queue (journalled, in
        order with the property's uploads), waiting for Notion as a flush does."""
        entry = self._queue.submit_edit(target, name=name)
        logger.info("%r: %s in row %s", name, target.action.replace("_", " "), target.page_id)
        try:
            return self._queue.wait(entry.id, timeout_s=self._wait_s)
        finally:
            key = folder_key_of(target)
            if key is not None:
                self._ws.invalidate_key(key)

    def _rename_in_property(self, node: Node, local: _Local | None, new: str) -> None:
        """``mv`` within a files property folder: an entry's name changes (the array sent
        back with it); a scratch file renamed to a real name is uploaded, in place of the
        entry of that name if there is one (an editor's atomic save)."""
        new_name = _split(new)[1]
        if local is None:
            ref = entry_of(node)
            assert ref is not None
            self._check_entry_name(new, new_name)
            self._edit_entry(ref.target("property_rename"), new_name)
            return
        prop = property_folder(local.folder_key)
        assert prop is not None
        if is_scratch_name(new_name):
            self._move_local(local, new_name, None)
            return
        key = local.target.entry_key if local.target is not None else None
        settled = local.entry_id is None or local.done_at is not None
        if not local.scratch and key and not local.dirty and settled:  # landed, or unchanged
            self._check_entry_name(new, new_name)
            done = self._edit_entry(prop.entry("property_rename", key), new_name)
            renamed = done.result_id or key  # Notion may give the renamed file a new URL
            with local.lock:
                if local.result_id is not None:
                    local.result_id = renamed  # what the listing will show it as
            self._move_local(local, new_name, prop.entry("property_replace", renamed))
            return
        if not local.scratch and local.entry_id is not None:
            raise NotWritableError(f"{local.name!r} -> {new_name!r}: an uploaded file keeps "
                                   "its name until Notion lists it")
        check_file(new_name)
        replaced = self.lookup(new)
        target = None if replaced is None else self._entry_replace_target(replaced, new_name)
        with local.lock:
            local.scratch = False
            local.dirty = True
            local.folder_id = prop.page_id
        self._move_local(local, new_name, target)
        self._flush(local)

    def _check_entry_name(self, new: str, name: str) -> None:
        if self.lookup(new) is not None:
            raise NotWritableError(f"{name!r} exists: remove it first")
        if is_scratch_name(name):
            raise NotWritableError(f"{name!r} is a temporary name: Notion files keep theirs")
        check_file(name)

    def _entry_replace_target(self, replaced: Node, name: str) -> Target | None:
        """What a file renamed over ``replaced`` in a files property uploads to: that entry,
        kept in its place."""
        other = self._by_node(replaced)
        if other is None:
            ref = entry_of(replaced)
            if ref is None:
                raise NotWritableError(f"{name!r} cannot be replaced")
            return ref.target("property_replace")
        if other.entry_id is not None and other.result_id is None:
            done = self._queue.wait(other.entry_id, timeout_s=self._wait_s)
            self._confirmed(other, done)
        return other.target


def _dated(name: str, why: str) -> str:
    """``NAME (why YYYY-MM-DD HHMM).ext``: a version kept beside another."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    return f"{stem} ({why} {time.strftime('%Y-%m-%d %H%M')}){dot}{ext}"


@dataclass(frozen=True)
class _FolderRef:
    key: str
    object_id: str | None


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or "/", name


def _conforms(overlay: WriteOverlay) -> WritableSource:
    return overlay  # mypy checks here that the overlay keeps the contract
