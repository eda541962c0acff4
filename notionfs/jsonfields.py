"""Readers of Notion's JSON fields: a missing or mis-shaped field raises MalformedResponse."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from notionfs.errors import ApiError

__all__ = [
    "MalformedResponse",
    "as_object",
    "expect_object",
    "flag_field",
    "frozen",
    "id_field",
    "list_field",
    "map_field",
    "normalize_id",
    "opt_str_field",
    "plain_text",
    "str_field",
    "time_field",
    "trashed",
]

_HEX32 = re.compile(r"[0-9a-f]{32}")


class MalformedResponse(ApiError):
    """A 2xx answer whose JSON lacks a field we need or has it in the wrong shape.

    ``status`` is 0: the HTTP exchange succeeded, the body is what is wrong.
    """

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(0, "malformed_response", message, request_id)


def _require(d: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = d.get(key)
    if not isinstance(value, kind):
        raise MalformedResponse(f"{what}: missing or malformed field {key!r}")
    return value


def str_field(d: Mapping[str, Any], key: str, what: str) -> str:
    value: str = _require(d, key, str, what)
    return value


def opt_str_field(d: Mapping[str, Any], key: str, what: str) -> str | None:
    if d.get(key) is None:
        return None
    return str_field(d, key, what)


def map_field(d: Mapping[str, Any], key: str, what: str) -> Mapping[str, Any]:
    value: Mapping[str, Any] = _require(d, key, Mapping, what)
    return value


def list_field(d: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value: list[Any] = _require(d, key, list, what)
    return value


def as_object(d: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise MalformedResponse(f"{what}: expected a JSON object, got {type(d).__name__}")
    return d


def time_field(d: Mapping[str, Any], key: str, what: str) -> datetime:
    raw = str_field(d, key, what)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise MalformedResponse(f"{what}: bad timestamp in {key!r}") from exc
    # Notion always sends UTC with "Z"; a naive time would otherwise compare wrongly.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def trashed(d: Mapping[str, Any]) -> bool:
    # 2026-03-11 dropped "archived"; older versions send both (or only "archived").
    return bool(d.get("in_trash") or d.get("archived"))


def flag_field(d: Mapping[str, Any], key: str, what: str) -> bool:
    """An optional boolean field (absent in older API versions, or null: false)."""
    value = d.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedResponse(f"{what}: malformed field {key!r}")
    return value


def frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


def normalize_id(raw: str) -> str:
    """Notion id in dashed lowercase form; ids that are not 32 hex digits pass unchanged."""
    compact = raw.replace("-", "").lower()
    if not _HEX32.fullmatch(compact):
        return raw
    c = compact
    return f"{c[:8]}-{c[8:12]}-{c[12:16]}-{c[16:20]}-{c[20:]}"


def id_field(d: Mapping[str, Any], key: str, what: str) -> str:
    return normalize_id(str_field(d, key, what))


def plain_text(rich_text: Any) -> str:
    """The plain text of a rich_text array (runs concatenated)."""
    if not isinstance(rich_text, list):
        raise MalformedResponse("rich_text: expected a list")
    runs = (as_object(run, "rich_text item") for run in rich_text)
    return "".join(str_field(run, "plain_text", "rich_text item") for run in runs)


def expect_object(d: Any, expected: str) -> Mapping[str, Any]:
    """``d`` as a JSON object whose ``object`` field says ``expected``."""
    obj = as_object(d, expected)
    if obj.get("object") != expected:
        raise MalformedResponse(f"expected a {expected} object, got {obj.get('object')!r}")
    return obj
