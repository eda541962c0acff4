"""YAML front matter: a few keys and one nested mapping, every string quoted safely."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

__all__ = ["FrontMatterValue", "yaml_string", "front_matter"]

FrontMatterValue = str | bool | datetime | Mapping[str, str]

# Strings left unquoted: letters first, then letters, digits, spaces and a few marks that
# mean nothing to YAML in a block mapping value. Anything else is double-quoted.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 _.,()/+-]*")
# Words YAML 1.1 (PyYAML, many static site generators) reads as booleans or null.
_RESERVED = frozenset(
    "y yes n no true false on off null".split()
)
# Characters a YAML double-quoted scalar may not hold raw: C0 and C1 controls, DEL, the
# byte order mark, surrogates, U+FFFE/U+FFFF, and the line and paragraph separators (which
# YAML 1.1 reads as line breaks). JSON-style escapes cover them (YAML 1.2 section 5.7).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ufeff\ud800-\udfff\ufffe\uffff\u2028\u2029]")
_SHORT_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v",
    "\f": "\\f", "\r": "\\r", "\x1b": "\\e", "\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P",
}  # fmt: skip


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04x}"


def yaml_string(text: str) -> str:
    """``text`` as a YAML scalar that reads back as exactly this string."""
    if _PLAIN.fullmatch(text) and not text.endswith(" ") and text.lower() not in _RESERVED:
        return text
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _UNSAFE.sub(_escape, body) + '"'


def front_matter(fields: Sequence[tuple[str, FrontMatterValue]]) -> str:
    """A ``---`` delimited YAML block; mapping values become an indented mapping.

    Keys given here are trusted identifiers (``id``, ``title``); keys of nested mappings
    (property names) are quoted like any string. Booleans are YAML ``true`` / ``false``.
    Datetimes are written in UTC, to the second, ISO 8601.
    """
    lines = ["---"]
    for key, value in fields:
        if isinstance(value, bool):
            lines.append(f"{key}: {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f"{key}: {yaml_string(value)}")
        elif isinstance(value, datetime):
            # Unquoted, so YAML readers see a timestamp (YAML 1.1 timestamp type).
            lines.append(f"{key}: {value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        elif not value:
            lines.append(f"{key}: {{}}")
        else:
            lines.append(f"{key}:")
            lines.extend(f"  {yaml_string(k)}: {yaml_string(v)}" for k, v in value.items())
    lines.append("---")
    return "\n".join(lines) + "\n"
