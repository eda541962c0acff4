"""A database's rows as one CSV file (RFC 4180, UTF-8 without BOM, CRLF line ends)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from notionfs.models import Page
from notionfs.render.properties import PropertyFetcher, TitleLookup, UserLookup, row_properties

__all__ = ["render_csv", "csv_columns"]


def _title_name(rows: Sequence[Page]) -> str | None:
    for row in rows:
        for name, prop in row.raw_properties.items():
            if isinstance(prop, Mapping) and prop.get("type") == "title":
                return name
    return None


def csv_columns(rows: Sequence[Page], columns: Sequence[str] | None) -> list[str]:
    """The header: the title property, then ``columns`` (the schema's order) if given, else
    the names sorted; names only some rows carry come last, sorted."""
    title = _title_name(rows)
    seen = {name for row in rows for name in row.raw_properties}
    ordered = list(dict.fromkeys(columns)) if columns is not None else sorted(seen)
    extra = sorted(seen - set(ordered))
    head = [title] if title is not None else []
    return head + [name for name in ordered + extra if name != title]


def render_csv(
    rows: Sequence[Page],
    *,
    columns: Sequence[str] | None,
    fetch: PropertyFetcher | None,
    title: TitleLookup,
    user_name: UserLookup | None = None,
) -> bytes:
    """Header row, then one row per database row, every property as text (``user_name``:
    see ``row_properties``).

    No byte order mark: the file is for scripts and Unix tools first (a BOM would glue
    itself to the first column name); spreadsheets open UTF-8 CSV through their import
    dialogs. Fields holding commas, quotes or line breaks are quoted (RFC 4180).
    """
    header = csv_columns(rows, columns)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        texts = row_properties(row, fetch=fetch, title=title, user_name=user_name)
        writer.writerow([texts.get(name, "") for name in header])
    return out.getvalue().encode("utf-8")
