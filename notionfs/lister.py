"""What a folder holds, asked of Notion: the root, a page, a database, a data source, a
files property. Pure translation from API objects to ``Found`` items; naming, inodes and
caching are the workspace's business."""

from __future__ import annotations

import concurrent.futures
import contextvars
import posixpath
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from .client import NotionClient
from .errors import NotFoundError
from .fileurl import Resolver
from .models import FILE_BLOCK_TYPES, Block, Database, FileRef, Page, Parent
from .naming import file_name_from_url
from .nodes import Kind, Node, Role
from .render.inline import notion_url
from .render.markdown import BlockNode, collect_nodes
from .resolvers import block_file, page_media, property_file, url_path

__all__ = ["FILES_PROPERTY_MARK", "Found", "Source", "Titles", "NotionLister"]

# A files property's folder key: "<row's key>/prop:<property id>"; its entries' keys add
# "/<position>:<URL path>".
FILES_PROPERTY_MARK = "/prop:"


@dataclass(frozen=True)
class Found:
    """One thing a listing found, before it is named."""

    kind: Kind
    key: str
    raw_name: str
    order: str
    object_id: str | None
    ctime_s: float
    mtime_s: float
    notion_url: str | None = None
    role: Role = Role.NONE
    # files only
    file_ref: FileRef | None = None
    file_key: str | None = None  # the file's identity: owner, version and URL path
    resolver: Resolver | None = None
    # folders that list from their owner's data
    files: tuple[FileRef, ...] = ()
    owner_id: str | None = None


@dataclass
class Source:
    """What a folder's listing fetched, kept to render its generated file without API calls."""

    page: Page | None = None
    blocks: tuple[BlockNode, ...] = ()
    rows: list[Page] = field(default_factory=list)
    several_sources: bool = False


