"""The workspace as a path tree: lookup, lazy TTL-cached listings, stable names and inodes."""

from __future__ import annotations

import concurrent.futures
import enum
import hashlib
import logging
import posixpath
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from .blockcache import BlockCache
from .client import NotionClient
from .config import Settings
from .errors import (
    ApiError,
    NetworkError,
    NotFoundError,
    NotionFSError,
    ServerError,
    StaleFileError,
)
from .models import Block, Database, FileRef, Page, Parent
from .naming import NameRequest, assign_names, file_name_from_url
from .remote import Location, RemoteFile
from .render.markdown import BlockNode, render_page
from .render.properties import row_properties
from .render.table import render_csv

__all__ = ["Kind", "Entry", "Tree", "Reader", "PROBE_NAMES", "PAGE_TEXT_NAME", "TABLE_NAME"]

# Generated files: the page's content as Markdown, a database's rows as CSV. Their names are
# reserved in their folders, so an attachment called the same gets a suffix instead.
PAGE_TEXT_NAME = "index.md"
TABLE_NAME = "index.csv"

logger = logging.getLogger(__name__)

FILE_BLOCK_TYPES = frozenset({"image", "video", "audio", "file", "pdf"})
# Names that shells and file managers probe in every folder; they never exist in Notion, so
# they answer "no such file" at once, without listing the folder first.
PROBE_NAMES = frozenset(
    {
        ".hidden",
        ".Trash",
        ".Trash-0",
        ".Trash-1000",
        ".xdg-volume-info",
        ".DS_Store",
        ".directory",
        "desktop.ini",
        "Desktop.ini",
        "Thumbs.db",
        "autorun.inf",
        "AutoRun.inf",
        ".git",
        ".svn",
        ".hg",
        ".localized",
        ".metadata_never_index",
        ".Spotlight-V100",
        ".fseventsd",
        ".VolumeIcon.icns",
        ".comments",
        ".thumbnails",
        ".autorun.inf",
        "Autorun.inf",
    }
)

# AppleDouble companions ("._photo.jpg") that macOS and Samba clients probe for every file.
PROBE_PREFIXES = ("._",)


def is_probe_name(name: str) -> bool:
    return name in PROBE_NAMES or name.startswith(PROBE_PREFIXES)


class Reader(Protocol):
    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None: ...


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def close(self) -> None:
        pass


class Kind(enum.Enum):
    ROOT = "root"
    PAGE = "page"
    DATABASE = "database"
    DATA_SOURCE = "data_source"
    FILES_PROPERTY = "files_property"
    FILE = "file"
    GENERATED = "generated"  # index.md / index.csv, rendered from the folder's listing

    @property
    def is_dir(self) -> bool:
        return self not in (Kind.FILE, Kind.GENERATED)


@dataclass(eq=False)
class Entry:
    """One node of the tree. Directories carry their cached listing; files a RemoteFile."""

    kind: Kind
    key: str  # stable identity within the mount: drives the inode number
    name: str
    inode: int
    object_id: str | None = None
    ctime_s: float = 0.0
    mtime_s: float = 0.0
    notion_url: str | None = None
    remote: RemoteFile | None = None
    # Owner data a directory needs to list itself: a row's files property and its id, or
    # the database of a data source.
    files: tuple[FileRef, ...] = ()
    owner_id: str | None = None
    # Listing cache (directories only).
    children: dict[str, Entry] | None = None
    listed_at: float = float("-inf")
    list_lock: threading.Lock = field(default_factory=threading.Lock)
    # What a listing fetched that its generated file renders from (page + block tree, or rows).
    source: _Source | None = None
    # Generated files: the renderer and, once rendered, the bytes.
    render: Callable[[], bytes] | None = None
    content: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind.is_dir


