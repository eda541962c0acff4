"""Id index over an emulated workspace: lookup, parents, trash and sharing rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from notionfs.emulator.model import Block, Database, DataSource, FileSpec, Page, Workspace

__all__ = ["IndexEntry", "WorkspaceIndex", "id_key", "dashed_id", "Indexed"]

Indexed = Page | Database | DataSource | Block
Container = Page | Database | DataSource | Block | None  # None: the workspace

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def id_key(object_id: str) -> str | None:
    """The index key (32 lower-case hex digits) of an id given with or without dashes."""
    key = object_id.strip().replace("-", "").lower()
    return key if _HEX32.match(key) else None


def dashed_id(object_id: str) -> str:
    """The 8-4-4-4-12 form Notion answers with (ids that are not uuids pass through)."""
    key = id_key(object_id)
    if key is None:
        return object_id
    return f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:]}"


@dataclass(frozen=True)
class IndexEntry:
    obj: Indexed
    parent: Container
    trashed: bool  # in the trash itself or under something that is
    owner: Page | Database  # nearest page or database: decides sharing


class WorkspaceIndex:
    """Every page, database, data source and block of a workspace, by id.

    Built once per ``Emulator.refresh()``; read-only afterwards, so request threads can
    share it without locks.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._entries: dict[str, IndexEntry] = {}
        self.order: list[IndexEntry] = []  # document order, used by search
        self.files: dict[str, FileSpec] = {}
        for top in workspace.pages:
            self._add(top, None, False, None)
        for obj in workspace.walk():
            if isinstance(obj, FileSpec):
                self._files_add(obj)

    # ---- building -------------------------------------------------------------------------

    def _add(
        self, obj: Indexed, parent: Container, ancestor_trashed: bool, owner: Page | Database | None
    ) -> None:
        if isinstance(obj, (Page, Database)):
            owner = obj
        assert owner is not None, "a block needs a page or database above it"
        trashed = ancestor_trashed or bool(getattr(obj, "in_trash", False))
        key = self._key_of(obj)
        existing = self._entries.get(key)
        if existing is not None:
            if existing.obj is obj:
                return  # the same object placed twice: keep its first position
            raise ValueError(f"two workspace objects share the id {obj.id}")
        entry = IndexEntry(obj, parent, trashed, owner)
        self._entries[key] = entry
        self.order.append(entry)
        for child in self._structural_children(obj):
            self._add(child, obj, trashed, owner)

    @staticmethod
    def _structural_children(obj: Indexed) -> list[Indexed]:
        if isinstance(obj, (Page, Block)):
            return list(obj.children)
        if isinstance(obj, Database):
            return list(obj.data_sources)
        return list(obj.rows)  # DataSource

    @staticmethod
    def _key_of(obj: Indexed | FileSpec) -> str:
        key = id_key(obj.id)
        if key is None:
            raise ValueError(f"object id {obj.id!r} is not a uuid (call assign_ids first)")
        return key

    def _files_add(self, spec: FileSpec) -> None:
        self.files[self._key_of(spec)] = spec

    # ---- queries --------------------------------------------------------------------------

    def get(self, object_id: str) -> IndexEntry | None:
        """The entry for an id (dashes optional), or None if unknown or malformed."""
        key = id_key(object_id)
        return None if key is None else self._entries.get(key)

    def entry_of(self, obj: Indexed) -> IndexEntry:
        entry = self._entries.get(self._key_of(obj))
        if entry is None:
            raise KeyError(f"object {obj.id} is not in the workspace (call refresh)")
        return entry

    def file(self, file_id: str) -> FileSpec | None:
        key = id_key(file_id)
        return None if key is None else self.files.get(key)

    @staticmethod
    def visible(entry: IndexEntry) -> bool:
        """Whether the integration can see this object (its page or database is shared)."""
        return entry.owner.shared

    def children(self, obj: Indexed) -> list[Page | Database | Block]:
        """The children a block-children listing returns: not trashed, shared.

        A duplicate synced block lists its original's children, as Notion does.
        """
        if isinstance(obj, Block) and obj.synced_from is not None:
            source = obj.synced_from.children
        elif isinstance(obj, (Page, Block)):
            source = obj.children
        else:
            return []
        return [c for c in source if not c.in_trash and _child_shared(c)]

    def data_source_of(self, row: Page) -> DataSource | None:
        """The data source a row belongs to, or None for a page that is not a row."""
        parent = self.entry_of(row).parent
        return parent if isinstance(parent, DataSource) else None

    def database_of(self, ds: DataSource) -> Database:
        parent = self.entry_of(ds).parent
        assert isinstance(parent, Database)
        return parent


def _child_shared(child: Page | Database | Block) -> bool:
    return child.shared if isinstance(child, (Page, Database)) else True
