"""Render the workspace model as Notion API JSON, shaped per API version (pure functions)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from notionfs.emulator.index import IndexEntry, WorkspaceIndex, dashed_id
from notionfs.emulator.model import (
    Block,
    Database,
    DataSource,
    FileSpec,
    Page,
    Rollup,
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
    "database_time",
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
    "property_item_meta",
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
# A page object carries at most this many references per property: relations then say
# has_more: true, people lists stop, title/rich_text drop the mentions past it, and rollups
# are computed over the first this-many related pages (Notion API reference, "Retrieve a
# page", Limits). The property item endpoint returns everything.
RELATION_LIMIT = 25
REFERENCE_LIMIT = RELATION_LIMIT

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
    def has_2025_fields(self) -> bool:
        """Fields Notion's 2022-06-28 answers lack (recorded 2024) and later ones carry
        (recorded 2026): a page's is_archived and is_locked, a database's is_locked, schema
        and option descriptions, a person's email_verified, a paragraph's icon."""
        return self.version >= V2025

    @property
    def user_id(self) -> str:
        return person_user_id(self.index.workspace)


# ---- small pieces -------------------------------------------------------------------------


def iso_time(moment: datetime | None) -> str:
    """Notion's timestamp form, e.g. 2026-01-05T10:30:00.000Z (UTC, milliseconds)."""
    return _utc_millis(moment) + "Z"


def database_time(moment: datetime | None, ctx: RenderContext) -> str:
    """A database's own times: from 2025-09-03 on Notion writes them with an offset,
    2026-07-04T09:08:57.778+00:00 (recorded), where everything else reads ...000Z."""
    return _utc_millis(moment) + ("+00:00" if ctx.has_data_sources else "Z")


def _utc_millis(moment: datetime | None) -> str:
    if moment is None:
        moment = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def bot_user_id(workspace: Workspace) -> str:
    return str(uuid.uuid5(_USER_NAMESPACE, f"{workspace.seed}/bot"))


def person_user_id(workspace: Workspace) -> str:
    """The one person who created and edited everything in the emulated workspace."""
    return str(uuid.uuid5(_USER_NAMESPACE, f"{workspace.seed}/person"))


def _user_ref(user_id: str) -> Json:
    return {"object": "user", "id": dashed_id(user_id)}


def _user_json(user: Any, ctx: RenderContext) -> Json:
    """A people value: a full person for users the model names (or the workspace's
    person), else a partial user (Notion's answer for users the integration cannot read,
    and for every user when it lacks the user information capability)."""
    workspace = ctx.index.workspace
    if not workspace.user_capability:
        return _user_ref(str(user["id"]) if isinstance(user, dict) else str(user))
    if isinstance(user, dict):
        return _person_json(user, ctx.version)
    if dashed_id(str(user)) == dashed_id(ctx.user_id):
        return render_person_user(workspace, ctx.version)
    return _user_ref(str(user))


def _person_json(user: dict[str, Any], version: str) -> Json:
    person: Json = {}
    if user.get("email"):
        person["email"] = user["email"]
        if version >= V2025:
            person["email_verified"] = True
    return {
        "object": "user",
        "id": dashed_id(str(user["id"])),
        "name": user.get("name"),
        "avatar_url": user.get("avatar_url"),
        "type": "person",
        "person": person,
    }


def page_url(title: str, object_id: str, version: str = V2022) -> str:
    """An object's ``url`` as Notion builds it: <Title-Slug>-<id without dashes>, or the bare
    id for an empty slug (databases get no slug). The host is the one each version's
    recordings show: https://www.notion.so/ at 2022-06-28 (recorded 2024), and
    https://app.notion.com/p/ from 2025-09-03 on (recorded 2026)."""
    slug = re.sub(r"[^0-9A-Za-z_]+", "-", title).strip("-")  # "_" stays (recorded)
    hex_id = dashed_id(object_id).replace("-", "")
    base = "https://www.notion.so/" if version < V2025 else "https://app.notion.com/p/"
    return f"{base}{slug}-{hex_id}" if slug else f"{base}{hex_id}"


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


