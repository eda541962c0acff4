"""Which folders list which objects, and which page holds which block: how a change the feed
reports for one object reaches every listing that shows it."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .feed import Change
from .nodes import ROOT_KEY

__all__ = ["Relations", "own_keys"]


def own_keys(change: Change) -> set[str]:
    """The listing keys of the changed object's own folder(s)."""
    if change.kind == "page":
        return {f"page:{change.object_id}"}
    if change.kind == "database":
        return {f"db:{change.object_id}"}
    keys = {f"ds:{change.object_id}"}
    if change.database_id:
        keys.add(f"db:{change.database_id}")
    return keys


class Relations:
    """A reverse index kept up to date by every listing; thread-safe (one leaf lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # child key -> {key of a folder listing it: the title it had there}
        self._listed_by: dict[str, dict[str, str]] = {}
        self._children: dict[str, set[str]] = {}  # folder key -> child keys it lists
        self._block_owner: dict[str, str] = {}  # block id -> key of the page folder holding it

    def record(
        self, folder_key: str, children: Iterable[tuple[str, str]], block_ids: Iterable[str]
    ) -> None:
        """``folder_key`` now lists exactly ``children`` (key, title) and holds ``block_ids``."""
        titles = dict(children)
        with self._lock:
            for gone in self._children.get(folder_key, set()) - titles.keys():
                folders = self._listed_by.get(gone)
                if folders is not None:
                    folders.pop(folder_key, None)
                    if not folders:
                        del self._listed_by[gone]
            for key, title in titles.items():
                self._listed_by.setdefault(key, {})[folder_key] = title
            self._children[folder_key] = set(titles)
            for block_id in block_ids:
                self._block_owner[block_id] = folder_key

    def block_owner(self, block_id: str) -> str | None:
        """The key of the page folder that lists block ``block_id``, if one did."""
        with self._lock:
            return self._block_owner.get(block_id)

    def affected(self, change: Change) -> set[str]:
        """Listings to drop for ``change``: the object's own folders always; a folder that
        lists it when its title there differs, it has moved away, or it is a row (the
        folder's index.csv shows its properties); and its parent's folder as search reports
        it when that folder does not list it yet (a new object, a move in). A page whose text
        changed thus re-lists its own folder only."""
        own = own_keys(change)
        keys = set(own)
        conservative = change.kind != "page" or change.is_row
        with self._lock:
            parent = self._parent_key(change)
            listing_it: dict[str, str] = {}
            for key in own:
                listing_it.update(self._listed_by.get(key, {}))
            for folder, title in listing_it.items():
                if conservative or title != change.title or folder != parent:
                    keys.add(folder)
            if parent is not None and (conservative or parent not in listing_it):
                keys.add(parent)
            if change.database_id and (change.kind == "data_source" or change.is_row):
                keys.add(f"db:{change.database_id}")  # a single-source database lists rows
        return keys

    def _parent_key(self, change: Change) -> str | None:
        """The key of the folder search says the object sits in, where known."""
        parent = change.parent_id
        if change.parent_type == "workspace":
            return ROOT_KEY
        if not parent:
            return None
        if change.parent_type == "page_id":
            return f"page:{parent}"
        if change.parent_type == "database_id":
            return f"db:{parent}"
        if change.parent_type == "data_source_id":
            return f"ds:{parent}"
        if change.parent_type == "block_id":
            return self._block_owner.get(parent)
        return None
