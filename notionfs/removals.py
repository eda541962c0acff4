"""Removing files from a writable mount: blocks to Notion's trash, entries out of properties.

What Notion holds under a removed name goes to its trash (kept there 30 days) through the
upload queue, after any upload of that file still pending is discarded or has landed; a
file removed while open keeps its bytes locally until its last handle closes.
"""

from __future__ import annotations

import logging

from .errors import GeneratedFileError, NoSuchPathError, NotWritableError
from .locallayer import LocalFile, LocalLayer
from .localwrites import LocalWrites
from .nodes import Kind, Node, Role
from .propentries import entry_of, property_folder
from .propfolders import PropertyFolders
from .uploadqueue import UploadQueue
from .workspace import NotionWorkspace

__all__ = ["Removals"]

logger = logging.getLogger(__name__)


class Removals:
    """``rm`` of Notion files and of local ones, and of what a rename replaces."""

    def __init__(
        self,
        workspace: NotionWorkspace,
        queue: UploadQueue,
        layer: LocalLayer,
        writes: LocalWrites,
        props: PropertyFolders,
        *,
        wait_s: float,
    ) -> None:
        self._ws = workspace
        self._queue = queue
        self._layer = layer
        self._writes = writes
        self._props = props
        self._wait_s = wait_s

    def unlink(self, path: str) -> None:
        node = self._layer.lookup(path)
        if node is None:
            raise NoSuchPathError(f"no file {path!r}")
        local = self._layer.by_node(node)
        if local is not None:
            self._unlink_local(local)
            return
        self._trash(node)

    def remove_open(self, node: Node, local: LocalFile | None, hidden: str) -> None:
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
        self._layer.move(local, hidden, None)

    def remove_replaced(self, replaced: Node) -> None:
        """The file a rename replaced goes to Notion's trash, after the renamed file holds
        its name: a failure here leaves both in Notion (the listing tells them apart), never
        neither."""
        local = self._layer.by_node(replaced)
        if local is not None:
            self._unlink_local(local)
        else:
            self._trash(replaced)

    def _unlink_local(self, local: LocalFile, *, keep: bool = False) -> None:
        with local.lock:
            pending = [] if local.entry_id is None else [local.entry_id, *local.earlier[::-1]]
        for entry_id in pending if not local.scratch else []:  # the latest version first
            status = self._queue.status(entry_id)
            if status is not None and status.state not in ("done", "failed"):
                try:
                    self._queue.discard(entry_id)
                except ValueError:  # running: let it land, then trash what it made
                    done = self._queue.wait(entry_id, timeout_s=self._wait_s)
                    self._writes.confirmed(local, done)
        if local.target is not None and local.target.is_property:
            # In a files property: the entry it landed in, or the one it was replacing,
            # leaves the property.
            if not local.scratch and local.target.entry_key:
                prop = property_folder(local.folder_key)
                assert prop is not None
                self._props.edit_entry(prop.entry("property_remove", local.target.entry_key,
                                                  local.target.entry_index), local.name)
            if not keep:
                self._layer.forget(local)
            return
        # What Notion holds under this name goes to the trash: the block this file landed
        # in, or the one it was replacing.
        replacing = local.target.block_id if local.target is not None else None
        block_id = local.result_id or replacing
        if block_id is not None and not local.scratch:
            self._run_trash(block_id, local.name)
            self._ws.invalidate_key(local.folder_key)
        if not keep:
            self._layer.forget(local)

    def _trash(self, node: Node) -> None:
        if node.kind is Kind.GENERATED:
            raise GeneratedFileError(f"{node.name!r} is generated from the page: read only")
        ref = entry_of(node)
        if ref is not None:  # a files property's entry leaves the property
            self._props.edit_entry(ref.target("property_remove"), node.name)
            return
        if node.kind is not Kind.FILE or node.role is not Role.BLOCK or not node.object_id:
            raise NotWritableError(f"{node.name!r} is not a file block: it cannot be removed")
        self._run_trash(node.object_id, node.name)
        self._ws.invalidate_key(node.key.rsplit("/", 1)[0])

    def _run_trash(self, block_id: str, name: str) -> None:
        entry = self._queue.submit_trash(block_id)
        logger.info("%r: moving block %s to the trash", name, block_id)
        self._queue.wait(entry.id, timeout_s=self._wait_s)