@dataclass
class _Child:
    """What a listing found, before names are assigned."""

    kind: Kind
    key: str
    raw_name: str
    order: str
    object_id: str | None
    ctime_s: float
    mtime_s: float
    notion_url: str | None = None
    # files only
    file_ref: FileRef | None = None
    file_key: str | None = None
    resolver: Callable[[bool], Location] | None = None
    files: tuple[FileRef, ...] = ()
    owner_id: str | None = None


@dataclass
class _Source:
    """What a folder's listing fetched, kept to render its generated file without API calls."""

    page: Page | None = None
    blocks: tuple[BlockNode, ...] = ()
    rows: list[Page] = field(default_factory=list)
    several_sources: bool = False


def _ts(value: datetime) -> float:
    return value.timestamp()


def _page_link(object_id: str) -> str:
    return "https://www.notion.so/" + object_id.replace("-", "")


def _location(ref: FileRef) -> Location:
    return Location(url=ref.url, expires_at=ref.expires_at(), external=ref.kind == "external")


def _url_path(url: str) -> str:
    return urlsplit(url).path


def _ext_of(url: str) -> str:
    name = file_name_from_url(url) or ""
    _, ext = posixpath.splitext(name)
    return ext if 0 < len(ext) <= 10 else ""


class Tree:
    """Maps paths to entries. Thread-safe; every listing is cached for ``metadata_ttl_s``."""

    def __init__(
        self,
        client: NotionClient,
        files_http: httpx.Client,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._files_http = files_http
        self._settings = settings
        self._clock = clock
        self.cache = BlockCache(settings.cache_size_bytes, settings.block_size_bytes)
        self._fetch_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.fetch_workers, thread_name_prefix="notionfs-fetch"
        )
        self._probe_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.probe_workers, thread_name_prefix="notionfs-probe"
        )
        self._inodes: dict[str, int] = {}
        self._inode_lock = threading.Lock()
        # One RemoteFile per file identity while any entry holds it (shared by the synced
        # copies of a block across pages); forgotten once no listing refers to it.
        self._remotes: weakref.WeakValueDictionary[str, RemoteFile] = (
            weakref.WeakValueDictionary()
        )
        self._titles: dict[str, str] = {}  # every title seen, for mentions and relations
        self._probe_failed_at: dict[str, float] = {}  # file key -> when its probe last failed
        mounted_at = time.time()
        self.root = Entry(
            Kind.ROOT, key="root", name="", inode=1, ctime_s=mounted_at, mtime_s=mounted_at
        )
        self._inodes["root"] = 1

    def close(self) -> None:
        self._probe_pool.shutdown(wait=False, cancel_futures=True)
        self._fetch_pool.shutdown(wait=False, cancel_futures=True)

    # ---- paths --------------------------------------------------------------------------

    def lookup(self, path: str) -> Entry | None:
        """The entry at ``path`` ("/a/b"), or None when nothing is there."""
        entry = self.root
        for part in (p for p in path.split("/") if p):
            if not entry.is_dir:
                return None
            child = self.child(entry, part)
            if child is None:
                return None
            entry = child
        return entry

    def lookup_cached(self, path: str) -> Entry | None:
        """Like lookup, from listings already held (fresh or stale); never touches the network."""
        entry = self.root
        for part in (p for p in path.split("/") if p):
            found = entry.children.get(part) if entry.children else None
            if found is None:
                return None
            entry = found
        return entry

    def lookup_fresh(self, path: str) -> tuple[bool, Entry | None]:
        """Answer a lookup from fresh listings alone: ``(True, entry or None)`` when memory
        knows the answer, ``(False, None)`` when some folder on the way must be listed."""
        entry = self.root
        for part in (p for p in path.split("/") if p):
            if not entry.is_dir:
                return True, None
            if not self._fresh(entry) and not is_probe_name(part):
                return False, None
            found = entry.children.get(part) if entry.children else None
            if found is None:
                return True, None
            entry = found
        return True, entry

    def is_fresh(self, directory: Entry) -> bool:
        return self._fresh(directory)

    def child(self, directory: Entry, name: str) -> Entry | None:
        """One name in a directory. Well-known probe names cost nothing, listed or not."""
        if is_probe_name(name) and not self._fresh(directory):
            # A stale listing (or none) is good enough to say "no" to a name that never exists.
            return directory.children.get(name) if directory.children else None
        return self._listing(directory).get(name)

    def listdir(self, directory: Entry) -> list[Entry]:
        children = list(self._listing(directory).values())
        self._probe_sizes(children)
        return children

    # ---- files --------------------------------------------------------------------------

    def size(self, entry: Entry) -> int:
        if entry.kind is Kind.GENERATED:
            return len(self._generated(entry))
        if entry.remote is None:
            return 0
        return entry.remote.size()

    def known_size(self, entry: Entry) -> int | None:
        """The size if known without any I/O (for stale answers past a deadline)."""
        if entry.kind is Kind.GENERATED:
            return None if entry.content is None else len(entry.content)
        return entry.remote.known_size if entry.remote is not None else None

    def identity(self, entry: Entry) -> str:
        """Changes exactly when the file's bytes may have changed (for the kernel page cache)."""
        if entry.kind is Kind.GENERATED:
            return "generated:" + hashlib.sha256(self._generated(entry)).hexdigest()
        assert entry.remote is not None
        return entry.remote.key

    def open(self, entry: Entry) -> Reader:
        if entry.kind is Kind.GENERATED:
            return _BytesReader(self._generated(entry))
        assert entry.remote is not None
        return entry.remote.reader()

    def _generated(self, entry: Entry) -> bytes:
        content = entry.content
        if content is None:
            with entry.list_lock:  # one render for all callers (it may fetch property values)
                content = entry.content
                if content is None:
                    assert entry.render is not None
                    content = entry.content = entry.render()
        return content

    def _probe_sizes(self, children: list[Entry]) -> None:
        """Probe every file's size in parallel; the probe also brings the file's first bytes.
        A probe under way is not asked again, nor one that failed within the metadata TTL
        (a later stat still tries, and says why it fails)."""
        now = self._clock()
        for entry in children:
            remote = entry.remote
            if remote is None or remote.known_size is not None or remote.probing:
                continue
            failed_at = self._probe_failed_at.get(remote.key)
            if failed_at is not None and now - failed_at < self._settings.metadata_ttl_s:
                continue
            self._probe_pool.submit(self._probe_quietly, remote)

    def _probe_quietly(self, remote: RemoteFile) -> None:
        try:
            remote.size()
        except NotionFSError as exc:
            self._probe_failed_at[remote.key] = self._clock()
            logger.info("size probe failed for %s: %s", remote.key, exc)
        except Exception:
            self._probe_failed_at[remote.key] = self._clock()
            logger.exception("size probe failed for %s", remote.key)
        else:
            self._probe_failed_at.pop(remote.key, None)

    # ---- listings ----------------------------------------------------------------------

    def _fresh(self, directory: Entry) -> bool:
        return (
            directory.children is not None
            and self._clock() - directory.listed_at < self._settings.metadata_ttl_s
        )

    def invalidate(self, directory: Entry) -> None:
        directory.listed_at = float("-inf")

    def _listing(self, directory: Entry) -> dict[str, Entry]:
        if self._fresh(directory):
            assert directory.children is not None
            return directory.children
        held = directory.children
        # Stale while revalidating: when another caller is already listing this folder anew,
        # answer from the listing held rather than queue behind a slow Notion.
        if not directory.list_lock.acquire(blocking=held is None):
            assert held is not None
            return held
        try:
            if self._fresh(directory):  # another thread listed it while we waited
                assert directory.children is not None
                return directory.children
            return self._relist(directory)
        finally:
            directory.list_lock.release()

    def _relist(self, directory: Entry) -> dict[str, Entry]:
        source = _Source()
        try:
            found = list(self._list_children(directory, source))
        except (NetworkError, ServerError, ApiError) as exc:
            if directory.children is not None and not isinstance(exc, NotFoundError):
                logger.warning(
                    "serving stale listing of %r: Notion failed: %s", directory.name, exc
                )
                return directory.children
            raise
        directory.source = source
        directory.children = self._materialise(directory, found)
        directory.listed_at = self._clock()
        return directory.children

    def _materialise(self, directory: Entry, found: list[_Child]) -> dict[str, Entry]:
        generated = self._generated_name(directory)
        names = assign_names(
            [
                NameRequest(key=c.key, raw=c.raw_name, order=c.order, is_file=not c.kind.is_dir)
                for c in found
            ],
            reserved=(generated,) if generated else (),
        )
        old = {e.key: e for e in (directory.children or {}).values()}
        result: dict[str, Entry] = {}
        for c in found:
            entry = old.get(c.key)
            # A file's inode follows its identity, so a replaced file is a new inode with a
            # page cache of its own; readers of the old version never see the new bytes.
            inode_key = c.key if c.file_key is None else f"{c.key}@{c.file_key}"
            if entry is None or entry.kind is not c.kind or entry.inode != self._inode(inode_key):
                entry = Entry(c.kind, key=c.key, name="", inode=self._inode(inode_key))
            elif c.kind.is_dir and (entry.mtime_s, entry.ctime_s) != (c.mtime_s, c.ctime_s):
                self.invalidate(entry)  # edited in Notion: list it anew on next access
            entry.name = names[c.key]
            entry.object_id = c.object_id
            entry.ctime_s, entry.mtime_s = c.ctime_s, c.mtime_s
            entry.notion_url = c.notion_url
            entry.files = c.files
            entry.owner_id = c.owner_id
            if c.kind is Kind.FILE:
                entry.remote = self._remote_for(c)
            result[entry.name] = entry
        if generated:
            result[generated] = self._generated_entry(directory, generated, result)
        return result

    @staticmethod
    def _generated_name(directory: Entry) -> str | None:
        if directory.kind is Kind.PAGE:
            return PAGE_TEXT_NAME
        if directory.kind is Kind.DATA_SOURCE or (
            directory.kind is Kind.DATABASE
            and directory.source is not None
            and not directory.source.several_sources
        ):
            return TABLE_NAME
        return None

    def _generated_entry(
        self, directory: Entry, name: str, siblings: dict[str, Entry]
    ) -> Entry:
        key = f"{directory.key}/{name}"
        entry = Entry(
            Kind.GENERATED,
            key=key,
            name=name,
            inode=self._inode(key),
            object_id=directory.object_id,
            ctime_s=directory.ctime_s,
            mtime_s=directory.mtime_s,
            notion_url=directory.notion_url,
        )
        source = directory.source
        assert source is not None
        if name == PAGE_TEXT_NAME:
            entry.render = lambda: self._render_page(source, siblings)
        else:
            entry.render = lambda: self._render_table(source)
        return entry

    def _render_page(self, source: _Source, siblings: dict[str, Entry]) -> bytes:
        assert source.page is not None
        links = _FolderLinks(siblings, self._titles)
        by_slot = {e.key.rsplit("/", 1)[-1]: e.name for e in siblings.values()}
        properties = None
        if source.page.parent.type in ("database_id", "data_source_id"):
            properties = row_properties(
                source.page, fetch=self._client.page_property, title=self._titles.get
            )
        text = render_page(
            source.page,
            source.blocks,
            links,
            properties=properties,
            cover=quote(by_slot["cover"]) if "cover" in by_slot else None,
            icon=quote(by_slot["icon"]) if "icon" in by_slot else None,
        )
        return text.encode("utf-8")

    def _render_table(self, source: _Source) -> bytes:
        return render_csv(
            source.rows, columns=None, fetch=self._client.page_property, title=self._titles.get
        )

    def _inode(self, key: str) -> int:
        with self._inode_lock:
            ino = self._inodes.get(key)
            if ino is None:
                ino = len(self._inodes) + 1
                self._inodes[key] = ino
            return ino

    def _remote_for(self, c: _Child) -> RemoteFile:
        assert c.file_key is not None and c.resolver is not None
        with self._inode_lock:
            remote = self._remotes.get(c.file_key)
            if remote is None:
                remote = RemoteFile(
                    c.file_key,
                    c.resolver,
                    self._files_http,
                    self.cache,
                    self._settings,
                    executor=self._fetch_pool,
                )
                self._remotes[c.file_key] = remote
            else:
                assert c.file_ref is not None
                remote.offer(_location(c.file_ref))
            return remote

    def _list_children(self, directory: Entry, source: _Source) -> Iterator[_Child]:
        kind = directory.kind
        if kind is Kind.ROOT:
            yield from self._list_root()
        elif kind is Kind.PAGE:
            yield from self._list_page(directory, source)
        elif kind is Kind.DATABASE:
            yield from self._list_database(directory, source)
        elif kind is Kind.DATA_SOURCE:
            assert directory.owner_id is not None and directory.object_id is not None
            database = self._client.get_database(directory.owner_id)
            yield from self._rows(directory, database, directory.object_id, source)
        elif kind is Kind.FILES_PROPERTY:
            yield from self._list_files_property(directory)

    # root: every reachable page or database whose parent is the workspace or unreachable
    def _list_root(self) -> Iterator[_Child]:
        objects = list(self._client.search_all())
        reachable = {o.id for o in objects}
        self._titles.update((o.id, o.title) for o in objects)
        block_cache: dict[str, bool] = {}
        for obj in objects:
            if obj.in_trash or self._parent_reachable(obj.parent, reachable, block_cache):
                continue
            yield self._object_child("root", obj)

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

    def _object_child(self, dir_key: str, obj: Page | Database) -> _Child:
        kind = Kind.PAGE if isinstance(obj, Page) else Kind.DATABASE
        prefix = "page" if kind is Kind.PAGE else "db"
        return _Child(
            kind=kind,
            key=f"{prefix}:{obj.id}",
            raw_name=obj.title,
            order=f"{obj.created_time.isoformat()}|{obj.id}",
            object_id=obj.id,
            ctime_s=_ts(obj.created_time),
            mtime_s=_ts(obj.last_edited_time),
            notion_url=obj.url or _page_link(obj.id),
        )

    # pages: child pages/databases and file blocks anywhere in the block tree, cover, icon
    def _list_page(self, directory: Entry, source: _Source) -> Iterator[_Child]:
        assert directory.object_id is not None
        page = self._client.get_page(directory.object_id)
        self._titles[page.id] = page.title
        page_url = page.url or _page_link(page.id)
        source.page = page
        source.blocks = self._block_tree(page.id)
        yield from self._page_media(directory.key, page, page_url)
        yield from self._blocks_children(directory.key, source.blocks, page_url, set())
        for prop in page.files_properties:
            if prop.files:
                yield _Child(
                    kind=Kind.FILES_PROPERTY,
                    key=f"{directory.key}/prop:{prop.id}",
                    raw_name=prop.name,
                    order=f"0|prop|{prop.name}|{prop.id}",
                    object_id=page.id,
                    ctime_s=_ts(page.created_time),
                    mtime_s=_ts(page.last_edited_time),
                    notion_url=page_url,
                    files=prop.files,
                    owner_id=prop.id,
                )

    def _page_media(self, dir_key: str, page: Page, page_url: str) -> Iterator[_Child]:
        slots: list[tuple[str, FileRef]] = []
        if page.cover is not None:
            slots.append(("cover", page.cover))
        if page.icon is not None and page.icon.file is not None:
            slots.append(("icon", page.icon.file))
        for slot, ref in slots:
            yield _Child(
                kind=Kind.FILE,
                key=f"{dir_key}/{slot}",
                raw_name=slot + _ext_of(ref.url),
                order=f"0|{slot}",
                object_id=page.id,
                ctime_s=_ts(page.created_time),
                mtime_s=_ts(page.last_edited_time),
                notion_url=page_url,
                file_ref=ref,
                file_key=f"{page.id}:{slot}:{_url_path(ref.url)}",
                resolver=self._page_file_resolver(page.id, slot, ref),
            )

    def _block_tree(self, parent_id: str) -> tuple[BlockNode, ...]:
        """Every block under ``parent_id``, descending into containers (toggles, columns,
        callouts, synced blocks, ...) but not into child pages and databases."""
        nodes = []
        for block in self._client.block_children(parent_id):
            if block.in_trash:
                continue
            if block.type in ("child_page", "child_database"):
                if block.title is not None:
                    self._titles[block.id] = block.title
                nodes.append(BlockNode(block, ()))
            elif block.has_children:
                nodes.append(BlockNode(block, self._block_tree(block.id)))
            else:
                nodes.append(BlockNode(block, ()))
        return tuple(nodes)

    def _blocks_children(
        self, dir_key: str, nodes: tuple[BlockNode, ...], page_url: str, seen: set[str]
    ) -> Iterator[_Child]:
        for node in nodes:
            block = node.block
            if block.id in seen:  # a synced copy in the same page: one file is enough
                continue
            seen.add(block.id)
            if block.type in ("child_page", "child_database"):
                yield self._block_object_child(dir_key, block)
            elif block.type in FILE_BLOCK_TYPES and block.file is not None:
                yield self._block_file_child(dir_key, block, page_url)
            yield from self._blocks_children(dir_key, node.children, page_url, seen)

    def _block_object_child(self, dir_key: str, block: Block) -> _Child:
        is_page = block.type == "child_page"
        return _Child(
            kind=Kind.PAGE if is_page else Kind.DATABASE,
            key=f"{'page' if is_page else 'db'}:{block.id}",
            raw_name=block.title or "",
            order=f"{block.created_time.isoformat()}|{block.id}",
            object_id=block.id,
            ctime_s=_ts(block.created_time),
            mtime_s=_ts(block.last_edited_time),
            notion_url=_page_link(block.id),
        )

    def _block_file_child(self, dir_key: str, block: Block, page_url: str) -> _Child:
        ref = block.file
        assert ref is not None
        raw = ref.name or file_name_from_url(ref.url) or f"{block.type}{_ext_of(ref.url)}"
        return _Child(
            kind=Kind.FILE,
            key=f"{dir_key}/block:{block.id}",
            raw_name=raw,
            order=f"{block.created_time.isoformat()}|{block.id}",
            object_id=block.id,
            ctime_s=_ts(block.created_time),
            mtime_s=_ts(block.last_edited_time),
            notion_url=f"{page_url}#{block.id.replace('-', '')}",
            file_ref=ref,
            file_key=f"{block.id}:{block.last_edited_time.isoformat()}:{_url_path(ref.url)}",
            resolver=self._block_file_resolver(block.id, ref),
        )

    # databases: rows, or one folder per data source when there are several
    def _list_database(self, directory: Entry, source: _Source) -> Iterator[_Child]:
        assert directory.object_id is not None
        database = self._client.get_database(directory.object_id)
        self._titles[database.id] = database.title
        if len(database.data_sources) == 1:
            yield from self._rows(directory, database, database.data_sources[0].id, source)
            return
        source.several_sources = True
        for ds in database.data_sources:
            yield _Child(
                kind=Kind.DATA_SOURCE,
                key=f"ds:{ds.id}",
                raw_name=ds.name,
                order=f"{ds.id}",
                object_id=ds.id,
                ctime_s=_ts(database.created_time),
                mtime_s=_ts(database.last_edited_time),
                notion_url=database.url or _page_link(database.id),
                owner_id=database.id,
            )

    def _rows(
        self, directory: Entry, database: Database, data_source_id: str, source: _Source
    ) -> Iterator[_Child]:
        for row in self._client.query_rows(database, data_source_id):
            if not row.in_trash:
                self._titles[row.id] = row.title
                source.rows.append(row)
                yield self._object_child(directory.key, row)

    def _list_files_property(self, directory: Entry) -> Iterator[_Child]:
        assert directory.object_id is not None
        page_id = directory.object_id
        prop_id = directory.owner_id
        assert prop_id is not None
        for index, ref in enumerate(directory.files):
            raw = ref.name or file_name_from_url(ref.url) or f"file{index + 1}"
            yield _Child(
                kind=Kind.FILE,
                key=f"{directory.key}/{index}:{_url_path(ref.url)}",
                raw_name=raw,
                order=f"{index:06d}",
                object_id=page_id,
                ctime_s=directory.ctime_s,
                mtime_s=directory.mtime_s,
                notion_url=directory.notion_url,
                file_ref=ref,
                file_key=f"{page_id}:prop:{prop_id}:{index}:{_url_path(ref.url)}",
                resolver=self._property_file_resolver(page_id, prop_id, index, ref),
            )

    # ---- URL refresh: re-fetch the object that owns the file ---------------------------

    def _block_file_resolver(self, block_id: str, ref: FileRef) -> Callable[[bool], Location]:
        return _resolver(ref, lambda: self._client.get_block(block_id).file, "the file block")

    def _page_file_resolver(
        self, page_id: str, slot: str, ref: FileRef
    ) -> Callable[[bool], Location]:
        def fetch() -> FileRef | None:
            page = self._client.get_page(page_id)
            if slot == "cover":
                return page.cover
            return page.icon.file if page.icon else None

        return _resolver(ref, fetch, f"the page's {slot}")

    def _property_file_resolver(
        self, page_id: str, prop_id: str, index: int, ref: FileRef
    ) -> Callable[[bool], Location]:
        path = _url_path(ref.url)

        def fetch() -> FileRef | None:
            for prop in self._client.get_page(page_id).files_properties:
                if prop.id == prop_id:
                    # Same file: same URL path (the query string is what changes).
                    return next((f for f in prop.files if _url_path(f.url) == path), None)
            return None

        return _resolver(ref, fetch, "the files property")


