"""A Notion page and its blocks as one Markdown document (rules: docs/CONTENT.md)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from notionfs.models import Block, Page, normalize_id
from notionfs.render.frontmatter import FrontMatterValue, front_matter
from notionfs.render.inline import (
    Links,
    escape_text,
    html_text,
    link_destination,
    notion_url,
    page_text_link,
    plain_rich_text,
    render_rich_text,
)

__all__ = [
    "BlockNode",
    "Links",
    "StaticLinks",
    "render_page",
    "render_blocks",
    "collect_nodes",
]

logger = logging.getLogger(__name__)

LIST_ITEM_TYPES = frozenset({"bulleted_list_item", "numbered_list_item", "to_do"})
# Bullets and to-dos share the "-" marker, so they form one list; numbered items another.
_DASH_ITEM_TYPES = frozenset({"bulleted_list_item", "to_do"})
# Blocks that only make sense inside Notion's UI: nothing to show in a file.
_OMITTED_TYPES = frozenset({"table_of_contents", "breadcrumb"})
# Notion's code languages whose usual Markdown fence name differs (GitHub Linguist names).
_FENCE_LANGUAGES = {
    "plain text": "text", "ascii art": "text", "notion formula": "text", "c++": "cpp",
    "c#": "csharp", "f#": "fsharp", "objective-c": "objectivec", "java/c/c++/c#": "java",
    "vb.net": "vbnet", "visual basic": "vb", "llvm ir": "llvm", "docker": "dockerfile",
    "markup": "html",
}  # fmt: skip


@dataclass(frozen=True)
class BlockNode:
    """A block with its children, already fetched (child pages/databases have none)."""

    block: Block
    children: tuple[BlockNode, ...] = ()


@dataclass(frozen=True)
class StaticLinks:
    """``Links`` from plain mappings: what a caller already knows about one folder."""

    children: Mapping[str, str] = field(default_factory=dict)  # object id -> "Name/"
    files: Mapping[str, str] = field(default_factory=dict)  # block id -> "name.png"
    titles: Mapping[str, str] = field(default_factory=dict)  # object id -> title

    def child(self, object_id: str) -> str | None:
        return self.children.get(normalize_id(object_id))

    def file(self, block_id: str) -> str | None:
        return self.files.get(normalize_id(block_id))

    def page_url(self, object_id: str) -> str:
        return notion_url(object_id)

    def title(self, object_id: str) -> str | None:
        return self.titles.get(normalize_id(object_id))


def collect_nodes(
    parent_id: str, children_of: Callable[[str], Iterable[Block]]
) -> tuple[BlockNode, ...]:
    """The block tree under ``parent_id``, fetching children with ``children_of`` (e.g.
    ``NotionClient.block_children``). Trashed blocks are left out; child pages and
    databases are not entered (their content is their own folder's)."""
    nodes = []
    for block in children_of(parent_id):
        if block.in_trash:
            continue
        entered = block.has_children and block.type not in ("child_page", "child_database")
        kids = collect_nodes(block.id, children_of) if entered else ()
        nodes.append(BlockNode(block, kids))
    return tuple(nodes)


# ---- the page ------------------------------------------------------------------------------


def render_page(
    page: Page,
    blocks: Sequence[BlockNode],
    links: Links,
    *,
    properties: Mapping[str, str] | None = None,
    cover: str | None = None,
    icon: str | None = None,
) -> str:
    """The whole index.md of a page: front matter, ``# Title``, cover, then the body.

    ``properties`` (a row's property texts) go into the front matter; ``cover`` and
    ``icon`` are relative, percent-encoded names of those files beside index.md.
    """
    title = page.title.strip() or "Untitled"
    fields: list[tuple[str, FrontMatterValue]] = [
        ("title", page.title),
        ("id", page.id),
        ("url", page.url or links.page_url(page.id)),
        ("created", page.created_time),
        ("edited", page.last_edited_time),
    ]
    if icon is not None:
        fields.append(("icon", unquote(icon)))
    elif page.icon is not None and page.icon.emoji:
        fields.append(("icon", page.icon.emoji))
    if cover is not None:
        fields.append(("cover", unquote(cover)))
    if page.is_archived:
        fields.append(("archived", True))  # in Notion's archive, not its trash
    if properties is not None:
        fields.append(("properties", dict(properties)))
    parts = [front_matter(fields), "# " + _heading_text(escape_text(title))]
    if cover is not None:
        parts.append(f"![Cover]({link_destination(cover)})")
    body = render_blocks(blocks, links)
    if body:
        parts.append(body)
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def _heading_text(text: str) -> str:
    # A heading ends at the first line break, and "#"s closing a heading are dropped.
    return re.sub(r"(#+)$", r"\\\1", " ".join(text.split()))


# ---- blocks --------------------------------------------------------------------------------


@dataclass
class _Context:
    links: Links


def render_blocks(nodes: Sequence[BlockNode], links: Links) -> str:
    """Sibling blocks as Markdown: blank lines between blocks, single line breaks between
    list items (a tight list); numbering restarts after anything that is not a numbered item."""
    return _render_siblings(nodes, _Context(links))


def _render_siblings(nodes: Sequence[BlockNode], ctx: _Context) -> str:
    out = ""
    previous: str | None = None
    number = 0
    for node in nodes:
        kind = node.block.type
        # Blocks that render to nothing (a table of contents) neither break nor end a list.
        position = number + 1 if kind == "numbered_list_item" and previous == kind else 1
        text = _render_node(node, ctx, position)
        if not text:
            continue
        if out:
            tight = kind == previous in LIST_ITEM_TYPES or {kind, previous} <= _DASH_ITEM_TYPES
            out += "\n" if tight else "\n\n"
        out += text
        previous, number = kind, position
    return out


def _indent(text: str, prefix: str) -> str:
    """Every non-empty line of ``text`` prefixed (blank lines stay blank)."""
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def _rich(node: BlockNode, ctx: _Context, key: str = "rich_text") -> str:
    runs = node.block.payload.get(key)
    return render_rich_text(runs if isinstance(runs, list) else [], ctx.links)


def _children(node: BlockNode, ctx: _Context) -> str:
    return _render_siblings(node.children, ctx)


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _render_node(node: BlockNode, ctx: _Context, number: int) -> str:
    kind = node.block.type
    if kind in _OMITTED_TYPES:
        return ""
    render = _RENDERERS.get(kind)
    if render is None:
        return _unknown(node, ctx)
    return render(node, ctx, number)


# ---- one renderer per block type ---------------------------------------------------------


def _paragraph(node: BlockNode, ctx: _Context, _n: int) -> str:
    # Children of a paragraph are shown indented in Notion; Markdown has no such indent
    # (four spaces would make a code block), so they follow it.
    return _join(_rich(node, ctx), _children(node, ctx))


def _heading(node: BlockNode, ctx: _Context, _n: int) -> str:
    # The page title is the only "#": heading_1 is "##", heading_3 is "####".
    level = int(node.block.type[-1]) + 1
    runs = node.block.payload.get("rich_text")
    text = render_rich_text(runs if isinstance(runs, list) else [], ctx.links, newline=" ")
    heading = "#" * level + " " + _heading_text(text) if text else ""
    return _join(heading, _children(node, ctx))


def _list_item(node: BlockNode, ctx: _Context, number: int) -> str:
    kind = node.block.type
    if kind == "numbered_list_item":
        marker = f"{number}. "
    elif kind == "to_do":
        marker = "- [x] " if node.block.payload.get("checked") else "- [ ] "
    else:
        marker = "- "
    # Children line up with the item's text; a to-do's text starts after "- " (GFM).
    width = 2 if kind == "to_do" else len(marker)
    text = _rich(node, ctx)
    children = _children(node, ctx)
    if text and children:
        # A paragraph right under the text would continue it: keep a blank line between.
        joiner = "\n" if _first_kind(node) in LIST_ITEM_TYPES else "\n\n"
        body = text + joiner + children
    else:
        body = text or children
    if not body:
        return marker.rstrip()
    return marker + _indent(body, " " * width)[width:]


def _first_kind(node: BlockNode) -> str | None:
    kinds = (c.block.type for c in node.children if c.block.type not in _OMITTED_TYPES)
    return next(kinds, None)


def _toggle(node: BlockNode, ctx: _Context, _n: int) -> str:
    summary = html_text(node.block.payload.get("rich_text")) or "Toggle"
    children = _children(node, ctx)
    head = f"<details>\n<summary>{summary}</summary>"
    # A blank line ends the HTML block, so the children are read as Markdown again.
    return f"{head}\n\n{children}\n\n</details>" if children else f"{head}\n</details>"


def _quote(node: BlockNode, ctx: _Context, _n: int) -> str:
    return _quoted(_join(_rich(node, ctx), _children(node, ctx)) or "\u200b")


def _callout(node: BlockNode, ctx: _Context, _n: int) -> str:
    icon = node.block.payload.get("icon")
    emoji = icon.get("emoji") if isinstance(icon, Mapping) else None
    text = _rich(node, ctx)
    head = f"{escape_text(emoji)} {text}".rstrip() if isinstance(emoji, str) else text
    return _quoted(_join(head, _children(node, ctx)) or "\u200b")


def _code(node: BlockNode, ctx: _Context, _n: int) -> str:
    payload = node.block.payload
    source = plain_rich_text(payload.get("rich_text")).replace("\r\n", "\n")
    longest = max((len(run) for run in re.findall(r"`{3,}", source)), default=0)
    fence = "`" * max(3, longest + 1)
    language = str(payload.get("language") or "").strip().lower()
    language = _FENCE_LANGUAGES.get(language, language).replace(" ", "-")
    language = re.sub(r"[^A-Za-z0-9_+#.-]", "", language)  # an info string is one word
    body = source if source.endswith("\n") or not source else source + "\n"
    block = f"{fence}{language}\n{body}{fence}"
    return _join(block, _caption(node, ctx))


def _caption(node: BlockNode, ctx: _Context) -> str:
    caption = node.block.payload.get("caption")
    return render_rich_text(caption if isinstance(caption, list) else [], ctx.links)


def _equation(node: BlockNode, ctx: _Context, _n: int) -> str:
    expression = str(node.block.payload.get("expression") or "").strip()
    return f"$$\n{expression}\n$$" if expression else ""


def _divider(node: BlockNode, ctx: _Context, _n: int) -> str:
    return "---"


def _table(node: BlockNode, ctx: _Context, _n: int) -> str:
    payload = node.block.payload
    rows = [row for row in node.children if row.block.type == "table_row"]
    width = max([int(payload.get("table_width") or 0)]
                + [len(_cells(row)) for row in rows])
    if width == 0:
        return ""
    cells = [_row_cells(row, ctx, width, bool(payload.get("has_row_header"))) for row in rows]
    if payload.get("has_column_header") and cells:
        header, body = cells[0], cells[1:]
    else:
        header, body = [""] * width, cells  # GFM needs a header row; this one is empty
    lines = [_table_line(header), _table_line(["---"] * width)]
    lines += [_table_line(row) for row in body]
    return "\n".join(lines)


def _cells(row: BlockNode) -> list[Any]:
    cells = row.block.payload.get("cells")
    return list(cells) if isinstance(cells, list) else []


def _row_cells(row: BlockNode, ctx: _Context, width: int, row_header: bool) -> list[str]:
    out = []
    for index, cell in enumerate((_cells(row) + [[]] * width)[:width]):
        text = render_rich_text(cell if isinstance(cell, list) else [], ctx.links,
                                newline="<br>")
        if index == 0 and row_header and text:
            text = f"**{text}**"
        out.append(text.replace("|", "\\|"))
    return out


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _link_block(node: BlockNode, ctx: _Context, _n: int) -> str:
    url = str(node.block.payload.get("url") or "")
    if not url:
        return _caption(node, ctx)
    text = _caption(node, ctx) or escape_text(url)
    return f"[{text}]({link_destination(url)})"


def _child(node: BlockNode, ctx: _Context, _n: int) -> str:
    block = node.block
    title = (block.title or ctx.links.title(block.id) or "").strip() or "Untitled"
    folder = ctx.links.child(block.id)
    if folder is not None and block.type == "child_page":
        folder = page_text_link(folder)  # a database folder holds no index.md
    target = folder or ctx.links.page_url(block.id)
    return f"[{_heading_text(escape_text(title))}]({link_destination(target)})"


def _link_to_page(node: BlockNode, ctx: _Context, _n: int) -> str:
    payload = node.block.payload
    kind = payload.get("type")
    target = payload.get(kind) if isinstance(kind, str) else None
    if kind not in ("page_id", "database_id") or not isinstance(target, str):
        return ""  # e.g. a link to a comment: nothing a file can point at
    target = normalize_id(target)
    title = ctx.links.title(target)
    relative = ctx.links.child(target)
    url = relative or ctx.links.page_url(target)
    if relative is not None and kind == "page_id":
        url = page_text_link(relative)
    if not title:
        # The folder's own name, else the address itself.
        title = unquote(relative.rstrip("/").rsplit("/", 1)[-1]) if relative else url
    return f"[{escape_text(' '.join(title.split())) or 'Untitled'}]({link_destination(url)})"


def _media(node: BlockNode, ctx: _Context, _n: int) -> str:
    """Images inline, other files as links to the file beside index.md; an external file
    the folder does not hold links to its URL. Signed URLs are never written: they expire
    within the hour."""
    block = node.block
    path = ctx.links.file(block.id)
    if path is None and block.file is not None and block.file.kind == "external":
        path = block.file.url
    caption = _caption(node, ctx)
    if path is None:
        return caption
    name = _file_name(block, path)
    if block.type == "image":
        alt = " ".join(plain_rich_text(block.payload.get("caption")).split()) or name
        return f"![{escape_text(alt)}]({link_destination(path)})"
    link = f"[{escape_text(name)}]({link_destination(path)})"
    return f"{link} — {caption}" if caption else link


def _file_name(block: Block, path: str) -> str:
    if "://" not in path:
        return unquote(path.rstrip("/").rsplit("/", 1)[-1])
    return (block.file.name if block.file and block.file.name else None) or unquote(
        path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    ) or block.type


def _container(node: BlockNode, ctx: _Context, _n: int) -> str:
    """column_list, column, synced_block (a copy holds its original's children)."""
    return _children(node, ctx)


def _unknown(node: BlockNode, ctx: _Context) -> str:
    kind = re.sub(r"[^A-Za-z0-9_]", "", node.block.type) or "unknown"
    comment = f"<!-- {kind} block: not shown -->"
    return _join(comment, _rich(node, ctx), _children(node, ctx))


def _template(node: BlockNode, ctx: _Context, _n: int) -> str:
    return _join(_rich(node, ctx), _children(node, ctx))


_Renderer = Callable[[BlockNode, _Context, int], str]
_RENDERERS: dict[str, _Renderer] = {
    "paragraph": _paragraph,
    "heading_1": _heading,
    "heading_2": _heading,
    "heading_3": _heading,
    "bulleted_list_item": _list_item,
    "numbered_list_item": _list_item,
    "to_do": _list_item,
    "toggle": _toggle,
    "quote": _quote,
    "callout": _callout,
    "code": _code,
    "equation": _equation,
    "divider": _divider,
    "table": _table,
    "bookmark": _link_block,
    "embed": _link_block,
    "link_preview": _link_block,
    "child_page": _child,
    "child_database": _child,
    "link_to_page": _link_to_page,
    "image": _media,
    "video": _media,
    "audio": _media,
    "file": _media,
    "pdf": _media,
    "column_list": _container,
    "column": _container,
    "synced_block": _container,
    "template": _template,
}
