"""Frozen dataclasses parsed from Notion API JSON; raw response dicts stop here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from notionfs.jsonfields import (
    MalformedResponse,
    as_object,
    expect_object,
    flag_field,
    frozen,
    id_field,
    list_field,
    map_field,
    normalize_id,
    opt_str_field,
    plain_text,
    str_field,
    time_field,
    trashed,
)

__all__ = [
    "MalformedResponse",
    "Parent",
    "FileRef",
    "Icon",
    "FilesProperty",
    "Page",
    "DataSourceRef",
    "Database",
    "DataSource",
    "Block",
    "User",
    "FILE_BLOCK_TYPES",
    "normalize_id",
    "plain_text",
    "parse_parent",
    "parse_file",
    "parse_icon",
    "parse_page",
    "parse_database",
    "parse_data_source",
    "parse_block",
    "parse_user",
]

logger = logging.getLogger(__name__)

# Block types whose payload is a file object (Notion API reference, "File" blocks).
FILE_BLOCK_TYPES = frozenset({"image", "video", "audio", "file", "pdf"})


# ---- the models --------------------------------------------------------------------------


@dataclass(frozen=True)
class Parent:
    """Where an object sits. ``database_id`` is set for rows (either API shape)."""

    type: str  # "workspace" | "page_id" | "block_id" | "database_id" | "data_source_id"
    id: str | None
    database_id: str | None = None


@dataclass(frozen=True)
class FileRef:
    """A Notion file object: a signed, expiring ``file`` URL or a stable ``external`` one."""

    kind: Literal["file", "external"]
    url: str
    expiry_time: datetime | None
    name: str | None

    def expires_at(self) -> float | None:
        """Epoch seconds when the URL stops working, or None if it does not expire."""
        return None if self.expiry_time is None else self.expiry_time.timestamp()


@dataclass(frozen=True)
class Icon:
    """A page/database icon: an emoji, or an image (custom emojis become ``file``)."""

    emoji: str | None
    file: FileRef | None


@dataclass(frozen=True)
class FilesProperty:
    """A ``files`` property of a page: its name, property id and file objects."""

    name: str
    id: str
    files: tuple[FileRef, ...]


@dataclass(frozen=True)
class Page:
    """A page. ``in_trash`` also reads the deprecated ``archived`` (its alias before
    2026-03-11); ``is_archived`` is Notion's separate archive, which is not the trash
    (docs/SEMANTICS.md, "Trashed, archived and locked pages")."""

    id: str
    title: str
    parent: Parent
    created_time: datetime
    last_edited_time: datetime
    in_trash: bool
    url: str
    icon: Icon | None
    cover: FileRef | None
    files_properties: tuple[FilesProperty, ...]
    raw_properties: Mapping[str, Any] = field(hash=False, repr=False)
    is_archived: bool = False
    is_locked: bool = False  # locked against edits in Notion's app; reading is unaffected

    @property
    def hidden(self) -> bool:
        """Whether the mount leaves this page out: only a page in the trash is hidden.

        An archived page is kept, not deleted, and stays readable through the API, so the
        mount shows it where it sits (its index.md says ``archived: true``)."""
        return self.in_trash


@dataclass(frozen=True)
class DataSourceRef:
    id: str
    name: str


@dataclass(frozen=True)
class Database:
    """A database. Under 2022-06-28 it has one implicit data source with its own id."""

    id: str
    title: str
    parent: Parent
    created_time: datetime
    last_edited_time: datetime
    in_trash: bool
    url: str
    icon: Icon | None
    cover: FileRef | None
    is_inline: bool
    data_sources: tuple[DataSourceRef, ...]


@dataclass(frozen=True)
class DataSource:
    """A table of rows. ``parent`` is its database; ``database_parent`` where that sits."""

    id: str
    name: str
    parent: Parent
    database_parent: Parent | None
    created_time: datetime
    last_edited_time: datetime
    in_trash: bool
    url: str
    icon: Icon | None
    cover: FileRef | None
    is_inline: bool
    # The property schema: name -> {id, name, type, <type>: {...}}.
    raw_properties: Mapping[str, Any] = field(hash=False, repr=False)


@dataclass(frozen=True)
class Block:
    id: str
    type: str
    has_children: bool
    in_trash: bool
    created_time: datetime
    last_edited_time: datetime
    parent: Parent
    file: FileRef | None  # image / video / audio / file / pdf blocks
    title: str | None  # child_page / child_database
    payload: Mapping[str, Any] = field(hash=False, repr=False)
    synced_from: str | None = None  # a duplicate synced block: the original's id


@dataclass(frozen=True)
class User:
    id: str
    name: str | None
    type: str  # "person" | "bot" (or "unknown" for a partial user)
    workspace_name: str | None
    # A bot's workspace and upload limit (users/me from 2025-09-03; None where not told).
    workspace_id: str | None = None
    max_upload_bytes: int | None = None

# ---- parsers: every field read goes through jsonfields, so bad JSON raises MalformedResponse


def parse_parent(d: Any) -> Parent:
    """A parent object; unknown parent types keep their type and id (if a string)."""
    p = as_object(d, "parent")
    kind = str_field(p, "type", "parent")
    if kind == "workspace":
        return Parent("workspace", None)
    if kind == "data_source_id":
        db = p.get("database_id")
        return Parent(kind, id_field(p, kind, "parent"),
                      normalize_id(db) if isinstance(db, str) else None)
    if kind == "database_id":
        db_id = id_field(p, kind, "parent")
        return Parent(kind, db_id, db_id)
    if kind in ("page_id", "block_id"):
        return Parent(kind, id_field(p, kind, "parent"))
    raw = p.get(kind)
    return Parent(kind, normalize_id(raw) if isinstance(raw, str) else None)


def _file_kind(d: Mapping[str, Any], what: str) -> str:
    return str_field(d, "type", what)


def parse_file(d: Any, what: str = "file object") -> FileRef:
    """A file object (``file`` or ``external``), with its ``name`` when present."""
    f = as_object(d, what)
    kind = _file_kind(f, what)
    name = opt_str_field(f, "name", what)
    if kind == "file":
        inner = map_field(f, "file", what)
        expiry = time_field(inner, "expiry_time", what) if inner.get("expiry_time") else None
        return FileRef("file", str_field(inner, "url", what), expiry, name)
    if kind == "external":
        inner = map_field(f, "external", what)
        return FileRef("external", str_field(inner, "url", what), None, name)
    raise MalformedResponse(f"{what}: unknown file type {kind!r}")


def _maybe_file(d: Any, what: str) -> FileRef | None:
    """A file slot: null stays None; a file type we do not know (a newer API) is skipped."""
    if d is None:
        return None
    f = as_object(d, what)
    if _file_kind(f, what) not in ("file", "external"):
        logger.debug("ignoring %s of unknown type %r", what, f.get("type"))
        return None
    return parse_file(f, what)


def parse_icon(d: Any) -> Icon | None:
    """An icon; types with no emoji and no image (native icons, future kinds) give None."""
    if d is None:
        return None
    icon = as_object(d, "icon")
    kind = str_field(icon, "type", "icon")
    if kind == "emoji":
        return Icon(str_field(icon, "emoji", "icon"), None)
    if kind == "custom_emoji":
        # Custom emoji images live at stable URLs with no expiry_time.
        custom = map_field(icon, "custom_emoji", "icon")
        return Icon(None, FileRef("external", str_field(custom, "url", "icon"), None,
                                  opt_str_field(custom, "name", "icon")))
    file = _maybe_file(icon, "icon")
    return None if file is None else Icon(None, file)


def _title_of_properties(props: Mapping[str, Any]) -> str:
    for prop in props.values():
        if isinstance(prop, Mapping) and prop.get("type") == "title":
            return plain_text(prop.get("title", []))
    return ""


def _files_properties(props: Mapping[str, Any]) -> tuple[FilesProperty, ...]:
    found = []
    for name, prop in props.items():
        prop = as_object(prop, f"property {name!r}")
        if prop.get("type") != "files":
            continue
        what = f"files property {name!r}"
        files = (_maybe_file(f, what) for f in list_field(prop, "files", what))
        found.append(FilesProperty(name, str_field(prop, "id", what),
                                   tuple(f for f in files if f is not None)))
    return tuple(found)

def parse_page(d: Any) -> Page:
    p = expect_object(d, "page")
    props = map_field(p, "properties", "page")
    return Page(
        id=id_field(p, "id", "page"),
        title=_title_of_properties(props),
        parent=parse_parent(p.get("parent")),
        created_time=time_field(p, "created_time", "page"),
        last_edited_time=time_field(p, "last_edited_time", "page"),
        in_trash=trashed(p),
        url=p.get("url") or "",
        icon=parse_icon(p.get("icon")),
        cover=_maybe_file(p.get("cover"), "cover"),
        files_properties=_files_properties(props),
        raw_properties=frozen(props),
        is_archived=flag_field(p, "is_archived", "page"),
        is_locked=flag_field(p, "is_locked", "page"),
    )


def _data_source_refs(d: Mapping[str, Any], db_id: str, title: str) -> tuple[DataSourceRef, ...]:
    if "data_sources" not in d:
        # 2022-06-28: the database is its own (only) data source.
        return (DataSourceRef(db_id, title),)
    refs = []
    for ref in list_field(d, "data_sources", "database"):
        ref = as_object(ref, "data source reference")
        refs.append(DataSourceRef(id_field(ref, "id", "data source reference"),
                                  ref.get("name") or ""))
    return tuple(refs)


def parse_database(d: Any) -> Database:
    db = expect_object(d, "database")
    db_id = id_field(db, "id", "database")
    title = plain_text(db.get("title", []))
    return Database(
        id=db_id,
        title=title,
        parent=parse_parent(db.get("parent")),
        created_time=time_field(db, "created_time", "database"),
        last_edited_time=time_field(db, "last_edited_time", "database"),
        in_trash=trashed(db),
        url=db.get("url") or "",
        icon=parse_icon(db.get("icon")),
        cover=_maybe_file(db.get("cover"), "cover"),
        is_inline=bool(db.get("is_inline", False)),
        data_sources=_data_source_refs(db, db_id, title),
    )


def parse_data_source(d: Any) -> DataSource:
    """A data_source object, or (2022-06-28) a database object seen as its data source."""
    obj = as_object(d, "data source")
    legacy = obj.get("object") == "database"
    if not legacy:
        obj = expect_object(obj, "data_source")
    what = obj["object"]
    ds_id = id_field(obj, "id", what)
    if legacy:
        parent = Parent("database_id", ds_id, ds_id)
        database_parent: Parent | None = parse_parent(obj.get("parent"))
    else:
        parent = parse_parent(obj.get("parent"))
        raw_db_parent = obj.get("database_parent")
        database_parent = None if raw_db_parent is None else parse_parent(raw_db_parent)
    return DataSource(
        id=ds_id,
        name=plain_text(obj.get("title", [])),
        parent=parent,
        database_parent=database_parent,
        created_time=time_field(obj, "created_time", what),
        last_edited_time=time_field(obj, "last_edited_time", what),
        in_trash=trashed(obj),
        url=obj.get("url") or "",
        icon=parse_icon(obj.get("icon")),
        cover=_maybe_file(obj.get("cover"), "cover"),
        is_inline=bool(obj.get("is_inline", False)),
        raw_properties=frozen(map_field(obj, "properties", what)),
    )


def _synced_from(kind: str, payload: Mapping[str, Any]) -> str | None:
    if kind != "synced_block" or payload.get("synced_from") is None:
        return None
    source = map_field(payload, "synced_from", "synced_block")
    return id_field(source, "block_id", "synced_block")


def parse_block(d: Any) -> Block:
    b = expect_object(d, "block")
    kind = str_field(b, "type", "block")
    payload = b.get(kind) or {}
    payload = as_object(payload, f"{kind} block payload")
    what = f"{kind} block"
    titled = kind in ("child_page", "child_database")
    title = opt_str_field(payload, "title", what) if titled else None
    return Block(
        id=id_field(b, "id", "block"),
        type=kind,
        has_children=bool(b.get("has_children", False)),
        in_trash=trashed(b),
        created_time=time_field(b, "created_time", "block"),
        last_edited_time=time_field(b, "last_edited_time", "block"),
        parent=parse_parent(b.get("parent")),
        file=_maybe_file(payload, what) if kind in FILE_BLOCK_TYPES else None,
        title=title,
        payload=frozen(payload),
        synced_from=_synced_from(kind, payload),
    )


def parse_user(d: Any) -> User:
    u = expect_object(d, "user")
    bot = u.get("bot")
    workspace_name = workspace_id = max_upload = None
    if isinstance(bot, Mapping):
        if isinstance(bot.get("workspace_name"), str):
            workspace_name = bot["workspace_name"]
        if isinstance(bot.get("workspace_id"), str):
            workspace_id = bot["workspace_id"]
        limits = bot.get("workspace_limits")
        if isinstance(limits, Mapping):
            limit = limits.get("max_file_upload_size_in_bytes")
            if isinstance(limit, int) and not isinstance(limit, bool):
                max_upload = limit
    return User(
        id=id_field(u, "id", "user"),
        name=opt_str_field(u, "name", "user"),
        type=u.get("type") or "unknown",
        workspace_name=workspace_name,
        workspace_id=workspace_id,
        max_upload_bytes=max_upload,
    )
