"""Renames and edits in a row's files property folder: its entries edited through the queue.

An entry of a files property has no block of its own: removing or renaming one rewrites the
property's array, journalled through the upload queue so it runs in order with the
property's uploads (propentries.py knows the folders, entries and targets).
"""

from __future__ import annotations

import logging

from .errors import NotWritableError
from .filetypes import check_file
from .journal import Entry, Target
from .locallayer import LocalFile, LocalLayer, is_scratch_name, split_path
from .localwrites import LocalWrites
from .nodes import Node
from .propentries import entry_of, folder_key_of, property_folder
from .uploadqueue import UploadQueue
from .workspace import NotionWorkspace

__all__ = ["PropertyFolders"]

logger = logging.getLogger(__name__)


class PropertyFolders:
    """The entries of rows' files properties, removed and renamed."""

    def __init__(
        self,
        workspace: NotionWorkspace,
        queue: UploadQueue,
        layer: LocalLayer,
        writes: LocalWrites,
        *,
        wait_s: float,
    ) -> None:
        self._ws = workspace
        self._queue = queue
        self._layer = layer
        self._writes = writes
        self._wait_s = wait_s

    def edit_entry(self, target: Target, name: str) -> Entry:
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

    def rename(self, node: Node, local: LocalFile | None, new: str) -> None:
        """``mv`` within a files property folder: an entry's name changes (the array sent
        back with it); a scratch file renamed to a real name is uploaded, in place of the
        entry of that name if there is one (an editor's atomic save)."""
        new_name = split_path(new)[1]
        if local is None:
            ref = entry_of(node)
            assert ref is not None
            self._check_entry_name(new, new_name)
            self.edit_entry(ref.target("property_rename"), new_name)
            return
        prop = property_folder(local.folder_key)
        assert prop is not None
        if is_scratch_name(new_name):
            self._layer.move(local, new_name, None)
            return
        key = local.target.entry_key if local.target is not None else None
        settled = local.entry_id is None or local.done_at is not None
        if not local.scratch and key and not local.dirty and settled:  # landed, or unchanged
            self._check_entry_name(new, new_name)
            done = self.edit_entry(prop.entry("property_rename", key), new_name)
            renamed = done.result_id or key  # Notion may give the renamed file a new URL
            with local.lock:
                if local.result_id is not None:
                    local.result_id = renamed  # what the listing will show it as
            self._layer.move(local, new_name, prop.entry("property_replace", renamed))
            return
        if not local.scratch and local.entry_id is not None:
            raise NotWritableError(f"{local.name!r} -> {new_name!r}: an uploaded file keeps "
                                   "its name until Notion lists it")
        check_file(new_name)
        replaced = self._layer.lookup(new)
        target = None if replaced is None else self._entry_replace_target(replaced, new_name)
        with local.lock:
            local.scratch = False
            local.dirty = True
            local.folder_id = prop.page_id
        self._layer.move(local, new_name, target)
        self._writes.flush(local)

    def _check_entry_name(self, new: str, name: str) -> None:
        if self._layer.lookup(new) is not None:
            raise NotWritableError(f"{name!r} exists: remove it first")
        if is_scratch_name(name):
            raise NotWritableError(f"{name!r} is a temporary name: Notion files keep theirs")
        check_file(name)

    def _entry_replace_target(self, replaced: Node, name: str) -> Target | None:
        """What a file renamed over ``replaced`` in a files property uploads to: that entry,
        kept in its place."""
        other = self._layer.by_node(replaced)
        if other is None:
            ref = entry_of(replaced)
            if ref is None:
                raise NotWritableError(f"{name!r} cannot be replaced")
            return ref.target("property_replace")
        return self._writes.wait_landed(other)
