"""Generated files: a page's index.md and a database's index.csv, rendered from the folder's
listing (no API calls of their own, except property values a row object cut short)."""

from __future__ import annotations

import hashlib
import logging
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import quote

from .client import NotionClient, user_names
from .errors import NotionFSError
from .flight import SingleFlight
from .lister import Source, Titles
from .models import normalize_id
from .nodes import ROOT_KEY, Kind, Node, Role
from .render.markdown import StaticLinks, render_page
from .render.properties import row_properties
from .render.table import render_csv

__all__ = [
    "PAGE_TEXT_NAME", "TABLE_NAME", "GeneratedText", "PageText", "Paths", "UserNames",
    "generated_name",
]

logger = logging.getLogger(__name__)

# Their names are reserved in their folders, so an attachment called the same gets a suffix.
PAGE_TEXT_NAME = "index.md"
TABLE_NAME = "index.csv"


def generated_name(folder: Node, source: Source) -> str | None:
    """The generated file a folder holds: index.md in pages, index.csv in row folders."""
    if folder.kind is Kind.PAGE:
        return PAGE_TEXT_NAME
    if folder.kind is Kind.DATA_SOURCE or (
        folder.kind is Kind.DATABASE and not source.several_sources
    ):
        return TABLE_NAME
    return None


class GeneratedText:
    """Bytes rendered on first use, once for all concurrent callers, then kept."""

    def __init__(self, render: Callable[[], bytes]) -> None:
        self._render = render
        self._content: bytes | None = None
        self._flight: SingleFlight[None, bytes] = SingleFlight()

    @property
    def known(self) -> bytes | None:
        return self._content

    def content(self) -> bytes:
        content = self._content
        if content is None:
            content = self._content = self._flight.run(None, self._rendered)
        return content

    def _rendered(self) -> bytes:
        return self._content if self._content is not None else self._render()

    def identity(self) -> str:
        return "generated:" + hashlib.sha256(self.content()).hexdigest()


class Paths:
    """Where each page and database folder sits in the mount, as listings have named them:
    so a link in one page to any other page the mount has shown becomes a relative link."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, str] = {ROOT_KEY: ""}
        self._by_id: dict[str, str] = {}

    def of(self, key: str) -> str | None:
        with self._lock:
            return self._by_key.get(key)

    def record(self, folder_key: str, children: Iterable[Node]) -> str | None:
        """The folder's children now sit under it; the folder's own path, where known."""
        with self._lock:
            base = self._by_key.get(folder_key)
            if base is None:
                return None
            for node in children:
                if node.kind.is_dir:
                    path = f"{base}/{node.name}"
                    self._by_key[node.key] = path
                    if node.object_id and node.kind in (Kind.PAGE, Kind.DATABASE):
                        self._by_id[normalize_id(node.object_id)] = path
            return base

    def relative(self, from_path: str) -> Mapping[str, str]:
        """Object id -> percent-encoded relative folder link ("../Other%20page/")."""
        return _RelativeLinks(self, from_path)

    def _path_of_id(self, object_id: str) -> str | None:
        with self._lock:
            return self._by_id.get(object_id)


class _RelativeLinks(Mapping[str, str]):
    """A read-only view: computed per lookup, so a render copies nothing."""

    def __init__(self, paths: Paths, from_path: str) -> None:
        self._paths = paths
        self._from = from_path or "/"

    def __getitem__(self, object_id: str) -> str:
        target = self._paths._path_of_id(object_id)
        if target is None:
            raise KeyError(object_id)
        relative = posixpath.relpath(target or "/", self._from)
        return "/".join(quote(part, safe="") for part in relative.split("/")) + "/"

    def __iter__(self) -> Iterator[str]:
        return iter(())  # lookups only

    def __len__(self) -> int:
        return 0


class UserNames:
    """Person names by user id, from one GET /v1/users listing, fetched when first needed
    and kept (an integration without user capability gets ids, as before)."""

    RETRY_S = 60.0

    def __init__(self, client: NotionClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._names: dict[str, str] | None = None
        self._failed_at = float("-inf")
        self._flight: SingleFlight[None, dict[str, str] | None] = SingleFlight()

    def get(self, user_id: str) -> str | None:
        names = self._names
        if names is None:
            names = self._flight.run(None, self._load)
        return None if names is None else names.get(user_id)

    def _load(self) -> dict[str, str] | None:
        if self._names is not None:
            return self._names
        if self._clock() - self._failed_at < self.RETRY_S:
            return None
        try:
            self._names = user_names(self._client)
        except NotionFSError as exc:
            logger.info("user names unavailable for now (%s): ids shown", exc)
            self._failed_at = self._clock()
            return None
        return self._names


class PageText:
    """Renders a folder's generated file from its listing's source and its siblings."""

    def __init__(self, client: NotionClient, titles: Titles, paths: Paths) -> None:
        self._client = client
        self._titles = titles
        self._paths = paths
        self._users = UserNames(client)

    def text(
        self, name: str, source: Source, siblings: Mapping[str, Node], folder_path: str | None
    ) -> GeneratedText:
        if name == PAGE_TEXT_NAME:
            return GeneratedText(lambda: self._page(source, siblings, folder_path))
        return GeneratedText(lambda: self._table(source))

    def _page(
        self, source: Source, siblings: Mapping[str, Node], folder_path: str | None
    ) -> bytes:
        page = source.page
        assert page is not None
        properties = None
        if page.parent.type in ("database_id", "data_source_id"):
            properties = row_properties(
                page, fetch=self._client.page_property, title=self._titles.get,
                user_name=self._users.get,
            )  # fmt: skip
        by_role = {n.role: n.name for n in siblings.values() if n.role in _MEDIA_ROLES}
        cover, icon = by_role.get(Role.COVER), by_role.get(Role.ICON)
        elsewhere = self._paths.relative(folder_path) if folder_path is not None else None
        text = render_page(
            page,
            source.blocks,
            folder_links(siblings, self._titles.snapshot(), elsewhere),
            properties=properties,
            cover=quote(cover) if cover is not None else None,
            icon=quote(icon) if icon is not None else None,
        )
        return text.encode("utf-8")

    def _table(self, source: Source) -> bytes:
        return render_csv(
            source.rows, columns=None, fetch=self._client.page_property, title=self._titles.get,
            user_name=self._users.get,
        )  # fmt: skip


_MEDIA_ROLES = (Role.COVER, Role.ICON)


def folder_links(
    siblings: Mapping[str, Node],
    titles: Mapping[str, str],
    elsewhere: Mapping[str, str] | None = None,
) -> StaticLinks:
    """Relative links from a folder's index.md to what sits beside it, and (``elsewhere``)
    to any other page or database folder the mount has shown."""
    children: dict[str, str] = {}
    files: dict[str, str] = {}
    for node in siblings.values():
        if node.object_id is None:
            continue
        object_id = normalize_id(node.object_id)
        if node.kind in (Kind.PAGE, Kind.DATABASE):
            children.setdefault(object_id, quote(node.name) + "/")
        elif node.role is Role.BLOCK:
            files.setdefault(object_id, quote(node.name))
    links = children if elsewhere is None else _Chain(children, elsewhere)
    return StaticLinks(children=links, files=files, titles=titles)


class _Chain(Mapping[str, str]):
    """Siblings first, then the rest of the mount."""

    def __init__(self, first: Mapping[str, str], then: Mapping[str, str]) -> None:
        self._first, self._then = first, then

    def __getitem__(self, key: str) -> str:
        if key in self._first:
            return self._first[key]
        return self._then[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)
