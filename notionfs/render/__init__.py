"""Generated text files: a page as Markdown (index.md), a database as CSV (index.csv)."""

from __future__ import annotations

from notionfs.render.inline import Links, notion_url, relative_link
from notionfs.render.markdown import BlockNode, StaticLinks, collect_nodes, render_page
from notionfs.render.properties import (
    PropertyFetcher,
    TitleLookup,
    UserLookup,
    property_text,
    row_properties,
)
from notionfs.render.table import render_csv

__all__ = [
    "BlockNode",
    "Links",
    "StaticLinks",
    "PropertyFetcher",
    "TitleLookup",
    "UserLookup",
    "collect_nodes",
    "notion_url",
    "property_text",
    "relative_link",
    "render_csv",
    "render_page",
    "row_properties",
]