def _resolver(
    ref: FileRef, fetch: Callable[[], FileRef | None], owner: str
) -> Callable[[bool], Location]:
    """Hands out the file's current signed URL; ``force`` asks Notion for a fresh one.

    A fresh URL with another path is another file (Notion gives a replaced file a new path):
    the open handle fails with ESTALE rather than mixing the bytes of two versions.
    """
    current = [_location(ref)]
    path = _url_path(ref.url)

    def resolve(force: bool) -> Location:
        if force:
            fresh = fetch()
            if fresh is None:
                raise NotFoundError(404, "object_not_found", f"{owner} holds no file any more")
            if _url_path(fresh.url) != path:
                raise StaleFileError(f"{owner} now holds another file: reopen it")
            current[0] = _location(fresh)
        return current[0]

    return resolve

class _FolderLinks:
    """Relative links from a folder's index.md to what sits beside it."""

    def __init__(self, siblings: dict[str, Entry], titles: dict[str, str]) -> None:
        self._dirs: dict[str, str] = {}
        self._files: dict[str, str] = {}
        for entry in siblings.values():
            if entry.object_id is None:
                continue
            if entry.kind in (Kind.PAGE, Kind.DATABASE):
                self._dirs.setdefault(entry.object_id, quote(entry.name) + "/")
            elif entry.kind is Kind.FILE and "/block:" in entry.key:
                self._files.setdefault(entry.object_id, quote(entry.name))
        self._titles = titles

    def child(self, object_id: str) -> str | None:
        return self._dirs.get(object_id)

    def file(self, block_id: str) -> str | None:
        return self._files.get(block_id)

    def page_url(self, object_id: str) -> str:
        return _page_link(object_id)

    def title(self, object_id: str) -> str | None:
        return self._titles.get(object_id)
