"""The write overlay: a writable mount source over a workspace, with the local layer of files
not yet uploaded (and editors' scratch files, never uploaded).

What a program writes lands in a staged file (staging.py) and goes to Notion through the
upload queue (uploadqueue.py) when the file is flushed or fsynced, so ``close()`` sees a
failure; a failed upload stays staged and journalled and is retried in the background.
Until a listing fetched after the upload shows the new block, the folder shows the local
file (its staged bytes and size) under its name: read-after-write holds within the mount.
The overlay hides nothing Notion lists, except that a local file being written over a
Notion file shows in its place.

``WriteOverlay`` is the facade: it answers the MountSource reads from the local layer
(locallayer.py), opens files for writing, and hands each write verb to the collaborator
that owns it: writing and versions (localwrites.py), removals (removals.py), renames of
files (renames.py), folders (folders.py), files property folders (propfolders.py).

Lock order: ``LocalLayer._lock`` is a leaf, never held across a network call or a wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import GeneratedFileError, NoSuchPathError, NotWritableError
from .filetypes import check_file
from .folders import Folders
from .journal import Target
from .locallayer import FolderRef, LocalFile, LocalLayer, is_scratch_name, split_path
from .localwrites import LocalWrites, WriteHandle, check_folder
from .nodes import Kind, Node, Role
from .propentries import entry_of, property_folder
from .propfolders import PropertyFolders
from .removals import Removals
from .renames import Renames
from .uploadqueue import UploadQueue
from .workspace import FsStats, NotionWorkspace, Reader, WritableSource

__all__ = [
    "WritableSource",  # the contract, defined in workspace.py
    "WriteHandle",
    "WriteOverlay",
    "is_scratch_name",
]


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
        self.root = workspace.root
        self._layer = LocalLayer(workspace, queue.staging)
        self._writes = LocalWrites(workspace, queue, self._layer, wait_s=wait_s, clock=clock)
        self._props = PropertyFolders(workspace, queue, self._layer, self._writes,
                                      wait_s=wait_s)
        self._removals = Removals(workspace, queue, self._layer, self._writes, self._props,
                                  wait_s=wait_s)
        self._renames = Renames(workspace, self._api, self._layer, self._writes,
                                self._removals, self._props)
        self._folders = Folders(workspace, self._api, self._layer)
        queue.on_done = self._writes.landed

    # ---- reads: the workspace with the local layer over it --------------------------------

    def lookup(self, path: str) -> Node | None:
        return self._layer.lookup(path)

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        return self._layer.lookup_memory(path)

    def lookup_held(self, path: str) -> Node | None:
        return self._layer.lookup_held(path)

    def listdir(self, folder: Node) -> list[Node]:
        return self._layer.listdir(folder)

    def listdir_held(self, folder: Node) -> list[Node] | None:
        return self._layer.listdir_held(folder)

    def is_fresh(self, folder: Node) -> bool:
        return self._ws.is_fresh(folder)

    def size(self, node: Node) -> int:
        local = self._layer.by_node(node)
        return local.staged.size if local is not None else self._ws.size(node)

    def known_size(self, node: Node) -> int | None:
        local = self._layer.by_node(node)
        return local.staged.size if local is not None else self._ws.known_size(node)

    def identity(self, node: Node) -> str:
        local = self._layer.by_node(node)
        if local is not None:
            return f"{node.key}#{local.version}"
        return self._ws.identity(node)

    def open(self, node: Node) -> Reader:
        local = self._layer.by_node(node)
        if local is None:
            return self._ws.open(node)
        return self._writes.handle(local)

    def xattrs(self, node: Node) -> dict[str, str]:
        local = self._layer.by_node(node)
        if local is None:
            values = self._ws.xattrs(node)
        else:
            values = {"type": "file"}
            if local.result_id and property_folder(local.folder_key) is None:
                values["id"] = local.result_id
            values["state"] = self._state(local)
        return values

    def _state(self, local: LocalFile) -> str:
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
        for local in self._layer.files():
            self._writes.at_unmount(local)
            self._layer.drop(local)
        self._ws.close()

    # ---- opening for writing -------------------------------------------------------------

    def create(self, path: str) -> WriteHandle:
        parent, name = split_path(path)
        folder = self._ws.lookup(parent)
        if folder is None or not folder.is_dir:
            raise NoSuchPathError(f"no folder {parent!r}")
        scratch = is_scratch_name(name)
        if not scratch:
            check_folder(folder, name)
            check_file(name)  # UnsupportedFileError before any byte is written
        existing = self.lookup(path)
        if existing is not None:
            return self.open_write(existing, truncate=True)
        local = self._layer.add(folder, name, scratch=scratch, target=None)
        return self._writes.handle(local)

    def open_write(self, node: Node, *, truncate: bool) -> WriteHandle:
        local = self._layer.by_node(node)
        if local is None:
            local = self._adopt(node, copy=not truncate)
        elif truncate:
            self._writes.truncate(local, 0)
        return self._writes.handle(local)

    def truncate_path(self, node: Node, length: int) -> None:
        local = self._layer.by_node(node)
        if local is not None and local.opens > 0:
            self._writes.truncate(local, length)  # uploaded by the open handle's flush
            return
        handle = self.open_write(node, truncate=length == 0)
        try:
            if length:
                handle.truncate(length)
            handle.flush()
        finally:
            handle.close()

    def _adopt(self, node: Node, *, copy: bool) -> LocalFile:
        """A Notion file opened for writing: a local copy that replaces it in place."""
        if node.kind is Kind.GENERATED:
            raise GeneratedFileError(f"{node.name!r} is generated from the page: read only")
        ref = entry_of(node)
        if ref is not None:
            # A property entry: its file replaced in place. If someone changed or removed it
            # meanwhile, its key is gone from the property and the upload lands beside it.
            folder = FolderRef(ref.folder.key, ref.folder.page_id)
            target = ref.target("property_replace")
        else:
            if node.kind is not Kind.FILE or node.role is not Role.BLOCK or not node.object_id:
                raise NotWritableError(f"{node.name!r} is not a file block: it cannot be "
                                       "written")
            folder_key = node.key.rsplit("/", 1)[0]
            page_id = folder_key[len("page:"):] if folder_key.startswith("page:") else None
            folder = FolderRef(folder_key, page_id)
            # The block's edit time now: an upload over a version someone saved meanwhile is
            # refused (ConflictError) and lands beside it instead.
            block = self._api.get_block(node.object_id)
            edited = block.get("last_edited_time")
            target = Target.replace(node.object_id,
                                    expect_edited=edited if isinstance(edited, str) else None)
        local = self._layer.add(folder, node.name, scratch=False, target=target)
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
                self._layer.forget(local)
                raise
        local.dirty = not copy  # an unchanged copy is not uploaded again
        return local

    # ---- the other write verbs, each to the collaborator that owns it ------------------------

    def unlink(self, path: str) -> None:
        self._removals.unlink(path)

    def rename(self, old: str, new: str) -> None:
        old_parent, _old_name = split_path(old)
        new_parent, new_name = split_path(new)
        node = self.lookup(old)
        if node is None:
            raise NoSuchPathError(f"no file {old!r}")
        if node.is_dir:
            self._folders.rename(node, old_parent, new_parent, new_name, new)
            return
        self._renames.rename_file(node, old, new)

    def mkdir(self, path: str) -> None:
        self._folders.mkdir(path)

    def rmdir(self, path: str) -> None:
        self._folders.rmdir(path)


def _conforms(overlay: WriteOverlay) -> WritableSource:
    return overlay  # mypy checks here that the overlay keeps the contract
