"""Render the workspace model as Notion API JSON, shaped per API version (pure functions)."""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from notionfs.emulator.index import IndexEntry, WorkspaceIndex, dashed_id
from notionfs.emulator.model import (
    Block,
    Database,
    DataSource,
    FileSpec,
    Page,
    Workspace,
    rich_text,
)

__all__ = [
    "V2022",
    "V2025",
    "V2026",
    "VERSIONS",
    "Json",
    "RenderContext",
    "iso_time",
    "page_url",
    "property_id",
    "option_json",
    "parent_json",
    "render_page",
    "render_block",
    "render_database",
    "render_data_source",
    "render_bot_user",
    "render_person_user",
    "render_row_properties",
    "render_schema",
    "property_items",
    "plain_value",
    "page_title",
    "bot_user_id",
    "person_user_id",
]

Json = dict[str, Any]

V2022 = "2022-06-28"
V2025 = "2025-09-03"  # databases hold data sources
V2026 = "2026-03-11"  # `archived` is gone, only `in_trash`
VERSIONS = (V2022, V2025, V2026)

# Property types whose retrieve-property endpoint answers a paginated list of items.
PAGINATED_PROPERTY_TYPES = ("title", "rich_text", "relation", "people")
# A page object carries at most this many relation references (then has_more: true).
RELATION_LIMIT = 25