class Titles:
    """Every title seen, by object id, for mentions, relations and link texts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._titles: dict[str, str] = {}

    def update(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self._titles.update(pairs)

    def get(self, object_id: str) -> str | None:
        with self._lock:
            return self._titles.get(object_id)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._titles)


def _ts(value: datetime) -> float:
    return value.timestamp()


def _ext_of(url: str) -> str:
    name = file_name_from_url(url) or ""
    _, ext = posixpath.splitext(name)
    return ext if 0 < len(ext) <= 10 else ""


class NotionLister:
    """Lists one folder from Notion; thread-safe (it holds no state but the titles)."""

    def __init__(
        self,
        client: NotionClient,
        titles: Titles,
        pool: concurrent.futures.Executor | None = None,
    ) -> None:
        self._client = client
        self._titles = titles
        self._pool = pool  # fetches the children of sibling containers at once

    def list_folder(self, folder: Node) -> tuple[list[Found], Source]:
        source = Source()
        kind = folder.kind
        if kind is Kind.ROOT:
            found = list(self._root())
        elif kind is Kind.PAGE:
            found = list(self._page(folder, source))
        elif kind is Kind.DATABASE:
            found = list(self._database(folder, source))
        elif kind is Kind.DATA_SOURCE:
            assert folder.owner_id is not None and folder.object_id is not None
            database = self._client.get_database(folder.owner_id)
            found = list(self._rows(folder, database, folder.object_id, source))
        elif kind is Kind.FILES_PROPERTY:
            found = list(self._files_property(folder))
        else:
            raise ValueError(f"{kind} is not a folder")
        return found, source

    # root: every reachable page or database whose parent is the workspace or unreachable
    def _root(self) -> Iterator[Found]:
        objects = list(self._client.search_all())
        reachable = {o.id for o in objects}
        self._titles.update((o.id, o.title) for o in objects)
        block_cache: dict[str, bool] = {}
        for obj in objects:
            hidden = obj.hidden if isinstance(obj, Page) else obj.in_trash
            if hidden or self._parent_reachable(obj.parent, reachable, block_cache):
                continue
            yield _object(obj)

    def _parent_reachable(
        self, parent: Parent, reachable: set[str], block_cache: dict[str, bool]
    ) -> bool:
        if parent.type == "workspace" or parent.id is None:
            return False
        if parent.type in ("page_id", "database_id"):
            return parent.id in reachable
        if parent.type == "data_source_id":
            return parent.database_id in reachable or parent.id in reachable
        if parent.type == "block_id":
            # A page nested in a toggle or column: climb to the page that holds the block.
            if parent.id not in block_cache:
                try:
                    block = self._client.get_block(parent.id)
                    block_cache[parent.id] = self._parent_reachable(
                        block.parent, reachable, block_cache
                    )
                except NotFoundError:
                    block_cache[parent.id] = False
            return block_cache[parent.id]
        return False

    # pages: child pages/databases and file blocks anywhere in the block tree, cover, icon
    def _page(self, folder: Node, source: Source) -> Iterator[Found]:
        assert folder.object_id is not None
        page = self._client.get_page(folder.object_id)
        page_url = page.url or notion_url(page.id)
        source.page = page
        source.blocks = self._block_tree(page.id)
        self._titles.update([(page.id, page.title), *_child_titles(source.blocks)])
        yield from self._page_media(folder.key, page, page_url)
        yield from self._blocks(folder.key, source.blocks, page_url, set())
        # Every files property, empty ones too: a read-only mount shows only those holding
        # files, a writable one all of them, as folders to drop files into (the workspace
        # chooses, so its cache on disk serves either).
        for prop in page.files_properties:
            yield Found(
                kind=Kind.FILES_PROPERTY,
                key=f"{folder.key}{FILES_PROPERTY_MARK}{prop.id}",
                raw_name=prop.name,
                order=f"0|prop|{prop.name}|{prop.id}",
                object_id=page.id,
                ctime_s=_ts(page.created_time),
                mtime_s=_ts(page.last_edited_time),
                notion_url=page_url,
                files=prop.files,
                owner_id=prop.id,
            )

    def _block_tree(self, page_id: str) -> tuple[BlockNode, ...]:
        """Every block of the page, entering containers (toggles, columns, callouts, synced
        blocks) but not child pages: level by level, the children of all the containers of
        one level fetched at once (latency hidden; the client's rate limit still paces them).
        Same result as render.markdown.collect_nodes, which fetches one after another."""
        if self._pool is None:
            return collect_nodes(page_id, self._client.block_children)
        top = [b for b in self._client.block_children(page_id) if not b.in_trash]
        kids: dict[str, list[Block]] = {}
        level = [b for b in top if _entered(b)]
        while level:
            # Each fetch runs in the caller's context: a background listing stays background.
            futures = {
                b.id: self._pool.submit(
                    contextvars.copy_context().run, _children_list, self._client, b.id
                )
                for b in level
            }
            found = {block_id: future.result() for block_id, future in futures.items()}
            kids.update(found)
            level = [b for blocks in found.values() for b in blocks if _entered(b)]
        return _assemble(top, kids)

    def _page_media(self, folder_key: str, page: Page, page_url: str) -> Iterator[Found]:
        slots: list[tuple[Role, FileRef]] = []
        if page.cover is not None:
            slots.append((Role.COVER, page.cover))
        if page.icon is not None and page.icon.file is not None:
            slots.append((Role.ICON, page.icon.file))
        for role, ref in slots:
            slot = role.value
            yield Found(
                kind=Kind.FILE,
                key=f"{folder_key}/{slot}",
                raw_name=slot + _ext_of(ref.url),
                order=f"0|{slot}",
                object_id=page.id,
                ctime_s=_ts(page.created_time),
                mtime_s=_ts(page.last_edited_time),
                notion_url=page_url,
                role=role,
                file_ref=ref,
                file_key=f"{page.id}:{slot}:{url_path(ref.url)}",
                resolver=page_media(self._client, page.id, slot, ref),
            )

    def _blocks(
        self, folder_key: str, nodes: tuple[BlockNode, ...], page_url: str, seen: set[str]
    ) -> Iterator[Found]:
        for node in nodes:
            block = node.block
            if block.id in seen:  # a synced copy in the same page: one file is enough
                continue
            seen.add(block.id)
            if block.type in ("child_page", "child_database"):
                yield _block_object(block)
            elif block.type in FILE_BLOCK_TYPES and block.file is not None:
                yield self._block_file(folder_key, block, page_url)
            yield from self._blocks(folder_key, node.children, page_url, seen)

    def _block_file(self, folder_key: str, block: Block, page_url: str) -> Found:
        ref = block.file
        assert ref is not None
        raw = ref.name or file_name_from_url(ref.url) or f"{block.type}{_ext_of(ref.url)}"
        return Found(
            kind=Kind.FILE,
            key=f"{folder_key}/block:{block.id}",
            raw_name=raw,
            order=f"{block.created_time.isoformat()}|{block.id}",
            object_id=block.id,
            ctime_s=_ts(block.created_time),
            mtime_s=_ts(block.last_edited_time),
            notion_url=f"{page_url}#{block.id.replace('-', '')}",
            role=Role.BLOCK,
            file_ref=ref,
            file_key=f"{block.id}:{block.last_edited_time.isoformat()}:{url_path(ref.url)}",
            resolver=block_file(self._client, block.id, ref),
        )

    # databases: rows, or one folder per data source when there are several
    def _database(self, folder: Node, source: Source) -> Iterator[Found]:
        assert folder.object_id is not None
        database = self._client.get_database(folder.object_id)
        self._titles.update([(database.id, database.title)])
        if len(database.data_sources) == 1:
            yield from self._rows(folder, database, database.data_sources[0].id, source)
            return
        source.several_sources = True
        for ds in database.data_sources:
            yield Found(
                kind=Kind.DATA_SOURCE,
                key=f"ds:{ds.id}",
                raw_name=ds.name,
                order=f"{ds.id}",
                object_id=ds.id,
                ctime_s=_ts(database.created_time),
                mtime_s=_ts(database.last_edited_time),
                notion_url=database.url or notion_url(database.id),
                owner_id=database.id,
            )

    def _rows(
        self, folder: Node, database: Database, data_source_id: str, source: Source
    ) -> Iterator[Found]:
        for row in self._client.query_rows(database, data_source_id):
            if not row.hidden:
                self._titles.update([(row.id, row.title)])
                source.rows.append(row)
                yield _object(row)

    def _files_property(self, folder: Node) -> Iterator[Found]:
        page_id, prop_id = folder.object_id, folder.owner_id
        assert page_id is not None and prop_id is not None
        for index, ref in enumerate(folder.files):
            raw = ref.name or file_name_from_url(ref.url) or f"file{index + 1}"
            yield Found(
                kind=Kind.FILE,
                key=f"{folder.key}/{index}:{url_path(ref.url)}",
                raw_name=raw,
                order=f"{index:06d}",
                object_id=page_id,
                ctime_s=folder.ctime_s,
                mtime_s=folder.mtime_s,
                notion_url=folder.notion_url,
                role=Role.PROPERTY,
                file_ref=ref,
                file_key=f"{page_id}:prop:{prop_id}:{index}:{url_path(ref.url)}",
                resolver=property_file(self._client, page_id, prop_id, ref),
            )


def _object(obj: Page | Database) -> Found:
    kind = Kind.PAGE if isinstance(obj, Page) else Kind.DATABASE
    prefix = "page" if kind is Kind.PAGE else "db"
    return Found(
        kind=kind,
        key=f"{prefix}:{obj.id}",
        raw_name=obj.title,
        order=f"{obj.created_time.isoformat()}|{obj.id}",
        object_id=obj.id,
        ctime_s=_ts(obj.created_time),
        mtime_s=_ts(obj.last_edited_time),
        notion_url=obj.url or notion_url(obj.id),
    )


def _block_object(block: Block) -> Found:
    is_page = block.type == "child_page"
    return Found(
        kind=Kind.PAGE if is_page else Kind.DATABASE,
        key=f"{'page' if is_page else 'db'}:{block.id}",
        raw_name=block.title or "",
        order=f"{block.created_time.isoformat()}|{block.id}",
        object_id=block.id,
        ctime_s=_ts(block.created_time),
        mtime_s=_ts(block.last_edited_time),
        notion_url=notion_url(block.id),
    )


def _entered(block: Block) -> bool:
    return block.has_children and block.type not in ("child_page", "child_database")


def _children_list(client: NotionClient, block_id: str) -> list[Block]:
    return [b for b in client.block_children(block_id) if not b.in_trash]


def _assemble(blocks: list[Block], kids: dict[str, list[Block]]) -> tuple[BlockNode, ...]:
    return tuple(
        BlockNode(b, _assemble(kids.get(b.id, []), kids) if _entered(b) else ()) for b in blocks
    )


def _child_titles(nodes: tuple[BlockNode, ...]) -> Iterator[tuple[str, str]]:
    for node in nodes:
        block = node.block
        if block.type in ("child_page", "child_database") and block.title is not None:
            yield block.id, block.title
        yield from _child_titles(node.children)