def _page_state_fields(page: Page, trashed: bool, ctx: RenderContext) -> Json:
    """in_trash (and the deprecated archived, its alias), then from 2025-09-03 on Notion's
    separate archive (is_archived) and the edit lock (is_locked), as recorded."""
    fields = _trash_fields(trashed, ctx)
    if ctx.has_2025_fields:
        fields.update(is_archived=page.is_archived, is_locked=page.is_locked)
    return fields


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
        title = rich_text(page.title) if page.title else []  # an untitled page: [] (recorded)
        properties = {"title": {"id": "title", "type": "title", "title": title}}
    else:
        properties = render_row_properties(page, data_source, ctx)
    return {
        "object": "page",
        "id": dashed_id(page.id),
        **_authorship(page.created_time, page.last_edited_time, ctx),
        "cover": _cover_json(page.cover, ctx),
        "icon": _icon_json(page.icon, ctx),
        "parent": parent_json(entry, ctx),
        **_page_state_fields(page, entry.trashed, ctx),
        "properties": properties,
        "url": page_url(page_title(page, data_source), page.id, ctx.version),
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
        if isinstance(value, list):
            return "".join(str(run.get("plain_text", "")) for run in value)
    return page.title


def plain_value(page: Page, ds: DataSource, name: str) -> Any:
    """The model value of one row property (the title falls back to Page.title)."""
    if ds.properties.get(name) == "title":
        return page_title(page, ds)
    return page.properties.get(name)


def render_row_properties(page: Page, ds: DataSource, ctx: RenderContext) -> Json:
    """A row's property values as its page object holds them: references capped."""
    rendered: Json = {}
    for name, kind in ds.properties.items():
        plain = plain_value(page, ds, name)
        value: Any
        if kind == "rollup":
            value = _rollup_value(plain, page, ctx, limit=REFERENCE_LIMIT)
        else:
            value = _property_value(kind, plain, page, ctx)
        prop: Json = {"id": property_id(name, kind), "type": kind, kind: value}
        if kind == "relation":
            prop[kind] = value[:RELATION_LIMIT]
            prop["has_more"] = len(value) > RELATION_LIMIT
        elif kind == "people":
            prop[kind] = value[:REFERENCE_LIMIT]
        elif kind in ("title", "rich_text"):
            prop[kind] = _cap_mentions(value, REFERENCE_LIMIT)
        rendered[name] = prop
    return rendered


def _cap_mentions(runs: list[Json], limit: int) -> list[Json]:
    """Runs with the mentions past the first ``limit`` left out (text runs all kept)."""
    kept, mentions = [], 0
    for run in runs:
        if run.get("type") == "mention":
            mentions += 1
            if mentions > limit:
                continue
        kept.append(run)
    return kept


def _text_value(value: Any) -> list[Json]:
    if isinstance(value, list):
        return copy.deepcopy(value)
    return rich_text(str(value)) if value not in (None, "") else []


def _date_json(value: Any) -> Json | None:
    if not value:
        return None
    if isinstance(value, dict):
        return {"start": value["start"], "end": value.get("end"),
                "time_zone": value.get("time_zone")}
    if isinstance(value, date):
        return {"start": value.isoformat(), "end": None, "time_zone": None}
    return {"start": str(value), "end": None, "time_zone": None}


def _formula_value(value: Any, page: Page, ctx: RenderContext) -> Json:
    """The formula's result, typed as Notion reports it: string, number, boolean or date."""
    if isinstance(value, bool):
        return {"type": "boolean", "boolean": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "number": value}
    if isinstance(value, date):
        return {"type": "date", "date": _date_json(value)}
    return {"type": "string", "string": None if value is None else str(value)}


def _unique_id_value(value: Any, page: Page, ctx: RenderContext) -> Json:
    if isinstance(value, str) and "-" in value:
        prefix, number = value.rsplit("-", 1)
        return {"prefix": prefix, "number": int(number)}
    return {"prefix": None, "number": value if isinstance(value, int) else None}


def _verification_value(value: Any, page: Page, ctx: RenderContext) -> Json:
    if not isinstance(value, dict):
        return {"state": "unverified", "date": None, "verified_by": None}
    verifier = value.get("verified_by")
    return {
        "state": value.get("state", "verified"),
        "date": _date_json(value.get("date")),
        "verified_by": None if verifier is None else _user_json(verifier, ctx),
    }


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
    "date": lambda v, page, ctx: _date_json(v),
    "checkbox": lambda v, page, ctx: bool(v),
    "url": _text_or_none,
    "email": _text_or_none,
    "phone_number": _text_or_none,
    "files": lambda v, page, ctx: [_file_entry(spec, ctx) for spec in v or []],
    "relation": lambda v, page, ctx: [{"id": dashed_id(p.id)} for p in v or []],
    "people": lambda v, page, ctx: [_user_json(user, ctx) for user in v or []],
    "created_time": lambda v, page, ctx: iso_time(page.created_time),
    "last_edited_time": lambda v, page, ctx: iso_time(page.last_edited_time),
    "created_by": lambda v, page, ctx: _user_ref(ctx.user_id),
    "last_edited_by": lambda v, page, ctx: _user_ref(ctx.user_id),
    "formula": _formula_value,
    "rollup": lambda v, page, ctx: _rollup_value(v, page, ctx),
    "unique_id": _unique_id_value,
    "verification": _verification_value,
    "button": lambda v, page, ctx: {},
}


