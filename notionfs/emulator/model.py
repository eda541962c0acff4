"""Declarative workspace model for the Notion emulator: pages, databases, blocks, files."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Deterministic ids: uuid5 in this namespace from the workspace seed and a running counter.
_NAMESPACE = uuid.UUID("6f1c1d2e-8a4b-4c59-9e0e-4d1f3b2a7c10")
_BASE_TIME = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def rich_text(text: str, **annotations: Any) -> list[dict[str, Any]]:
    """A one-run Notion rich_text array; annotations such as bold=True, href="..."."""
    href = annotations.pop("href", None)
    ann = {
        "bold": False,
        "italic": False,
        "strikethrough": False,
        "underline": False,
        "code": False,
        "color": "default",
    }
    ann.update(annotations)
    return [
        {
            "type": "text",
            "text": {"content": text, "link": {"url": href} if href else None},
            "annotations": ann,
            "plain_text": text,
            "href": href,
        }
    ]


@dataclass
class FileSpec:
    """A file object's content. Notion-hosted unless ``external`` (then served unsigned)."""

    name: str
    data: bytes | None = None
    path: Path | None = None  # content on disk, for large files (served without loading)
    content_type: str = "application/octet-stream"
    external: bool = False
    id: str = ""
    # Bumped when a test "replaces" the file; part of the file's identity.
    version: int = 0

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def sha256(self) -> str:
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        else:
            assert self.path is not None
            with open(self.path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        return h.hexdigest()


@dataclass
class Block:
    """A non-page block. ``payload`` is the type-specific object minus any file object.

    File blocks (image, video, audio, file, pdf) carry ``file``; the emulator renders it as
    ``{"type": "file", "file": {url, expiry_time}}`` or ``{"type": "external", ...}`` inside
    the payload, and ``name`` (from the FileSpec) for ``file``/``pdf`` blocks and others.
    Children may be Blocks, Pages (child_page) or Databases (child_database).
    ``synced_from`` points at the original synced block for a duplicate synced block.
    """

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    file: FileSpec | None = None
    in_trash: bool = False
    synced_from: Block | None = None
    id: str = ""
    created_time: datetime | None = None
    last_edited_time: datetime | None = None


@dataclass
class Page:
    """A page. At top level or as a child node it is a child_page; in a database, a row.

    ``properties`` for rows maps property name to a plain value interpreted by the data
    source's schema: title/rich_text -> str (or a rich_text array, e.g. with mentions),
    number -> int|float, select/status -> str, multi_select -> list[str], date -> str (ISO)
    or {start, end, time_zone}, checkbox -> bool, url/email/phone_number -> str, files ->
    list[FileSpec], relation -> list[Page], people -> list of user ids (str) or users
    ({id, name, email}); formula -> its result (str, int|float, bool, datetime.date or
    None); rollup -> Rollup; unique_id -> int or "PREFIX-N"; verification -> None
    (unverified) or {state, date, verified_by}; button, created_time, created_by,
    last_edited_time, last_edited_by -> anything (computed).
    ``icon``/``cover``: FileSpec, or for icon an emoji str.
    ``shared=False``: the integration cannot see this page (404), though shared children can.
    """

    title: str
    children: list[Node] = field(default_factory=list)
    icon: FileSpec | str | None = None
    cover: FileSpec | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    in_trash: bool = False
    shared: bool = True
    id: str = ""
    created_time: datetime | None = None
    last_edited_time: datetime | None = None
    is_archived: bool = False  # Notion's archive: set aside, not in the trash
    is_locked: bool = False


@dataclass
class DataSource:
    """A table of rows with a property schema (name -> property type)."""

    title: str
    properties: dict[str, str] = field(default_factory=lambda: {"Name": "title"})
    rows: list[Page] = field(default_factory=list)
    id: str = ""


@dataclass
class Database:
    """A database: one data source usually, several from API 2025-09-03 on.

    Build with ``Database(title, properties=..., rows=...)`` for a single data source, or
    pass ``data_sources`` explicitly. ``inline`` databases sit inside a page's blocks.
    """

    title: str
    properties: dict[str, str] | None = None
    rows: list[Page] | None = None
    data_sources: list[DataSource] = field(default_factory=list)
    icon: FileSpec | str | None = None
    cover: FileSpec | None = None
    in_trash: bool = False
    shared: bool = True
    inline: bool = False
    id: str = ""
    created_time: datetime | None = None
    last_edited_time: datetime | None = None
    is_locked: bool = False

    def __post_init__(self) -> None:
        if not self.data_sources:
            self.data_sources = [
                DataSource(
                    title=self.title,
                    properties=self.properties or {"Name": "title"},
                    rows=self.rows or [],
                )
            ]
        self.properties = None
        self.rows = None


@dataclass(frozen=True)
class Rollup:
    """A rollup property's value: ``function`` over ``property`` of the pages related
    through the row's ``relation`` property (computed when the row is rendered)."""

    relation: str
    property: str
    function: str = "show_original"


Node = Block | Page | Database


@dataclass
class Workspace:
    """Top-level pages and databases (parent: workspace), plus users."""

    name: str = "Emulated Workspace"
    pages: list[Page | Database] = field(default_factory=list)
    seed: str = "notionfs"
    bot_name: str = "notionfs emulator"
    # The workspace's own person, who created and edited everything.
    person_name: str = "Emulated Person"
    person_email: str = "person@example.com"
    person_avatar_url: str | None = None
    # Whether the integration has a user information capability: without it Notion answers
    # GET /v1/users with 403 restricted_resource and people values as partial users.
    user_capability: bool = True
    _issued: set[str] = field(default_factory=set, repr=False, compare=False)

    def assign_ids(self) -> None:
        """Give every object without an id a deterministic one and fill in times."""
        # Ids already handed out stay taken, even by objects since removed: an object inserted
        # after a first call shifts the counter, and must not receive the id of the object
        # that used to sit there. (Notion gives a replaced file a new id, so a new URL path.)
        used = self._issued
        used.update(obj.id for obj in self.walk() if obj.id)
        counter = 0
        for obj in self.walk():
            counter += 1
            if not obj.id:
                obj.id = self._fresh_id(counter, used)
                used.add(obj.id)
            if hasattr(obj, "created_time") and obj.created_time is None:
                obj.created_time = _BASE_TIME + timedelta(minutes=counter)
            if hasattr(obj, "last_edited_time") and obj.last_edited_time is None:
                obj.last_edited_time = _BASE_TIME + timedelta(minutes=counter, seconds=30)

    def _fresh_id(self, counter: int, used: set[str]) -> str:
        candidate = str(uuid.uuid5(_NAMESPACE, f"{self.seed}/{counter}"))
        retry = 0
        while candidate in used:
            retry += 1
            candidate = str(uuid.uuid5(_NAMESPACE, f"{self.seed}/{counter}/{retry}"))
        return candidate

    def walk(self) -> Iterator[Page | Database | DataSource | Block | FileSpec]:
        """Every object, depth-first in document order (including trashed ones)."""
        for top in self.pages:
            yield from _walk(top)


def _walk(obj: Any) -> Iterator[Any]:
    yield obj
    if isinstance(obj, Page):
        if isinstance(obj.icon, FileSpec):
            yield obj.icon
        if obj.cover is not None:
            yield obj.cover
        for value in obj.properties.values():
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, FileSpec):
                        yield item
        for child in obj.children:
            yield from _walk(child)
    elif isinstance(obj, Database):
        if isinstance(obj.icon, FileSpec):
            yield obj.icon
        if obj.cover is not None:
            yield obj.cover
        for ds in obj.data_sources:
            yield ds
            for row in ds.rows:
                yield from _walk(row)
    elif isinstance(obj, Block):
        if obj.file is not None:
            yield obj.file
        for child in obj.children:
            yield from _walk(child)


