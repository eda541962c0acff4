"""A files property's array as Notion sends and takes it: read whole, its entries found, re-sent.

Notion replaces a files property's whole array with what a request sends, and gives no id
to an entry: an entry is known by its file's URL (``journal.entry_key``) and its position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notionfs.errors import UploadFailedError
from notionfs.journal import Target, entry_key
from notionfs.writeapi import WriteApi

__all__ = [
    "PAGE_OBJECT_REFERENCES",
    "added_entry",
    "entry_keys",
    "file_url",
    "files_now",
    "files_of",
    "files_property",
    "locate",
    "resend",
]

# Notion's page objects hold at most 25 references per property ("Retrieve a page": use
# Retrieve a page property item for more).
PAGE_OBJECT_REFERENCES = 25


def files_now(api: WriteApi, page_id: str, wanted: str) -> tuple[str, list[dict[str, Any]]]:
    """(name, entries) of a files property, read now. A page object shows at most 25
    references per property; past that the property is read on its own (Retrieve a
    page property item), so a rewrite never drops the entries a page object left out."""
    page = api.get_page(page_id)
    name, existing = files_property(page, wanted)
    if len(existing) >= PAGE_OBJECT_REFERENCES:
        prop_id = page["properties"][name].get("id")
        items = api.client.page_property(page_id, str(prop_id)) if prop_id else []
        full = [f for item in items if isinstance(item.get("files"), list)
                for f in item["files"] if isinstance(f, dict)]
        if len(full) >= len(existing):
            existing = full
    return name, existing


def file_url(item: Any) -> str | None:
    """The URL of a file object (hosted or external); None when it has none."""
    if not isinstance(item, Mapping):
        return None
    kind = item.get("type")
    inner = item.get(kind) if isinstance(kind, str) else None
    url = inner.get("url") if isinstance(inner, Mapping) else None
    return url if isinstance(url, str) and url else None


def files_property(page: Mapping[str, Any], wanted: str) -> tuple[str, list[dict[str, Any]]]:
    """(name, entries) of the page's files property named or identified ``wanted``."""
    props = page.get("properties")
    if not isinstance(props, Mapping):
        raise UploadFailedError(f"page {page.get('id')} has no properties")
    for name, prop in props.items():
        if not isinstance(prop, Mapping) or wanted not in (name, prop.get("id")):
            continue
        if prop.get("type") != "files":
            raise UploadFailedError(f"property {name!r} is a {prop.get('type')}, not files")
        files = prop.get("files")
        return str(name), [f for f in files if isinstance(f, dict)] if isinstance(files,
                                                                                   list) else []
    raise UploadFailedError(f"page {page.get('id')} has no property {wanted!r}")


def files_of(page: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The entries of property ``name`` in a page answer; [] when it does not show them."""
    try:
        return files_property(page, name)[1]
    except UploadFailedError:
        return []


def entry_keys(items: list[dict[str, Any]]) -> list[str]:
    """``entry_key()`` of each entry that has a URL."""
    return [entry_key(url) for item in items if (url := file_url(item))]


def locate(items: list[dict[str, Any]], target: Target) -> int | None:
    """The position of the target's entry (by its key; among entries that share one, the
    one at ``entry_index`` if it is one of them, else the first); None if it is gone."""
    hits = [i for i, item in enumerate(items)
            if (url := file_url(item)) and entry_key(url) == target.entry_key]
    if not hits:
        return None
    return target.entry_index if target.entry_index in hits else hits[0]


def added_entry(items: list[dict[str, Any]], name: str | None, before: set[str]) -> str | None:
    """The key of the last entry named ``name`` whose file was not in ``before``: a file
    this write put there."""
    found = None
    for item in items:
        url = file_url(item)
        if item.get("name") == name and url and entry_key(url) not in before:
            found = entry_key(url)
    return found


def resend(item: Mapping[str, Any]) -> dict[str, Any]:
    """An existing files-property entry as a request keeps it: its name and its file by URL
    (Notion re-links a hosted file from the URL it gave; an external one keeps its URL)."""
    kind = str(item.get("type"))
    url = file_url(item)
    resent: dict[str, Any] = {"type": kind, kind: {"url": url}}
    if isinstance(item.get("name"), str):
        resent["name"] = item["name"]
    return resent
