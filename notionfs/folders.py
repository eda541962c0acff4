"""Folders of a writable mount as pages: made, trashed, retitled and moved, synchronously.

A folder is a page (or a database's row): ``mkdir`` creates one, ``rmdir`` sends an empty
one to Notion's trash, a folder's rename retitles and/or moves its page. These calls are
not journalled: they are small, and their outcome is what the program waits for.
"""

from __future__ import annotations

import logging

from .errors import FolderNotEmptyError, NoSuchPathError, NotWritableError
from .locallayer import LocalLayer, split_path
from .nodes import Kind, Node
from .workspace import NotionWorkspace
from .writeapi import WriteApi

__all__ = ["Folders"]

logger = logging.getLogger(__name__)


class Folders:
    """``mkdir``, ``rmdir`` and the rename of folders, as Notion page calls."""

    def __init__(self, workspace: NotionWorkspace, api: WriteApi, layer: LocalLayer) -> None:
        self._ws = workspace
        self._api = api
        self._layer = layer

    def mkdir(self, path: str) -> None:
        parent_path, name = split_path(path)
        folder = self._ws.lookup(parent_path)
        if folder is None:
            raise NoSuchPathError(f"no folder {parent_path!r}")
        page = self._api.create_page(self._parent_of_pages(folder, name), name)
        logger.info("%r: page %s created", path, page.get("id"))
        self._ws.invalidate(folder)

    def rmdir(self, path: str) -> None:
        parent_path, _name = split_path(path)
        node = self._layer.lookup(path)
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
        inside = [c.name for c in self._layer.listdir(node) if c.kind is not Kind.GENERATED]
        if inside:
            raise FolderNotEmptyError(f"{path!r} still holds {', '.join(inside[:3])}")

    def rename(self, node: Node, old_parent: str, new_parent: str, name: str,
               new: str) -> None:
        if node.kind is not Kind.PAGE or not node.object_id:
            raise NotWritableError(f"{node.name!r} is not a page: it keeps its name and place")
        replaced = self._layer.lookup(new)
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