_USER_NAMESPACE = uuid.UUID("0b6b2a4e-31f4-4a8e-9d55-2f0f1c7a6e21")
_COLORS = ("default", "gray", "brown", "orange", "yellow", "green", "blue", "purple", "pink", "red")
# Printable characters Notion's short property ids are drawn from (before URL-encoding).
_PROPERTY_ID_ALPHABET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:;<=>?@[]^_`{|}~"
)


@dataclass(frozen=True)
class RenderContext:
    """What rendering needs besides the object: version, index and a URL minter."""

    version: str
    index: WorkspaceIndex
    # FileSpec -> {"type": "file", "file": {url, expiry_time}} or {"type": "external", ...}
    file_object: Callable[[FileSpec], Json]

    @property
    def has_data_sources(self) -> bool:
        return self.version >= V2025  # ISO dates compare as strings

    @property
    def has_archived(self) -> bool:
        return self.version < V2026

    @property
    def user_id(self) -> str:
        return person_user_id(self.index.workspace)


# ---- small pieces -------------------------------------------------------------------------


def iso_time(moment: datetime | None) -> str:
    """Notion's timestamp form, e.g. 2026-01-05T10:30:00.000Z (UTC, milliseconds)."""
    if moment is None:
        moment = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def bot_user_id(workspace: Workspace) -> str:
    return str(uuid.uuid5(_USER_NAMESPACE, f"{workspace.seed}/bot"))


def person_user_id(workspace: Workspace) -> str:
    """The one person who created and edited everything in the emulated workspace."""
    return str(uuid.uuid5(_USER_NAMESPACE, f"{workspace.seed}/person"))


def _user_ref(user_id: str) -> Json:
    return {"object": "user", "id": dashed_id(user_id)}


def page_url(title: str, object_id: str) -> str:
    """https://www.notion.so/<Title-Slug>-<id without dashes>, as Notion builds it."""
    slug = re.sub(r"[^0-9A-Za-z]+", "-", title).strip("-")
    hex_id = dashed_id(object_id).replace("-", "")
    return f"https://www.notion.so/{slug}-{hex_id}" if slug else f"https://www.notion.so/{hex_id}"


def property_id(name: str, property_type: str) -> str:
    """A stable, URL-encoded property id per name; the title property is always "title"."""
    if property_type == "title":
        return "title"
    digest = hashlib.sha256(name.encode()).digest()
    raw = "".join(_PROPERTY_ID_ALPHABET[b % len(_PROPERTY_ID_ALPHABET)] for b in digest[:4])
    return quote(raw, safe="")


def option_json(name: str) -> Json:
    """A select/multi_select/status option with a stable id and colour."""
    digest = hashlib.sha256(name.encode()).digest()
    return {
        "id": str(uuid.UUID(bytes=digest[:16], version=4)),
        "name": name,
        "color": _COLORS[digest[16] % len(_COLORS)],
    }


def _trash_fields(trashed: bool, ctx: RenderContext) -> Json:
    if ctx.has_archived:
        return {"archived": trashed, "in_trash": trashed}
    return {"in_trash": trashed}


def _icon_json(icon: FileSpec | str | None, ctx: RenderContext) -> Json | None:
    if icon is None:
        return None
    if isinstance(icon, str):
        return {"type": "emoji", "emoji": icon}
    return ctx.file_object(icon)


def _cover_json(cover: FileSpec | None, ctx: RenderContext) -> Json | None:
    return None if cover is None else ctx.file_object(cover)


def parent_json(entry: IndexEntry, ctx: RenderContext) -> Json:
    """The ``parent`` object: workspace, page_id, block_id, database_id or data_source_id."""
    parent = entry.parent
    if parent is None:
        return {"type": "workspace", "workspace": True}
    if isinstance(parent, Page):
        return {"type": "page_id", "page_id": dashed_id(parent.id)}
    if isinstance(parent, Block):
        return {"type": "block_id", "block_id": dashed_id(parent.id)}
    if isinstance(parent, Database):
        return {"type": "database_id", "database_id": dashed_id(parent.id)}
    database = ctx.index.database_of(parent)
    if not ctx.has_data_sources:
        return {"type": "database_id", "database_id": dashed_id(database.id)}
    return {
        "type": "data_source_id",
        "data_source_id": dashed_id(parent.id),
        "database_id": dashed_id(database.id),
    }


def _authorship(created: datetime | None, edited: datetime | None, ctx: RenderContext) -> Json:
    return {
        "created_time": iso_time(created),
        "last_edited_time": iso_time(edited),
        "created_by": _user_ref(ctx.user_id),
        "last_edited_by": _user_ref(ctx.user_id),
    }


# ---- pages --------------------------------------------------------------------------------


def render_page(page: Page, ctx: RenderContext) -> Json:
    entry = ctx.index.entry_of(page)
    data_source = ctx.index.data_source_of(page)
    if data_source is None:
        properties = {"title": {"id": "title", "type": "title", "title": rich_text(page.title)}}
    else:
        properties = render_row_properties(page, data_source, ctx)
    return {
        "object": "page",
        "id": dashed_id(page.id),
        **_authorship(page.created_time, page.last_edited_time, ctx),
        "cover": _cover_json(page.cover, ctx),
        "icon": _icon_json(page.icon, ctx),
        "parent": parent_json(entry, ctx),
        **_trash_fields(entry.trashed, ctx),
        "is_locked": False,
        "properties": properties,
        "url": page_url(page_title(page, data_source), page.id),
        "public_url": None,
    }


def _title_property_name(ds: DataSource) -> str | None:
    return next((name for name, kind in ds.properties.items() if kind == "title"), None)


def page_title(page: Page, ds: DataSource | None) -> str:
    """A row's title lives in its title property; Page.title is the fallback."""
    if ds is not None:
        name = _title_property_name(ds)
        value = page.properties.get(name) if name else None
        if isinstance(value, str):
            return value
    return page.title


def plain_value(page: Page, ds: DataSource, name: str) -> Any:
    """The model value of one row property (the title falls back to Page.title)."""
    if ds.properties.get(name) == "title":
        return page_title(page, ds)
    return page.properties.get(name)


def render_row_properties(page: Page, ds: DataSource, ctx: RenderContext) -> Json:
    rendered: Json = {}
    for name, kind in ds.properties.items():
        value = _property_value(kind, plain_value(page, ds, name), page, ctx)
        prop: Json = {"id": property_id(name, kind), "type": kind, kind: value}
        if kind == "relation":
            prop[kind] = value[:RELATION_LIMIT]
            prop["has_more"] = len(value) > RELATION_LIMIT
        rendered[name] = prop
    return rendered


def _text_value(value: Any) -> list[Json]:
    return rich_text(str(value)) if value not in (None, "") else []


def _property_value(kind: str, value: Any, page: Page, ctx: RenderContext) -> Any:
    """The typed value Notion puts under a property's type key."""
    make = _VALUE_RENDERERS.get(kind)
    return make(value, page, ctx) if make is not None else value


def _option_or_none(value: Any, page: Page, ctx: RenderContext) -> Json | None:
    return option_json(value) if value else None


def _text_or_none(value: Any, page: Page, ctx: RenderContext) -> Any:
    return value or None


_VALUE_RENDERERS: dict[str, Callable[[Any, Page, RenderContext], Any]] = {
    "title": lambda v, page, ctx: _text_value(v),
    "rich_text": lambda v, page, ctx: _text_value(v),
    "number": lambda v, page, ctx: v,
    "select": _option_or_none,
    "status": _option_or_none,
    "multi_select": lambda v, page, ctx: [option_json(o) for o in v or []],
    "date": lambda v, page, ctx: {"start": v, "end": None, "time_zone": None} if v else None,
    "checkbox": lambda v, page, ctx: bool(v),
    "url": _text_or_none,
    "email": _text_or_none,
    "phone_number": _text_or_none,
    "files": lambda v, page, ctx: [_file_entry(spec, ctx) for spec in v or []],
    "relation": lambda v, page, ctx: [{"id": dashed_id(p.id)} for p in v or []],
    "people": lambda v, page, ctx: [_user_ref(uid) for uid in v or []],
    "created_time": lambda v, page, ctx: iso_time(page.created_time),
    "last_edited_time": lambda v, page, ctx: iso_time(page.last_edited_time),
    "created_by": lambda v, page, ctx: _user_ref(ctx.user_id),
    "last_edited_by": lambda v, page, ctx: _user_ref(ctx.user_id),
}


def _file_entry(spec: FileSpec, ctx: RenderContext) -> Json:
    return {"name": spec.name, **ctx.file_object(spec)}


# ---- property items (GET /v1/pages/{id}/properties/{property_id}) -----------------------


def property_items(page: Page, name: str, kind: str, ctx: RenderContext) -> list[Json] | Json:
    """The items of a paginated property (title, rich_text, relation, people), or the
    single property_item object of any other type."""
    ds = ctx.index.data_source_of(page)
    value = plain_value(page, ds, name) if ds is not None else page.title
    pid = property_id(name, kind)
    typed = _property_value(kind, value, page, ctx)
    if kind in PAGINATED_PROPERTY_TYPES:
        return [{"object": "property_item", "id": pid, "type": kind, kind: item} for item in typed]
    return {"object": "property_item", "id": pid, "type": kind, kind: typed}


# ---- blocks -------------------------------------------------------------------------------


def render_block(node: Block | Page | Database, ctx: RenderContext) -> Json:
    """A block object; pages and databases render as child_page / child_database blocks."""
    entry = ctx.index.entry_of(node)
    if isinstance(node, Page):
        kind, payload = "child_page", {"title": node.title}
    elif isinstance(node, Database):
        kind, payload = "child_database", {"title": node.title}
    else:
        kind, payload = node.type, _block_payload(node, ctx)
    return {
        "object": "block",
        "id": dashed_id(node.id),
        "parent": parent_json(entry, ctx),
        **_authorship(node.created_time, node.last_edited_time, ctx),
        "has_children": bool(ctx.index.children(node)),
        **_trash_fields(entry.trashed, ctx),
        "type": kind,
        kind: payload,
    }


def _block_payload(block: Block, ctx: RenderContext) -> Json:
    if block.synced_from is not None:
        return {"synced_from": {"type": "block_id", "block_id": dashed_id(block.synced_from.id)}}
    payload = copy.deepcopy(block.payload)
    if block.file is not None:
        # Notion's order: caption, type, file|external, name.
        payload = {
            "caption": payload.pop("caption", []),
            **ctx.file_object(block.file),
            "name": block.file.name,
            **payload,
        }
    return payload


# ---- databases and data sources ----------------------------------------------------------


def render_schema(ds: DataSource, ctx: RenderContext) -> Json:
    """A data source's property schema, option lists gathered from its rows."""
    schema: Json = {}
    for name, kind in ds.properties.items():
        schema[name] = {
            "id": property_id(name, kind),
            "name": name,
            "type": kind,
            "description": None,
            kind: _property_config(ds, name, kind, ctx),
        }
    return schema


def _property_config(ds: DataSource, name: str, kind: str, ctx: RenderContext) -> Json:
    if kind == "number":
        return {"format": "number"}
    if kind in ("select", "multi_select", "status"):
        options = [{**option_json(o), "description": None} for o in _option_names(ds, name)]
        if kind != "status":
            return {"options": options}
        return {"options": options, "groups": _status_groups(options)}
    if kind == "relation":
        return _relation_config(ds, name, ctx)
    return {}


def _option_names(ds: DataSource, name: str) -> list[str]:
    names: dict[str, None] = {}
    for row in ds.rows:
        value = row.properties.get(name)
        for option in value if isinstance(value, list) else [value]:
            if isinstance(option, str) and option:
                names[option] = None
    return list(names)


def _status_groups(options: list[Json]) -> list[Json]:
    groups = [("To-do", "gray"), ("In progress", "blue"), ("Complete", "green")]
    return [
        {
            "id": option_json(f"group:{group}")["id"],
            "name": group,
            "color": color,
            "option_ids": [o["id"] for o in options] if i == 0 else [],
        }
        for i, (group, color) in enumerate(groups)
    ]


def _relation_config(ds: DataSource, name: str, ctx: RenderContext) -> Json:
    target = ds
    for row in ds.rows:
        related = row.properties.get(name) or []
        if related and isinstance(related[0], Page):
            target = ctx.index.data_source_of(related[0]) or ds
            break
    config: Json = {"database_id": dashed_id(ctx.index.database_of(target).id)}
    if ctx.has_data_sources:
        config["data_source_id"] = dashed_id(target.id)
    return {**config, "type": "single_property", "single_property": {}}


def _database_url(obj: Database | DataSource) -> str:
    return "https://www.notion.so/" + dashed_id(obj.id).replace("-", "")


def render_database(db: Database, ctx: RenderContext) -> Json:
    """A database: with its one data source's schema (2022-06-28) or a data_sources list."""
    entry = ctx.index.entry_of(db)
    common = {
        "object": "database",
        "id": dashed_id(db.id),
        "title": rich_text(db.title),
        "description": [],
        "parent": parent_json(entry, ctx),
        "is_inline": db.inline,
        **_trash_fields(entry.trashed, ctx),
        "is_locked": False,
        "icon": _icon_json(db.icon, ctx),
        "cover": _cover_json(db.cover, ctx),
        "url": _database_url(db),
        "public_url": None,
    }
    if not ctx.has_data_sources:
        return {
            **common,
            **_authorship(db.created_time, db.last_edited_time, ctx),
            "properties": render_schema(db.data_sources[0], ctx),
        }
    return {
        **common,
        "created_time": iso_time(db.created_time),
        "last_edited_time": iso_time(db.last_edited_time),
        "data_sources": [{"id": dashed_id(ds.id), "name": ds.title} for ds in db.data_sources],
    }


def render_data_source(ds: DataSource, ctx: RenderContext) -> Json:
    db = ctx.index.database_of(ds)
    entry = ctx.index.entry_of(ds)
    return {
        "object": "data_source",
        "id": dashed_id(ds.id),
        **_authorship(db.created_time, db.last_edited_time, ctx),
        "title": rich_text(ds.title),
        "description": [],
        "properties": render_schema(ds, ctx),
        "parent": {"type": "database_id", "database_id": dashed_id(db.id)},
        "database_parent": parent_json(ctx.index.entry_of(db), ctx),
        "is_inline": db.inline,
        **_trash_fields(entry.trashed, ctx),
        "icon": _icon_json(db.icon, ctx),
        "cover": _cover_json(db.cover, ctx),
        "url": _database_url(ds),
        "public_url": None,
    }


# ---- users --------------------------------------------------------------------------------


def render_bot_user(workspace: Workspace) -> Json:
    """GET /v1/users/me: the integration's bot user."""
    return {
        "object": "user",
        "id": bot_user_id(workspace),
        "name": workspace.bot_name,
        "avatar_url": None,
        "type": "bot",
        "bot": {
            "owner": {"type": "workspace", "workspace": True},
            "workspace_name": workspace.name,
        },
    }


def render_person_user(workspace: Workspace) -> Json:
    return {
        "object": "user",
        "id": person_user_id(workspace),
        "name": "Emulated Person",
        "avatar_url": None,
        "type": "person",
        "person": {"email": "person@example.com"},
    }
