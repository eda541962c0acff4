"""A row's files property as the write overlay sees it: its folder, its entries, their targets."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .journal import Entry, Target, entry_key
from .lister import FILES_PROPERTY_MARK
from .nodes import Node, Role

__all__ = ["EntryRef", "PropertyFolder", "entry_of", "folder_key_of", "landed_target",
           "property_folder", "shown_entries"]

# The keys the lister gives: "page:<row id>/prop:<property id>" for the folder, then
# "/<position>:<URL path>" for an entry. Notion's property ids are URL-encoded: no "/".
_MARK = re.escape(FILES_PROPERTY_MARK)
_FOLDER = re.compile(rf"page:(?P<page>[^/]+){_MARK}(?P<prop>[^/]+)", re.S)
_ENTRY = re.compile(rf"(?P<folder>page:[^/]+{_MARK}[^/]+)/(?P<index>\d+):(?P<path>.*)", re.S)


@dataclass(frozen=True)
class PropertyFolder:
    """The folder of row ``page_id``'s files property ``property_id``."""

    key: str
    page_id: str
    property_id: str

    def append(self) -> Target:
        """Where a new file of this folder goes: a new entry at the end of the property."""
        return Target.files_property(self.page_id, self.property_id)

    def entry(self, action: str, key: str, index: int | None = None) -> Target:
        return Target.property_entry(action, self.page_id, self.property_id, key, index)


@dataclass(frozen=True)
class EntryRef:
    """One entry of a files property as a listing showed it: ``key`` is ``entry_key()`` of
    its URL path, ``index`` its position then."""

    folder: PropertyFolder
    key: str
    index: int

    def target(self, action: str) -> Target:
        return self.folder.entry(action, self.key, self.index)


def property_folder(folder_key: str) -> PropertyFolder | None:
    """The files property whose folder has key ``folder_key``; None for any other folder."""
    match = _FOLDER.fullmatch(folder_key)
    if match is None:
        return None
    return PropertyFolder(folder_key, match["page"], match["prop"])


def entry_of(node: Node) -> EntryRef | None:
    """The property entry a listed file is; None for any other file."""
    if node.role is not Role.PROPERTY:
        return None
    match = _ENTRY.fullmatch(node.key)
    folder = property_folder(match["folder"]) if match is not None else None
    if match is None or folder is None:
        return None
    return EntryRef(folder, entry_key(match["path"]), int(match["index"]))


def shown_entries(nodes: Iterable[Node]) -> set[str]:
    """The entry keys of the property entries among ``nodes``."""
    return {ref.key for node in nodes if (ref := entry_of(node)) is not None}


def landed_target(entry: Entry) -> Target | None:
    """Where the next version of a file goes once ``entry`` (its upload) landed: its block,
    or its property entry, replaced in place. None when the entry says not where it is."""
    target, result = entry.target, entry.result_id
    if not result:
        return None
    if not target.is_property:
        return Target.replace(result)
    assert target.page_id is not None and target.property_name is not None
    # (A result that is the page id, when Notion's answer did not show the new entry,
    # matches no entry: a later version is then a conflict saved beside, never a second
    # copy appended.)
    return Target.property_entry("property_replace", target.page_id, target.property_name,
                                 result)


def folder_key_of(target: Target) -> str | None:
    """The folder key of a property target's files property."""
    if not target.is_property or not target.page_id or not target.property_name:
        return None
    return f"page:{target.page_id}{FILES_PROPERTY_MARK}{target.property_name}"
