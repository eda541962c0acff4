"""Renaming files within their folder: a block's name, a local file's name, an atomic save.

A Notion file renamed keeps its block (its name changes in place); a scratch file renamed
to a real name is uploaded, over the file of that name if there is one (an editor's atomic
save keeps the block); a file renamed onto another's name replaces it, the other going to
the trash only once the renamed one holds the name.
"""

from __future__ import annotations

import logging

from .errors import CrossFolderError, GeneratedFileError, NoSuchPathError, NotWritableError
from .filetypes import check_file
from .journal import Target
from .locallayer import FUSE_HIDDEN, LocalLayer, is_scratch_name, split_path
from .localwrites import LocalWrites, check_folder
from .nodes import Kind, Node, Role
from .propentries import entry_of, property_folder
from .propfolders import PropertyFolders
from .removals import Removals
from .workspace import NotionWorkspace
from .writeapi import WriteApi

__all__ = ["Renames"]

logger = logging.getLogger(__name__)


class Renames:
    """``mv`` of a file within its folder (folders are ``folders.Folders``')."""

    def __init__(
        self,
        workspace: NotionWorkspace,
        api: WriteApi,
        layer: LocalLayer,
        writes: LocalWrites,
        removals: Removals,
        props: PropertyFolders,
    ) -> None:
        self._ws = workspace
        self._api = api
        self._layer = layer
        self._writes = writes
        self._removals = removals
        self._props = props

    def rename_file(self, node: Node, old: str, new: str) -> None:
        old_parent, _old_name = split_path(old)
        new_parent, new_name = split_path(new)
        if old_parent != new_parent:
            raise CrossFolderError(f"{old!r} -> {new!r}: files move between pages as a copy")
        local = self._layer.by_node(node)
        if FUSE_HIDDEN.fullmatch(new_name):
            self._removals.remove_open(node, local, new_name)
            return
        if entry_of(node) is not None or (local and property_folder(local.folder_key)):
            self._props.rename(node, local, new)
            return
        if local is None:
            self._rename_block(node, old_parent, new_name, new)
            return
        if is_scratch_name(new_name):
            self._layer.move(local, new_name, None)
            return
        if not local.scratch and local.result_id is not None and not local.dirty:
            replaced = self._replaceable(new, new_name)
            kind = str(self._api.get_block(local.result_id).get("type", "file"))
            check_file(new_name, into=kind)
            self._api.rename_file_block(local.result_id, kind, new_name)
            if replaced is not None:
                self._removals.remove_replaced(replaced)
            self._layer.move(local, new_name, None)
            self._ws.invalidate_key(local.folder_key)
            return
        if not local.scratch and local.entry_id is not None:
            raise NotWritableError(f"{old!r} -> {new!r}: an uploaded file keeps its name "
                                   "until Notion lists it")
        folder = self._ws.lookup(new_parent)
        if folder is None:
            raise NoSuchPathError(f"no folder {new_parent!r}")
        check_folder(folder, new_name)
        check_file(new_name)
        replaced = self._layer.lookup(new)
        target: Target | None = None
        if replaced is not None:
            target = self._replace_target(replaced, new_name)
        with local.lock:
            local.scratch = False
            local.dirty = True
            local.folder_id = folder.object_id
        self._layer.move(local, new_name, target)
        self._writes.flush(local)

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
            self._removals.remove_replaced(replaced)
        folder = self._ws.lookup(parent)
        if folder is not None:
            self._ws.invalidate(folder)

    def _replaceable(self, path: str, name: str) -> Node | None:
        """The file a rename onto ``path`` replaces (None: the name is free), or why it may
        not be replaced. Checked before anything changes in Notion."""
        replaced = self._layer.lookup(path)
        if replaced is None:
            return None
        if replaced.is_dir:
            raise NotWritableError(f"{name!r} is a folder: a file cannot replace it")
        if self._layer.by_node(replaced) is None and (
            replaced.kind is not Kind.FILE or replaced.role is not Role.BLOCK
        ):
            raise NotWritableError(f"{name!r} is not a file block: it cannot be replaced")
        return replaced

    def _replace_target(self, replaced: Node, name: str) -> Target | None:
        """What a file renamed over ``replaced`` uploads to: its block, kept in place."""
        other = self._layer.by_node(replaced)
        if other is None:
            if replaced.kind is not Kind.FILE or replaced.role is not Role.BLOCK:
                raise NotWritableError(f"{name!r} cannot be replaced")
            return Target.replace(replaced.object_id or "")
        return self._writes.wait_landed(other)
