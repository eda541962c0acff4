"""Generated files: a page's index.md and a database's index.csv, rendered from the folder's
listing (no API calls of their own, except property values a row object cut short)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from urllib.parse import quote

from .client import NotionClient
from .flight import SingleFlight
from .lister import Source, Titles
from .models import normalize_id
from .nodes import Kind, Node, Role
from .render.markdown import StaticLinks, render_page
from .render.properties import row_properties
from .render.table import render_csv

__all__ = ["PAGE_TEXT_NAME", "TABLE_NAME", "GeneratedText", "PageText", "generated_name"]

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


class PageText:
    """Renders a folder's generated file from its listing's source and its siblings."""

    def __init__(self, client: NotionClient, titles: Titles) -> None:
        self._client = client
        self._titles = titles

    def text(self, name: str, source: Source, siblings: Mapping[str, Node]) -> GeneratedText:
        if name == PAGE_TEXT_NAME:
            return GeneratedText(lambda: self._page(source, siblings))
        return GeneratedText(lambda: self._table(source))

    def _page(self, source: Source, siblings: Mapping[str, Node]) -> bytes:
        page = source.page
        assert page is not None
        properties = None
        if page.parent.type in ("database_id", "data_source_id"):
            properties = row_properties(
                page, fetch=self._client.page_property, title=self._titles.get
            )
        by_role = {n.role: n.name for n in siblings.values() if n.role in _MEDIA_ROLES}
        cover, icon = by_role.get(Role.COVER), by_role.get(Role.ICON)
        text = render_page(
            page,
            source.blocks,
            folder_links(siblings, self._titles.snapshot()),
            properties=properties,
            cover=quote(cover) if cover is not None else None,
            icon=quote(icon) if icon is not None else None,
        )
        return text.encode("utf-8")

    def _table(self, source: Source) -> bytes:
        return render_csv(
            source.rows, columns=None, fetch=self._client.page_property, title=self._titles.get
        )


_MEDIA_ROLES = (Role.COVER, Role.ICON)


def folder_links(siblings: Mapping[str, Node], titles: Mapping[str, str]) -> StaticLinks:
    """Relative links from a folder's index.md to what sits beside it."""
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
    return StaticLinks(children=children, files=files, titles=titles)