# ---- small builders so a test describes a workspace in a few lines -------------------------


def paragraph(text: str, **annotations: Any) -> Block:
    return Block("paragraph", {"rich_text": rich_text(text, **annotations), "color": "default"})


def heading(level: int, text: str) -> Block:
    return Block(
        f"heading_{level}",
        {"rich_text": rich_text(text), "color": "default", "is_toggleable": False},
    )


def toggle(text: str, children: list[Node]) -> Block:
    return Block("toggle", {"rich_text": rich_text(text), "color": "default"}, children)


def callout(text: str, children: list[Node], emoji: str = "\U0001f4a1") -> Block:
    return Block(
        "callout",
        {
            "rich_text": rich_text(text),
            "icon": {"type": "emoji", "emoji": emoji},
            "color": "gray_background",
        },
        children,
    )


def columns(*cols: list[Node]) -> Block:
    return Block("column_list", {}, [Block("column", {}, list(col)) for col in cols])


def synced(children: list[Node]) -> Block:
    """An original synced block (synced_from: null)."""
    return Block("synced_block", {"synced_from": None}, children)


def synced_copy(original: Block) -> Block:
    """A duplicate synced block; its children are the original's (API returns them)."""
    return Block("synced_block", {}, [], synced_from=original)


def file_block(kind: str, spec: FileSpec, caption: str = "") -> Block:
    """kind: image, video, audio, file or pdf."""
    assert kind in ("image", "video", "audio", "file", "pdf")
    return Block(kind, {"caption": rich_text(caption) if caption else []}, file=spec)