def _file_entry(spec: FileSpec, ctx: RenderContext) -> Json:
    return {"name": spec.name, **ctx.file_object(spec)}


# ---- rollups ------------------------------------------------------------------------------


def _related_values(spec: Rollup, page: Page, ctx: RenderContext,
                    limit: int | None) -> list[tuple[str, Any]]:
    """(type, typed value) of the rolled-up property on each related page."""
    ds = ctx.index.data_source_of(page)
    related = plain_value(page, ds, spec.relation) if ds is not None else None
    values = []
    for other in (related or [])[:limit]:
        other_ds = ctx.index.data_source_of(other) if isinstance(other, Page) else None
        kind = other_ds.properties.get(spec.property) if other_ds is not None else None
        if other_ds is not None and kind is not None:
            plain = plain_value(other, other_ds, spec.property)
            values.append((kind, _property_value(kind, plain, other, ctx)))
    return values


def _is_empty(value: Any) -> bool:
    return value in (None, "", [], {}) or value == {"type": "string", "string": None}


def _number_of(value: Any) -> float | None:
    if isinstance(value, dict) and value.get("type") in ("number", "boolean"):
        value = value.get(value["type"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _date_start(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("type") == "date":
        value = value.get("date")
    return value.get("start") if isinstance(value, dict) else None


def _aggregate(function: str, values: list[Any]) -> tuple[str, Any]:
    """Notion's rollup functions over typed values: ("number", n) or ("date", {...})."""
    present = [v for v in values if not _is_empty(v)]
    numbers = [n for n in (_number_of(v) for v in present) if n is not None]
    starts = sorted(s for s in (_date_start(v) for v in present) if s)
    total = len(values)
    counts = {
        "count": total,
        "count_values": sum(len(v) if isinstance(v, list) else 1 for v in present),
        "empty": total - len(present),
        "not_empty": len(present),
        "unique": len({json.dumps(v, sort_keys=True) for v in present}),
        "checked": sum(1 for v in values if v is True),
        "unchecked": sum(1 for v in values if v is False),
    }
    if function in counts:
        return "number", counts[function]
    if function.startswith("percent_"):
        part = counts.get(function.removeprefix("percent_"), 0)
        return "number", round(part / total, 4) if total else 0
    if function in ("earliest_date", "latest_date", "date_range"):
        if not starts:
            return "date", None
        start = starts[-1] if function == "latest_date" else starts[0]
        end = starts[-1] if function == "date_range" else None
        return "date", {"start": start, "end": end, "time_zone": None}
    if not numbers:
        return "number", None
    reducers: dict[str, Callable[[list[float]], float]] = {
        "sum": sum, "average": statistics.fmean, "median": statistics.median,
        "min": min, "max": max, "range": lambda ns: max(ns) - min(ns),
    }
    return "number", reducers.get(function, sum)(numbers)


def _rollup_value(spec: Any, page: Page, ctx: RenderContext, limit: int | None = None) -> Json:
    """A rollup's value over the related pages (the first ``limit`` of them if given)."""
    if not isinstance(spec, Rollup):
        return {"type": "array", "array": [], "function": "show_original"}
    values = _related_values(spec, page, ctx, limit)
    if spec.function in ("show_original", "show_unique"):
        items = [{"type": kind, kind: value} for kind, value in values]
        if spec.function == "show_unique":
            unique = {json.dumps(item, sort_keys=True): item for item in items}
            items = list(unique.values())
        return {"type": "array", "array": items, "function": spec.function}
    kind, result = _aggregate(spec.function, [value for _, value in values])
    return {"type": kind, kind: result, "function": spec.function}


# ---- property items (GET /v1/pages/{id}/properties/{property_id}) -----------------------


def _item(pid: str, kind: str, value: Any) -> Json:
    return {"object": "property_item", "id": pid, "type": kind, kind: value}


def property_items(page: Page, name: str, kind: str, ctx: RenderContext) -> list[Json] | Json:
    """The items of a paginated property (title, rich_text, relation, people, rollup), or
    the single property_item object of any other type. A rollup lists the rolled-up values
    of every related page, flattened (its result is in ``property_item_meta``)."""
    ds = ctx.index.data_source_of(page)
    value = plain_value(page, ds, name) if ds is not None else page.title
    pid = property_id(name, kind)
    if kind == "rollup":
        if not isinstance(value, Rollup):
            return []
        items = []
        for item_kind, item in _related_values(value, page, ctx, None):
            many = item_kind in PAGINATED_PROPERTY_TYPES and isinstance(item, list)
            items += [_item(pid, item_kind, part) for part in (item if many else [item])]
        return items
    typed = _property_value(kind, value, page, ctx)
    if kind in PAGINATED_PROPERTY_TYPES:
        return [_item(pid, kind, item) for item in typed]
    return _item(pid, kind, typed)


def property_item_meta(page: Page, name: str, kind: str, ctx: RenderContext) -> Json:
    """The ``property_item`` summary of a paginated answer, without ``next_url``.

    For a rollup it carries the result over every related page; a "show original" rollup's
    array there is empty, its values being the listed items.
    """
    meta: Json = {"id": property_id(name, kind), "type": kind, kind: {}}
    if kind == "rollup":
        ds = ctx.index.data_source_of(page)
        rollup = _rollup_value(plain_value(page, ds, name) if ds else None, page, ctx)
        if rollup["type"] == "array":
            rollup["array"] = []
        meta[kind] = rollup
    return meta


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
    if block.type == "paragraph" and ctx.has_2025_fields and "icon" not in payload:
        # Recorded from 2025-09-03 on: rich_text, icon (null), color.
        payload = {"rich_text": payload.pop("rich_text", []), "icon": None, **payload}
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
        prop: Json = {"id": property_id(name, kind), "name": name, "type": kind}
        if ctx.has_2025_fields:
            prop["description"] = None  # not sent at 2022-06-28 (recorded)
        schema[name] = {**prop, kind: _property_config(ds, name, kind, ctx)}
    return schema


def _property_config(ds: DataSource, name: str, kind: str, ctx: RenderContext) -> Json:
    if kind == "number":
        return {"format": "number"}
    if kind in ("select", "multi_select", "status"):
        described = {"description": None} if ctx.has_2025_fields else {}
        options = [{**option_json(o), **described} for o in _option_names(ds, name)]
        if kind != "status":
            return {"options": options}
        return {"options": options, "groups": _status_groups(options)}
    if kind == "relation":
        return _relation_config(ds, name, ctx)
    if kind == "rollup":
        return _rollup_config(ds, name, ctx)
    if kind == "formula":
        return {"expression": ""}  # the emulator keeps results, not expressions
    if kind == "unique_id":
        first = next((_unique_id_value(row.properties.get(name), row, ctx) for row in ds.rows
                      if row.properties.get(name) is not None), {"prefix": None})
        return {"prefix": first["prefix"]}
    return {}


def _rollup_config(ds: DataSource, name: str, ctx: RenderContext) -> Json:
    spec = next((row.properties[name] for row in ds.rows
                 if isinstance(row.properties.get(name), Rollup)), None)
    if spec is None:
        return {"function": "show_original"}
    related = next((p for row in ds.rows for p in row.properties.get(spec.relation) or []
                    if isinstance(p, Page)), None)
    target = ctx.index.data_source_of(related) if related is not None else None
    rolled_kind = target.properties.get(spec.property, "title") if target else "title"
    return {
        "relation_property_name": spec.relation,
        "relation_property_id": property_id(spec.relation, "relation"),
        "rollup_property_name": spec.property,
        "rollup_property_id": property_id(spec.property, rolled_kind),
        "function": spec.function,
    }


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


def _database_url(db: Database, ctx: RenderContext) -> str:
    """A database's url: its bare id (no slug). A data source's url is its database's."""
    return page_url("", db.id, ctx.version)


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
        **({"is_locked": db.is_locked} if ctx.has_2025_fields else {}),
        "icon": _icon_json(db.icon, ctx),
        "cover": _cover_json(db.cover, ctx),
        "url": _database_url(db, ctx),
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
        "created_time": database_time(db.created_time, ctx),
        "last_edited_time": database_time(db.last_edited_time, ctx),
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
        "url": _database_url(db, ctx),
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


def render_person_user(workspace: Workspace, version: str = V2025) -> Json:
    """The workspace's own person, who created and edited everything."""
    return _person_json(
        {"id": person_user_id(workspace), "name": workspace.person_name,
         "email": workspace.person_email, "avatar_url": workspace.person_avatar_url},
        version,
    )


def workspace_users(workspace: Workspace, version: str) -> list[Json]:
    """GET /v1/users: the workspace's members (its own person, then every person the
    pages name with a name, in document order), then the integration's bot."""
    users = [render_person_user(workspace, version)]
    seen = {users[0]["id"]}
    for member in _named_people(workspace):
        user = _person_json(member, version)
        if user["id"] not in seen:
            seen.add(user["id"])
            users.append(user)
    return [*users, render_bot_user(workspace)]


def _named_people(workspace: Workspace) -> list[dict[str, Any]]:
    found = []
    for obj in workspace.walk():
        if not isinstance(obj, Page):
            continue
        for value in obj.properties.values():
            values = value if isinstance(value, list) else [value]
            if isinstance(value, dict):
                values = [value.get("verified_by")]  # a verification
            found += [v for v in values if isinstance(v, dict) and "id" in v and v.get("name")]
    return found
