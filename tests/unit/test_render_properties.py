"""Property values to text, fetching cut-short values; database rows to CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from notionfs.models import Page, parse_page
from notionfs.render import property_text, render_csv, row_properties
from notionfs.render.properties import REFERENCE_LIMIT, number_text

PAGE_ID = "12345678-aaaa-4bbb-8ccc-1234567890ab"
REL_A = "aaaaaaaa-0000-4000-8000-000000000001"
REL_B = "aaaaaaaa-0000-4000-8000-000000000002"
TITLES = {REL_A: "Alpha page"}


def rt(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": text, "link": None}, "plain_text": text,
            "href": None, "annotations": {}}


def text_of(kind: str, value: Any, **extra: Any) -> str:
    prop = {"id": "p%3Ax", "type": kind, kind: value, **extra}
    return property_text(prop, page_id=PAGE_ID, fetch=None, title=TITLES.get)


USER = {"object": "user", "id": REL_B, "name": "Ada", "type": "person", "person": {}}
DATE = {"start": "2026-01-05", "end": None, "time_zone": None}


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("title", [rt("Hello "), rt("world")], "Hello world"),
    ("rich_text", [rt("a\nb")], "a\nb"),
    ("rich_text", [], ""),
    ("number", 3.0, "3"), ("number", 0.1, "0.1"), ("number", None, ""), ("number", 12, "12"),
    ("select", {"id": "1", "name": "Alpha", "color": "red"}, "Alpha"), ("select", None, ""),
    ("status", {"id": "1", "name": "Done", "color": "green"}, "Done"),
    ("multi_select", [{"name": "a"}, {"name": "b"}], "a, b"),
    ("date", DATE, "2026-01-05"),
    ("date", {"start": "2026-01-05T10:00:00.000", "end": "2026-01-06",
              "time_zone": "Europe/Berlin"},
     "2026-01-05T10:00:00.000 → 2026-01-06 (Europe/Berlin)"),
    ("date", None, ""),
    ("people", [USER, {"object": "user", "id": REL_A}, {"object": "user", "id": "zz"}],
     "Ada, Alpha page, zz"),
    ("people", [{"object": "group", "id": "g", "name": "Team"}], "Team"),
    ("files", [{"name": "a.png", "type": "file", "file": {"url": "https://x/a.png?sig=1"}},
               {"name": "", "type": "external", "external": {"url": "https://x/b.pdf?t=2"}}],
     "a.png, b.pdf"),
    ("checkbox", True, "true"), ("checkbox", False, "false"),
    ("url", "https://example.com", "https://example.com"), ("url", None, ""),
    ("email", "a@example.com", "a@example.com"), ("phone_number", "+1 555", "+1 555"),
    ("formula", {"type": "string", "string": "s"}, "s"),
    ("formula", {"type": "string", "string": None}, ""),
    ("formula", {"type": "number", "number": 2.5}, "2.5"),
    ("formula", {"type": "boolean", "boolean": False}, "false"),
    ("formula", {"type": "date", "date": DATE}, "2026-01-05"),
    ("relation", [{"id": REL_A}, {"id": REL_B}],
     "Alpha page, https://www.notion.so/" + REL_B.replace("-", "")),
    ("rollup", {"type": "number", "number": 7, "function": "sum"}, "7"),
    ("rollup", {"type": "date", "date": DATE, "function": "latest_date"}, "2026-01-05"),
    ("rollup", {"type": "array", "function": "show_original", "array": [
        {"type": "title", "title": [rt("One")]}, {"type": "number", "number": 2},
        {"type": "people", "people": [USER]}]}, "One, 2, Ada"),
    ("rollup", {"type": "incomplete", "incomplete": {}, "function": "sum"}, ""),
    ("created_time", "2026-01-05T09:30:00.000Z", "2026-01-05T09:30:00.000Z"),
    ("last_edited_time", "2026-01-06T09:30:00.000Z", "2026-01-06T09:30:00.000Z"),
    ("created_by", USER, "Ada"), ("last_edited_by", {"object": "user", "id": "u1"}, "u1"),
    ("unique_id", {"prefix": "TASK", "number": 12}, "TASK-12"),
    ("unique_id", {"prefix": None, "number": 3}, "3"),
    ("verification", {"state": "verified", "date": DATE, "verified_by": USER},
     "verified (2026-01-05, by Ada)"),
    ("verification", {"state": "unverified", "date": None, "verified_by": None}, "unverified"),
    ("verification", None, ""),
    ("button", {}, ""),
    ("place", {"lat": 64.1, "lon": -21.9, "name": "Reykjavík"}, "Reykjavík"),
    ("place", {"lat": 64.1, "lon": -21.9}, "64.1, -21.9"),
    ("some_future_type", {"x": 1}, ""),
])
def test_every_type_as_text(kind: str, value: Any, expected: str) -> None:
    assert text_of(kind, value) == expected


def test_number_text() -> None:
    assert [number_text(v) for v in (1e20, 1.5e-7, True, -0.0, 10**20)] == [
        "1e+20", "1.5e-07", "", "0", "100000000000000000000"]


class Fetcher:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.calls: list[tuple[str, str]] = []

    def __call__(self, page_id: str, property_id: str) -> list[dict[str, Any]]:
        self.calls.append((page_id, property_id))
        return self.items


def test_relation_with_has_more_is_fetched_whole() -> None:
    items = [{"object": "property_item", "type": "relation", "relation": {"id": REL_A}},
             {"object": "property_item", "type": "relation", "relation": {"id": REL_B}}]
    fetch = Fetcher(items)
    prop = {"id": "r%3F", "type": "relation", "relation": [{"id": REL_A}], "has_more": True}
    text = property_text(prop, page_id=PAGE_ID, fetch=fetch, title=TITLES.get)
    assert text.startswith("Alpha page, https://www.notion.so/")
    assert fetch.calls == [(PAGE_ID, "r%3F")]


@pytest.mark.parametrize("kind", ["title", "rich_text", "people"])
def test_lists_at_the_cap_are_fetched_whole(kind: str) -> None:
    item = USER if kind == "people" else rt("x")
    fetch = Fetcher([{"type": kind, kind: item}] * 30)
    capped = {"id": "p", "type": kind, kind: [item] * REFERENCE_LIMIT}
    text = property_text(capped, page_id=PAGE_ID, fetch=fetch, title=TITLES.get)
    assert fetch.calls == [(PAGE_ID, "p")]
    assert text == (", ".join(["Ada"] * 30) if kind == "people" else "x" * 30)
    short = {"id": "p", "type": kind, kind: [item] * (REFERENCE_LIMIT - 1)}
    property_text(short, page_id=PAGE_ID, fetch=fetch, title=TITLES.get)
    assert len(fetch.calls) == 1  # below the cap: the page object is whole


def test_without_fetcher_the_page_object_value_is_used() -> None:
    prop = {"id": "r", "type": "relation", "relation": [{"id": REL_A}], "has_more": True}
    assert property_text(prop, page_id=PAGE_ID, fetch=None, title=TITLES.get) == "Alpha page"


# ---- rows and CSV -----------------------------------------------------------------------------


def row(row_id: str, name: str, **props: dict[str, Any]) -> Page:
    return parse_page({
        "object": "page", "id": row_id, "created_time": "2026-01-05T09:30:00.000Z",
        "last_edited_time": "2026-01-05T09:30:00.000Z", "in_trash": False, "url": "",
        "parent": {"type": "database_id", "database_id": REL_A},
        "properties": {**props, "Name": {"id": "title", "type": "title", "title": [rt(name)]}},
    })


def prop(kind: str, value: Any) -> dict[str, Any]:
    return {"id": kind[:4], "type": kind, kind: value}


ROWS = [
    row(REL_A, "First", Notes=prop("rich_text", [rt('Says "hi", twice\nthen stops')]),
        Count=prop("number", 2)),
    row(REL_B, "Second, with comma", Count=prop("number", 3.5),
        Extra=prop("checkbox", True)),
]


def test_row_properties_put_the_title_first() -> None:
    texts = row_properties(ROWS[0], fetch=None, title=TITLES.get)
    assert list(texts) == ["Name", "Notes", "Count"]
    assert texts["Notes"] == 'Says "hi", twice\nthen stops'


def test_csv_columns_quoting_and_encoding() -> None:
    data = render_csv(ROWS, columns=["Count", "Notes", "Name"], fetch=None, title=TITLES.get)
    assert not data.startswith(b"\xef\xbb\xbf")  # no BOM
    text = data.decode("utf-8")
    assert text.split("\r\n")[0] == "Name,Count,Notes,Extra"
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == [
        ["Name", "Count", "Notes", "Extra"],
        ["First", "2", 'Says "hi", twice\nthen stops', ""],
        ["Second, with comma", "3.5", "", "true"],
    ]
    assert '"Says ""hi"", twice\nthen stops"' in text  # RFC 4180 quoting


def test_csv_without_schema_sorts_names_and_without_rows_has_a_header() -> None:
    text = render_csv(ROWS, columns=None, fetch=None, title=TITLES.get).decode()
    assert text.startswith("Name,Count,Extra,Notes\r\n")
    assert render_csv([], columns=["Name", "B"], fetch=None, title=TITLES.get) == b"Name,B\r\n"
