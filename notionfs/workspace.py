"""The workspace as a mount source: the contract the FUSE adapter speaks to, and its Notion
implementation composed of the listing cache, the lister, the inode table, the files and the
generated texts.

The contract (``MountSource``) has no FUSE in it: paths in, nodes and bytes out, notionfs
errors for failures. A command-line tool can walk a workspace through it without a mount.

Lock order (each lock guards only its own table and is never held across a network call, so
no two are ever nested except as listed): ``Listings._lock`` and ``SingleFlight._lock`` are
leaves; ``RemoteFiles._lock`` is a leaf; ``InodeTable._lock`` is a leaf; ``Titles._lock`` is a
leaf. Inside the data path (``remote.py``, ``blockcache.py``) the cache's lock is taken after
a file's own locks, never before. The FUSE adapter's handle lock is a leaf too.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from .blockcache import BlockCache
from .client import NotionClient
from .config import Settings
from .feed import Change, ChangeFeed, FeedPoller
from .lister import FILES_PROPERTY_MARK, NotionLister, Source, Titles
from .listings import Listing, Listings
from .materialise import NodeMaker
from .nodes import ROOT_KEY, InodeTable, Kind, Node
from .pagetext import (
    PAGE_TEXT_NAME,
    TABLE_NAME,
    GeneratedText,
    PageText,
    Paths,
    generated_name,
)
from .persist import Persistence
from .prefetch import Prefetcher
from .priority import background
from .relations import Relations
from .remotes import RemoteFiles
from .render.markdown import BlockNode

__all__ = [
    "FsStats",
    "MountSource",
    "NotionWorkspace",
    "Reader",
    "PROBE_NAMES",
    "PAGE_TEXT_NAME",
    "TABLE_NAME",
    "WritableSource",
    "Writer",
    "is_probe_name",
]

# Names that shells and file managers probe in every folder; they never exist in Notion, so
# they answer "no such file" at once, without listing the folder first.
PROBE_NAMES = frozenset(
    {
        ".hidden", ".Trash", ".Trash-0", ".Trash-1000", ".xdg-volume-info", ".DS_Store",
        ".directory", "desktop.ini", "Desktop.ini", "Thumbs.db", "autorun.inf", "AutoRun.inf",
        ".git", ".svn", ".hg", ".localized", ".metadata_never_index", ".Spotlight-V100",
        ".fseventsd", ".VolumeIcon.icns", ".comments", ".thumbnails", ".autorun.inf",
        "Autorun.inf",
    }
)  # fmt: skip
# AppleDouble companions ("._photo.jpg") that macOS and Samba clients probe for every file.
PROBE_PREFIXES = ("._",)
# statfs: Notion has no quota to report; see NotionWorkspace.statfs.
STATFS_BYTES = 1 << 50
STATFS_FRAGMENT_BYTES = 4096
STATFS_FILES = 10**9


def is_probe_name(name: str) -> bool:
    return name in PROBE_NAMES or name.startswith(PROBE_PREFIXES)


class Reader(Protocol):
    """An open file: what the adapter reads from. ``read_cached`` (optional) answers from
    memory only, returning None when the bytes are not all there."""

    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FsStats:
    """What ``statfs`` reports, in blocks of ``block_size`` bytes."""

    block_size: int
    fragment_size: int
    blocks: int
    blocks_free: int
    files: int
    files_free: int
    name_max: int = 255


class MountSource(Protocol):
    """What a mount needs from a workspace. Paths are "/a/b"; nodes are immutable."""

    root: Node

    def lookup(self, path: str) -> Node | None:
        """The node at ``path``, listing folders on the way as needed; None if absent."""

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        """From fresh listings alone: ``(True, node or None)`` when memory knows the answer,
        ``(False, None)`` when some folder on the way would have to be listed."""

    def lookup_held(self, path: str) -> Node | None:
        """From listings held, fresh or stale; never touches the network."""

    def listdir(self, folder: Node) -> list[Node]:
        """The folder's children (a fresh listing, or the held one while it is re-listed)."""

    def listdir_held(self, folder: Node) -> list[Node] | None:
        """The held listing of ``folder``, fresh or stale, or None; never fetches."""

    def is_fresh(self, folder: Node) -> bool:
        """Whether ``folder``'s listing is within its lifetime."""

    def size(self, node: Node) -> int:
        """A file's exact size (may probe the host)."""

    def known_size(self, node: Node) -> int | None:
        """A file's size when known without I/O."""

    def identity(self, node: Node) -> str:
        """Changes exactly when the file's bytes may have changed (for the page cache)."""

    def open(self, node: Node) -> Reader:
        """A reader of the file's bytes."""

    def xattrs(self, node: Node) -> dict[str, str]:
        """Facts about a node: its Notion id, URL and type."""

    def statfs(self) -> FsStats:
        """Capacity figures; never touches the network."""

    def close(self) -> None:
        """Stop background work."""


