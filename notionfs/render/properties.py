"""Database row property values as plain text, fetching values the page object cut short."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from notionfs.models import Page, normalize_id
from notionfs.render.inline import date_text, notion_url, plain_rich_text

__all__ = [
    "PropertyFetcher",
    "TitleLookup",
    "UserLookup",
    "REFERENCE_LIMIT",
    "property_text",
    "row_properties",
    "number_text",
]

logger = logging.getLogger(__name__)

# (page_id, property_id) -> every property_item of that property (GET /v1/pages/{id}/
# properties/{property_id}, all pages of it), e.g. NotionClient.page_property.
PropertyFetcher = Callable[[str, str], list[dict[str, Any]]]
# object id -> a known title (pages, databases) or name (users), or None.
TitleLookup = Callable[[str], "str | None"]
# user id -> the user's name (from GET /v1/users), or None when unknown.
UserLookup = Callable[[str], "str | None"]

# A page object holds at most this many references per property: relations say so with
# has_more; title, rich_text and people lists just stop (Notion API reference, "Retrieve a
# page", Limits). A list this long may be cut, so its full value is fetched.
REFERENCE_LIMIT = 25
_LIST_TYPES = frozenset({"title", "rich_text", "people"})
SEPARATOR = ", "


def _truncated(kind: str, prop: Mapping[str, Any], value: Any) -> bool:
    if kind == "relation":
        return prop.get("has_more") is True
    return kind in _LIST_TYPES and isinstance(value, list) and len(value) >= REFERENCE_LIMIT


def property_text(
    prop: Mapping[str, Any],
    *,
    page_id: str,
    fetch: PropertyFetcher | None,
    title: TitleLookup,
    user_name: UserLookup | None = None,
) -> str:
    """One property value (as the page object holds it) as text.

    People, created_by, last_edited_by (and a verification's verifier) show the user's
    name: the one the value carries, else ``user_name(id)``, else the id.

    When the page object's value may be cut short (a relation with ``has_more``, or a
    title / rich_text / people list at the 25-item cap) and ``fetch`` is given, the whole
    value is fetched. Rollups show the page object's value, which Notion computes over the
    first 25 related pages.
    """
    kind = str(prop.get("type") or "")
    value = prop.get(kind)
    prop_id = prop.get("id")
    if fetch is not None and isinstance(prop_id, str) and _truncated(kind, prop, value):
        items = fetch(page_id, prop_id)
        value = [item.get(kind) for item in items if item.get("type") == kind]
    return value_text(kind, value, _with_users(title, user_name))


def _with_users(title: TitleLookup, user_name: UserLookup | None) -> TitleLookup:
    """One lookup for titles and user names (both keyed by ids, which never collide)."""
    if user_name is None:
        return title
    names = user_name
    return lambda object_id: names(object_id) or title(object_id)


def value_text(kind: str, value: Any, title: TitleLookup) -> str:
    """A typed value (what sits under the property's type key) as text."""
    render = _TEXT.get(kind)
    if render is None:
        logger.debug("no text for property type %r", kind)
        return ""
    return render(value, title)


def row_properties(
    page: Page,
    *,
    fetch: PropertyFetcher | None,
    title: TitleLookup,
    user_name: UserLookup | None = None,
) -> dict[str, str]:
    """Every property of a database row as name -> text; the title property first.
    ``user_name`` names the users that values give only by id (see ``property_text``)."""
    props = page.raw_properties
    names = sorted(props, key=lambda name: _type_of(props[name]) != "title")
    return {
        name: property_text(props[name], page_id=page.id, fetch=fetch, title=title,
                            user_name=user_name)
        for name in names
        if isinstance(props[name], Mapping)
    }


def _type_of(prop: Any) -> str | None:
    return prop.get("type") if isinstance(prop, Mapping) else None


# ---- one function per type ----------------------------------------------------------------


def number_text(value: Any) -> str:
    """Numbers as people write them: 3 not 3.0, 0.1 not 0.1000000000000000055."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _rich(value: Any, title: TitleLookup) -> str:
    if isinstance(value, Mapping):  # one item from the property endpoint
        value = [value]
    return plain_rich_text(value if isinstance(value, list) else [])


def _name(value: Any, title: TitleLookup) -> str:
    return str(value.get("name") or "") if isinstance(value, Mapping) else ""


def _names(value: Any, title: TitleLookup) -> str:
    items = value if isinstance(value, list) else []
    return SEPARATOR.join(_name(item, title) for item in items if _name(item, title))


def _user(value: Any, title: TitleLookup) -> str:
    """A user (or group): its name; a partial user is looked up, else shown by id."""
    if not isinstance(value, Mapping):
        return ""
    name = value.get("name")
    if isinstance(name, str) and name:
        return name
    user_id = value.get("id")
    return (title(normalize_id(user_id)) or user_id) if isinstance(user_id, str) else ""


def _users(value: Any, title: TitleLookup) -> str:
    items = value if isinstance(value, list) else [value]
    return SEPARATOR.join(text for text in (_user(item, title) for item in items) if text)


def _relation(value: Any, title: TitleLookup) -> str:
    items = value if isinstance(value, list) else [value]
    ids = [normalize_id(item["id"]) for item in items if isinstance(item, Mapping)
           and isinstance(item.get("id"), str)]
    return SEPARATOR.join(title(i) or notion_url(i) for i in ids)


def _date(value: Any, title: TitleLookup) -> str:
    return date_text(value if isinstance(value, Mapping) else None)


def _string(value: Any, title: TitleLookup) -> str:
    return value if isinstance(value, str) else ""


def _checkbox(value: Any, title: TitleLookup) -> str:
    return "true" if value is True else "false"


def _number(value: Any, title: TitleLookup) -> str:
    return number_text(value)


def _files(value: Any, title: TitleLookup) -> str:
    items = value if isinstance(value, list) else []
    return SEPARATOR.join(_file_name(item) for item in items if isinstance(item, Mapping))


def _file_name(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    if isinstance(name, str) and name:
        return name
    inner = item.get(str(item.get("type")))
    url = inner.get("url") if isinstance(inner, Mapping) else None
    # The last path part only: a signed URL's query string never leaves the client.
    return str(url).split("?", 1)[0].rsplit("/", 1)[-1] if isinstance(url, str) else ""


def _formula(value: Any, title: TitleLookup) -> str:
    if not isinstance(value, Mapping):
        return ""
    kind = value.get("type")
    inner = value.get(kind) if isinstance(kind, str) else None
    if kind == "boolean":
        return "" if inner is None else _checkbox(inner, title)
    if kind == "number":
        return number_text(inner)
    if kind == "date":
        return _date(inner, title)
    return inner if isinstance(inner, str) else ""


def _rollup(value: Any, title: TitleLookup) -> str:
    if not isinstance(value, Mapping):
        return ""
    kind = value.get("type")
    if kind == "number":
        return number_text(value.get("number"))
    if kind == "date":
        return _date(value.get("date"), title)
    if kind == "array":
        items = value.get("array")
        return SEPARATOR.join(_array_items(items if isinstance(items, list) else [], title))
    return ""  # "incomplete", "unsupported"


def _array_items(items: Sequence[Any], title: TitleLookup) -> list[str]:
    texts = []
    for item in items:
        if isinstance(item, Mapping):
            kind = str(item.get("type") or "")
            text = value_text(kind, item.get(kind), title)
            if text:
                texts.append(text)
    return texts


def _unique_id(value: Any, title: TitleLookup) -> str:
    if not isinstance(value, Mapping) or value.get("number") is None:
        return ""
    number = number_text(value.get("number"))
    prefix = value.get("prefix")
    return f"{prefix}-{number}" if prefix else number


def _verification(value: Any, title: TitleLookup) -> str:
    if not isinstance(value, Mapping):
        return ""
    state = str(value.get("state") or "")
    date = _date(value.get("date"), title)
    verifier = _user(value.get("verified_by"), title)
    details = [part for part in (date, f"by {verifier}" if verifier else "") if part]
    return f"{state} ({', '.join(details)})" if details and state else state


def _place(value: Any, title: TitleLookup) -> str:
    if not isinstance(value, Mapping):
        return ""
    for key in ("name", "address"):
        if isinstance(value.get(key), str) and value[key]:
            return str(value[key])
    lat, lon = value.get("lat"), value.get("lon")
    return f"{number_text(lat)}, {number_text(lon)}" if lat is not None else ""


def _empty(value: Any, title: TitleLookup) -> str:
    return ""


_TEXT: dict[str, Callable[[Any, TitleLookup], str]] = {
    "title": _rich,
    "rich_text": _rich,
    "number": _number,
    "select": _name,
    "status": _name,
    "multi_select": _names,
    "date": _date,
    "people": _users,
    "files": _files,
    "checkbox": _checkbox,
    "url": _string,
    "email": _string,
    "phone_number": _string,
    "formula": _formula,
    "relation": _relation,
    "rollup": _rollup,
    "created_time": _string,
    "last_edited_time": _string,
    "created_by": _user,
    "last_edited_by": _user,
    "unique_id": _unique_id,
    "verification": _verification,
    "button": _empty,
    "place": _place,
}