class Writer(Reader, Protocol):
    """A file open for writing: reads see what was written (read-after-write)."""

    def write(self, offset: int, data: bytes) -> int: ...

    def truncate(self, length: int) -> None: ...

    def flush(self) -> None:
        """Send what was written to Notion; raises when it cannot be sent now (the bytes
        are kept and retried)."""


@runtime_checkable
class WritableSource(MountSource, Protocol):
    """A MountSource that also takes writes (every mount but ``--read-only``). Paths are
    "/a/b"; failures are notionfs errors (the adapter maps them to errno). Implemented by
    ``overlay.WriteOverlay`` over a NotionWorkspace."""

    def create(self, path: str) -> Writer:
        """A new empty file at ``path``, open for writing."""

    def open_write(self, node: Node, *, truncate: bool) -> Writer:
        """``node`` open for writing (its bytes copied first unless ``truncate``)."""

    def truncate_path(self, node: Node, length: int) -> None:
        """Cut or extend ``node`` to ``length`` bytes and upload the result."""

    def unlink(self, path: str) -> None:
        """Remove the file at ``path`` (its block goes to Notion's trash)."""

    def rename(self, old: str, new: str) -> None:
        """A folder: retitle and/or move its page. A file: rename it within its page (a
        scratch file renamed over a real name is uploaded); across pages, EXDEV."""

    def mkdir(self, path: str) -> None:
        """A new page (in a page folder) or row (in a database folder)."""

    def rmdir(self, path: str) -> None:
        """Trash the page at ``path`` (its folder must hold only generated files)."""


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def read_cached(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def close(self) -> None:
        pass


class NotionWorkspace:
    """A Notion workspace as a MountSource. Thread-safe."""

    def __init__(
        self,
        client: NotionClient,
        files_http: httpx.Client,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        persist: Persistence | None = None,
    ) -> None:
        self._settings = settings
        self._persist = persist
        self._inodes = InodeTable()
        self._files = RemoteFiles(
            files_http, settings, clock=clock,
            on_size=persist.save_size if persist is not None else None,
        )  # fmt: skip
        titles = self._titles = Titles()
        self._list_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.list_workers, thread_name_prefix="notionfs-list"
        )
        self._lister = NotionLister(client, titles, self._list_pool)
        self._paths = Paths()
        self._texts = PageText(client, titles, self._paths)
        self._client = client
        self._relations = Relations()
        self._relist_pool: concurrent.futures.ThreadPoolExecutor | None = None
        background = None
        if settings.feed_enabled:
            self._relist_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=2, thread_name_prefix="notionfs-relist"
            )
            pool = self._relist_pool
            background = lambda work: pool.submit(_as_background, work)  # noqa: E731
        self._listings = Listings(
            self._fetch, ttl_s=settings.listing_ttl_s, deadline_s=settings.op_deadline_s,
            clock=clock, background=background,
        )  # fmt: skip
        self._nodes = NodeMaker(
            writable=settings.writable, listings=self._listings, files=self._files,
            inodes=self._inodes, relations=self._relations, paths=self._paths,
        )  # fmt: skip
        self._poller: FeedPoller | None = None
        self._prefetcher: Prefetcher | None = None
        mounted_at = time.time()
        self.root = Node(Kind.ROOT, ROOT_KEY, "", 1, ctime_s=mounted_at, mtime_s=mounted_at)

    @property
    def cache(self) -> BlockCache:
        return self._files.cache

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        if self._prefetcher is not None:
            self._prefetcher.stop()
        self._keep_on_disk()
        self._list_pool.shutdown(wait=False, cancel_futures=True)
        if self._relist_pool is not None:
            self._relist_pool.shutdown(wait=False, cancel_futures=True)
        self._files.close()

    # ---- the change feed ---------------------------------------------------------------

    def start_feed(self, mark: float | None = None) -> FeedPoller | None:
        """Poll Notion for changes every ``poll_interval_s`` (none when it is 0)."""
        if not self._settings.feed_enabled or self._poller is not None:
            return self._poller
        persist = self._persist
        if mark is None and persist is not None:
            mark = persist.mark()
        feed = ChangeFeed(self._client, mark=mark, lag_window_s=self._settings.feed_lag_window_s)
        self._poller = FeedPoller(
            feed, self.apply_changes, self._settings.poll_interval_s,
            on_mark=persist.save_mark if persist is not None else None,
        )  # fmt: skip
        self._poller.start()
        return self._poller

    def apply_changes(self, changes: Iterable[Change]) -> set[str]:
        """Drop the listings ``changes`` touch; they are listed anew on next access."""
        dropped: set[str] = set()
        for change in changes:
            dropped |= self._relations.affected(change)
        for key in dropped:
            self._listings.invalidate(key)
        return dropped

    # ---- paths -------------------------------------------------------------------------

    def lookup(self, path: str) -> Node | None:
        node = self.root
        for part in _parts(path):
            if not node.is_dir:
                return None
            child = self._child(node, part)
            if child is None:
                return None
            node = child
        return node

    def lookup_held(self, path: str) -> Node | None:
        node = self.root
        for part in _parts(path):
            listing = self._listings.held(node.key)
            found = listing.children.get(part) if listing is not None else None
            if found is None:
                return None
            node = found
        return node

    def lookup_memory(self, path: str) -> tuple[bool, Node | None]:
        node = self.root
        for part in _parts(path):
            if not node.is_dir:
                return True, None
            listing = self._listings.fresh(node.key)
            if listing is None:
                if not is_probe_name(part):
                    return False, None
                listing = self._listings.held(node.key)
            found = listing.children.get(part) if listing is not None else None
            if found is None:
                return True, None
            node = found
        return True, node

    def _child(self, folder: Node, name: str) -> Node | None:
        """One name in a folder. Well-known probe names cost nothing, listed or not."""
        if is_probe_name(name) and self._listings.fresh(folder.key) is None:
            # A stale listing (or none) is good enough to say "no" to a name that never exists.
            held = self._listings.held(folder.key)
            return held.children.get(name) if held is not None else None
        return self._listings.get(folder).children.get(name)

    def listdir(self, folder: Node) -> list[Node]:
        children = list(self._listings.get(folder).children.values())
        self._files.probe(n.remote for n in children if n.remote is not None)
        if self._prefetcher is not None:
            self._prefetcher.visited(folder, children)
        return children

    def _list_ahead(self, folder: Node) -> list[Node]:
        """A prefetched folder: listed, and its files' sizes (and first bytes) probed, so
        `ls -l` and thumbnails of it are answered from memory too."""
        children = list(self._listings.get(folder).children.values())
        self._files.probe(n.remote for n in children if n.remote is not None)
        return children

    def start_prefetch(self) -> Prefetcher | None:
        """List the subfolders of each folder a program lists, in the background."""
        if self._settings.prefetch_folders > 0 and self._prefetcher is None:
            self._prefetcher = Prefetcher(
                self._list_ahead,
                lambda node: self._listings.fresh(node.key) is not None,
                max_folders=self._settings.prefetch_folders,
            )
        return self._prefetcher

    def listdir_held(self, folder: Node) -> list[Node] | None:
        listing = self._listings.held(folder.key)
        return None if listing is None else list(listing.children.values())

    def is_fresh(self, folder: Node) -> bool:
        return self._listings.fresh(folder.key) is not None

    def invalidate(self, folder: Node) -> None:
        self.invalidate_key(folder.key)

    def invalidate_key(self, key: str) -> None:
        """List the folder ``key`` anew on its next access (a write changed it). A files
        property lists from its row's page, so the row is listed anew too."""
        self._listings.invalidate(key)
        row, mark, _prop = key.partition(FILES_PROPERTY_MARK)
        if mark:
            self._listings.invalidate(row)

    def expire_key(self, key: str) -> None:
        """List the folder ``key`` anew behind its next answer (a write changed it, and the
        write layer shows the change meanwhile). A files property lists from its row's
        listing, which its own listing does not refresh: both are listed anew at once."""
        if FILES_PROPERTY_MARK in key:
            self.invalidate_key(key)
        else:
            self._listings.expire(key)

    def listed_at(self, folder: Node) -> float | None:
        """The clock time the held listing of ``folder`` was fetched (-inf once invalidated)."""
        listing = self._listings.held(folder.key)
        return None if listing is None else listing.listed_at

    def folder_of_block(self, block_id: str) -> str | None:
        """The key of the page folder whose listing showed block ``block_id``."""
        return self._relations.block_owner(block_id)

    def inode(self, key: str) -> int:
        """The inode of identity ``key`` (stable for the mount's life)."""
        return self._inodes.inode(key)

    # ---- files -------------------------------------------------------------------------

    def size(self, node: Node) -> int:
        if node.text is not None:
            return len(node.text.content())
        return node.remote.size() if node.remote is not None else 0

    def known_size(self, node: Node) -> int | None:
        if node.text is not None:
            known = node.text.known
            return None if known is None else len(known)
        return node.remote.known_size if node.remote is not None else None

    def identity(self, node: Node) -> str:
        if node.text is not None:
            return node.text.identity()
        assert node.remote is not None
        return node.remote.key

    def open(self, node: Node) -> Reader:
        if node.text is not None:
            return _BytesReader(node.text.content())
        assert node.remote is not None
        return node.remote.reader()

    def xattrs(self, node: Node) -> dict[str, str]:
        values = {}
        if node.object_id:
            values["id"] = node.object_id
        if node.notion_url:
            values["url"] = node.notion_url
        if node.kind is not Kind.ROOT:
            values["type"] = node.kind.value
        return values

    def statfs(self) -> FsStats:
        # A capacity, so plain `df` lists the mount (it hides 0-block filesystems): what
        # rclone reports for backends without a quota, 1 PiB all free and 10^9 inodes.
        blocks = STATFS_BYTES // STATFS_FRAGMENT_BYTES
        return FsStats(
            block_size=self._settings.st_blksize_bytes,
            fragment_size=STATFS_FRAGMENT_BYTES,
            blocks=blocks,
            blocks_free=blocks,
            files=STATFS_FILES,
            files_free=STATFS_FILES,
        )

    # ---- listing: fetched from Notion, then named and numbered (materialise.py) -----------

    def _fetch(self, folder: Node, held: Listing | None) -> tuple[Mapping[str, Node], Source]:
        found, source = self._lister.list_folder(folder)
        generated = generated_name(folder, source)
        block_ids = list(_block_ids(source.blocks))
        children = self._nodes.make(
            folder, found, held, generated=generated, block_ids=block_ids,
            text=lambda siblings, path: self._texts.text(generated or "", source, siblings, path),
        )  # fmt: skip
        if self._persist is not None:
            self._persist.save_later(folder.key, found, children, block_ids)
        return children, source

    # ---- the metadata cache on disk ------------------------------------------------------

    def restore(self) -> int:
        """Serve the listings kept by an earlier mount at once, from the root down; returns
        how many. They count as just listed: the change feed, polling from the stored mark,
        drops what changed meanwhile, and the backstop TTL runs from now."""
        if self._persist is None:
            return 0
        stored, _sizes = self._persist.load()
        self._titles.update(self._persist.titles().items())
        restored, queue = 0, [self.root]
        while queue:
            folder = queue.pop(0)
            entry = stored.pop(folder.key, None)
            if entry is None:
                continue
            listing = entry[1]
            children = self._nodes.make(
                folder, listing.found, None,
                generated=listing.generated[0] if listing.generated else None,
                text=_kept_text(listing.generated[1] if listing.generated else b""),
                block_ids=listing.block_ids, sizes=listing.sizes,
            )  # fmt: skip
            self._listings.seed(folder.key, children)
            queue.extend(node for node in children.values() if node.is_dir)
            restored += 1
        return restored

    def _keep_on_disk(self) -> None:
        """At unmount: sizes learned since their listing was kept, and the titles seen."""
        if self._persist is None:
            return
        for file_key, size in self._files.known_sizes().items():
            self._persist.save_size(file_key, size)
        self._persist.save_titles(self._titles.snapshot())


def _as_background(work: Callable[[], object]) -> object:
    with background():
        return work()


def _kept_text(content: bytes) -> Callable[[Mapping[str, Node], str | None], GeneratedText]:
    """A generated file read back from disk: its bytes as they were rendered."""

    def make(_siblings: Mapping[str, Node], _path: str | None) -> GeneratedText:
        return GeneratedText(lambda: content)

    return make


def _block_ids(nodes: Iterable[BlockNode]) -> Iterator[str]:
    for node in nodes:
        yield node.block.id
        yield from _block_ids(node.children)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]
