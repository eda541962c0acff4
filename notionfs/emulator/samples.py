"""Small deterministic workspaces for tests, plus builders for every Notion block type.

Every builder returns a ``Workspace`` whose ids are already assigned (``Workspace.assign_ids``),
so a test may look objects up by id before starting the emulator. The ``seed`` argument goes
into ``Workspace.seed`` and into the generated file contents: two calls with the same seed give
identical workspaces (ids and bytes), different seeds give different ids.

Block payloads follow the shapes of Notion's published API (developers.notion.com/reference/
block): ``paragraph``/``quote``/list items ``{rich_text, color}``, ``to_do`` adds ``checked``,
``code`` ``{rich_text, caption, language}``, ``equation`` ``{expression}``, ``table``
``{table_width, has_column_header, has_row_header}`` with ``table_row`` ``{cells}`` children,
``bookmark``/``embed`` ``{url, caption}``, ``link_to_page`` ``{type, page_id|database_id}``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from . import media
from .model import (
    Block,
    Database,
    FileSpec,
    Node,
    Page,
    Rollup,
    Workspace,
    callout,
    columns,
    file_block,
    heading,
    paragraph,
    rich_text,
    synced,
    synced_copy,
    toggle,
)
from .render import V2025, page_url, person_user_id

__all__ = [
    "CONTENT_TYPES",
    "HOSTILE_TITLES",
    "HOSTILE_FILE_NAMES",
    "Linker",
    "Runs",
    "runs",
    "file_spec",
    "para",
    "bullet",
    "numbered",
    "todo",
    "quote",
    "code",
    "equation",
    "divider",
    "table",
    "bookmark",
    "embed",
    "toggle_heading",
    "table_of_contents",
    "breadcrumb",
    "link_preview",
    "inline_equation",
    "date_mention",
    "person",
    "user_mention",
    "nested_files",
    "wide_page",
    "big_database",
    "gallery",
    "flat_dir",
    "many_pages",
    "hostile_titles",
    "big_file",
    "everything_blocks",
    "every_property",
    "signature",
]

# Content types by extension, fixed here (not from the host's mime.types) for determinism.
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "pdf": "application/pdf",
    "wav": "audio/wav",
    "avi": "video/x-msvideo",
    "csv": "text/csv",
    "txt": "text/plain",
    "md": "text/markdown",
    "json": "application/json",
}

# ---- rich text and block builders --------------------------------------------------------------

Runs = str | list[dict[str, Any]]


def runs(*parts: Runs) -> list[dict[str, Any]]:
    """Concatenate plain strings and rich_text arrays into one rich_text array."""
    out: list[dict[str, Any]] = []
    for part in parts:
        out.extend(rich_text(part) if isinstance(part, str) else part)
    return out


def _annotations() -> dict[str, Any]:
    return copy.deepcopy(rich_text("")[0]["annotations"])


def inline_equation(expression: str) -> list[dict[str, Any]]:
    """A rich_text run of type equation (inline LaTeX)."""
    return [{"type": "equation", "equation": {"expression": expression},
             "annotations": _annotations(), "plain_text": expression, "href": None}]


def date_mention(start: str, end: str | None = None) -> list[dict[str, Any]]:
    """A rich_text run mentioning a date (ISO 8601)."""
    plain = start if end is None else f"{start} → {end}"
    return [{"type": "mention",
             "mention": {"type": "date", "date": {"start": start, "end": end, "time_zone": None}},
             "annotations": _annotations(), "plain_text": plain, "href": None}]


_PERSON_NAMESPACE = uuid.UUID("3c0e6f7a-5b1d-4f2e-8a9c-7d6b5e4f3a21")


def person(name: str) -> dict[str, str]:
    """A workspace member as a ``people`` value: a stable id from the name, and an email."""
    handle = "".join(c for c in name.lower().split(" ")[0] if c.isalnum()) or "someone"
    return {"id": str(uuid.uuid5(_PERSON_NAMESPACE, name)), "name": name,
            "email": f"{handle}@example.com"}


def user_mention(user: dict[str, str]) -> list[dict[str, Any]]:
    """A rich_text run mentioning a workspace member (plain_text "@Name", as Notion)."""
    return [{"type": "mention",
             "mention": {"type": "user", "user": {
                 "object": "user", "id": user["id"], "name": user["name"], "avatar_url": None,
                 "type": "person", "person": {"email": user["email"]}}},
             "annotations": _annotations(), "plain_text": f"@{user['name']}", "href": None}]


def file_spec(name: str, data: bytes, *, external: bool = False) -> FileSpec:
    """A FileSpec whose content type follows the name's extension."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    content_type = CONTENT_TYPES.get(extension, "application/octet-stream")
    return FileSpec(name=name, data=data, content_type=content_type, external=external)


def _text_block(kind: str, text: Runs, children: Sequence[Node] = (), **extra: Any) -> Block:
    return Block(kind, {"rich_text": runs(text), "color": "default", **extra}, list(children))


def para(*parts: Runs) -> Block:
    """A paragraph from several runs, e.g. ``para("a ", rich_text("b", bold=True))``."""
    return Block("paragraph", {"rich_text": runs(*parts), "color": "default"})


def bullet(text: Runs, children: Sequence[Node] = ()) -> Block:
    return _text_block("bulleted_list_item", text, children)


def numbered(text: Runs, children: Sequence[Node] = ()) -> Block:
    return _text_block("numbered_list_item", text, children)


def todo(text: Runs, checked: bool = False, children: Sequence[Node] = ()) -> Block:
    return _text_block("to_do", text, children, checked=checked)


def quote(text: Runs, children: Sequence[Node] = ()) -> Block:
    return _text_block("quote", text, children)


def toggle_heading(level: int, text: Runs, children: Sequence[Node]) -> Block:
    """A toggleable heading_1..3 (it holds children, like a toggle)."""
    return Block(f"heading_{level}",
                 {"rich_text": runs(text), "color": "default", "is_toggleable": True},
                 list(children))


def code(source: str, language: str, caption: str = "") -> Block:
    return Block("code", {"rich_text": rich_text(source),
                          "caption": rich_text(caption) if caption else [],
                          "language": language})


def equation(expression: str) -> Block:
    return Block("equation", {"expression": expression})


def divider() -> Block:
    return Block("divider", {})


def table(rows: Sequence[Sequence[Runs]], *, column_header: bool = True,
          row_header: bool = False) -> Block:
    """A table block with one table_row child per row (cells are rich_text arrays)."""
    width = max(len(row) for row in rows)
    children: list[Node] = [
        Block("table_row", {"cells": [runs(cell) for cell in row]
                            + [[] for _ in range(width - len(row))]})
        for row in rows
    ]
    return Block("table", {"table_width": width, "has_column_header": column_header,
                           "has_row_header": row_header}, children)


def bookmark(url: str, caption: str = "") -> Block:
    return Block("bookmark", {"caption": rich_text(caption) if caption else [], "url": url})


def embed(url: str, caption: str = "") -> Block:
    return Block("embed", {"caption": rich_text(caption) if caption else [], "url": url})


def link_preview(url: str) -> Block:
    return Block("link_preview", {"url": url})


def table_of_contents() -> Block:
    return Block("table_of_contents", {"color": "default"})


def breadcrumb() -> Block:
    return Block("breadcrumb", {})


class Linker:
    """Payloads that need another object's id, filled in once the workspace has ids.

    ``Workspace.assign_ids`` numbers objects in walk order, so nothing may be added after it
    runs; links are therefore created first with empty ids and patched by ``finish``.
    """

    def __init__(self) -> None:
        self._fixes: list[Callable[[], None]] = []

    def later(self, fix: Callable[[], None]) -> None:
        """Run ``fix`` after ids are assigned (e.g. to put an id into a title)."""
        self._fixes.append(fix)

    def link_to_page(self, target: Page | Database) -> Block:
        kind = "page_id" if isinstance(target, Page) else "database_id"
        payload: dict[str, Any] = {"type": kind, kind: ""}
        self._fixes.append(lambda: payload.__setitem__(kind, target.id))
        return Block("link_to_page", payload)

    def mention(self, target: Page | Database) -> list[dict[str, Any]]:
        """A rich_text run mentioning a page or database."""
        kind = "page" if isinstance(target, Page) else "database"
        ref: dict[str, Any] = {"id": ""}
        run: dict[str, Any] = {"type": "mention", "mention": {"type": kind, kind: ref},
                               "annotations": _annotations(), "plain_text": target.title,
                               "href": None}

        def fix() -> None:
            ref["id"] = target.id
            # The link Notion writes today (app.notion.com/p/<id>, as its 2026 answers).
            run["href"] = page_url("", target.id, V2025)

        self._fixes.append(fix)
        return [run]

    def finish(self, workspace: Workspace) -> Workspace:
        workspace.assign_ids()
        for fix in self._fixes:
            fix()
        return workspace


def _finish(workspace: Workspace) -> Workspace:
    return Linker().finish(workspace)


def _plain(value: Any) -> Any:
    """Property values with objects replaced by their ids, for comparisons."""
    if isinstance(value, (Page, Database, FileSpec)):
        return (type(value).__name__, value.id)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def signature(workspace: Workspace) -> list[tuple[Any, ...]]:
    """A comparable summary of every object (ids, titles, payloads, file sizes and hashes).

    Two builds of a deterministic workspace have equal signatures.
    """
    out: list[tuple[Any, ...]] = []
    for obj in workspace.walk():
        if isinstance(obj, FileSpec):
            out.append(("file", obj.id, obj.name, obj.external, obj.content_type, obj.size,
                        obj.sha256()))
        elif isinstance(obj, Block):
            synced_from = obj.synced_from.id if obj.synced_from is not None else None
            out.append(("block", obj.id, obj.type, repr(obj.payload), obj.in_trash, synced_from,
                        obj.created_time, obj.last_edited_time))
        elif isinstance(obj, (Page, Database)):
            icon = obj.icon if isinstance(obj.icon, str) else _plain(obj.icon)
            extra: tuple[Any, ...] = (obj.shared, obj.in_trash, icon, _plain(obj.cover))
            if isinstance(obj, Page):
                extra += (repr({k: _plain(v) for k, v in obj.properties.items()}),)
            else:
                extra += (obj.inline,)
            out.append((type(obj).__name__, obj.id, obj.title, *extra, obj.created_time,
                        obj.last_edited_time))
        else:
            out.append(("data_source", obj.id, obj.title, repr(obj.properties)))
    return out


# ---- test workspaces ---------------------------------------------------------------------------


def _txt(name: str, seed: str) -> FileSpec:
    return file_spec(name, (media.prose(3, seed) + "\n").encode())


def _png(name: str, seed: str, width: int = 48, height: int = 32) -> FileSpec:
    return file_spec(name, media.png(width, height, seed))


def nested_files(seed: str = "nested") -> Workspace:
    """File objects in every place Notion can hide them.

    Top level: page "Nested files" (file icon ``icon.png``, file cover ``cover.jpg``) and
    page "Unshared parent" (``shared=False``) holding page "Shared child" (file
    ``shared.txt``), which the integration can see.

    "Nested files" children, in order:

    1. paragraph; 2. image ``top.png``;
    3. toggle: image ``in-toggle.png``, file ``notes.txt``, pdf ``report.pdf``, child page
       "Page in toggle" (emoji icon, image ``deep.png``);
    4. column_list: column 1 video ``clip.avi`` and audio ``tone.wav``; column 2 image
       ``in-column.jpg`` and child page "Page in column" (file ``column-notes.txt``);
    5. callout: file ``data.csv``, image ``in-callout.png``;
    6. synced block (original): image ``synced.png``, file ``synced.txt``;
    7. synced block copy of 6 (no children of its own);
    8. image ``external.png`` as an external file object;
    9. toggle in the trash, holding file ``trashed.txt``;
    10. child page "Trashed page" in the trash (image ``trashed-page.png``);
    11./12. two child pages titled "Same title";
    13. child page "External icon" (external icon ``ext-icon.png``, external cover
        ``ext-cover.jpg``);
    14. inline database "Attachments" (Name: title, Files: files) with rows "Two files"
        (``a.txt``, ``b.png``), "External" (external ``link.pdf``), "Same names" (two entries
        named ``same.txt`` with different content), "Empty" (no files).
    """
    small_pdf = media.pdf([("Report", ["A short report.", "It has two pages."]),
                           ("Appendix", ["Numbers and notes."])])
    trashed_toggle = toggle("Removed section", [file_block("file", _txt("trashed.txt", seed))])
    trashed_toggle.in_trash = True
    original = synced([file_block("image", _png("synced.png", f"{seed}/synced")),
                       file_block("file", _txt("synced.txt", f"{seed}/synced"))])
    attachments = Database(
        "Attachments",
        properties={"Name": "title", "Files": "files"},
        rows=[
            Page("Two files", properties={"Name": "Two files", "Files": [
                _txt("a.txt", f"{seed}/a"), _png("b.png", f"{seed}/b")]}),
            Page("External", properties={"Name": "External", "Files": [
                file_spec("link.pdf", small_pdf, external=True)]}),
            Page("Same names", properties={"Name": "Same names", "Files": [
                _txt("same.txt", f"{seed}/same1"), _txt("same.txt", f"{seed}/same2")]}),
            Page("Empty", properties={"Name": "Empty", "Files": []}),
        ],
        inline=True,
    )
    children: list[Node] = [
        paragraph("Files hide in toggles, columns, callouts and synced blocks."),
        file_block("image", _png("top.png", f"{seed}/top")),
        toggle("Toggle with files", [
            file_block("image", _png("in-toggle.png", f"{seed}/toggle")),
            file_block("file", _txt("notes.txt", f"{seed}/notes")),
            file_block("pdf", file_spec("report.pdf", small_pdf)),
            Page("Page in toggle", icon="\U0001f4c1",
                 children=[file_block("image", _png("deep.png", f"{seed}/deep"))]),
        ]),
        columns(
            [file_block("video", file_spec("clip.avi", media.mjpeg_avi(4, 32, 32, 4, seed))),
             file_block("audio", file_spec("tone.wav", media.wav(0.25, seed, rate=8000)))],
            [file_block("image", file_spec("in-column.jpg", media.jpeg(48, 32, seed))),
             Page("Page in column",
                  children=[file_block("file", _txt("column-notes.txt", f"{seed}/col"))])],
        ),
        callout("Callout with files", [
            file_block("file", file_spec("data.csv", media.csv_text(
                ["day", "value"], [[d, d * d] for d in range(1, 8)]))),
            file_block("image", _png("in-callout.png", f"{seed}/callout")),
        ]),
        original,
        synced_copy(original),
        file_block("image", file_spec("external.png", media.png(40, 30, f"{seed}/ext"),
                                      external=True), caption="An external image"),
        trashed_toggle,
        Page("Trashed page", in_trash=True,
             children=[file_block("image", _png("trashed-page.png", f"{seed}/trash"))]),
        Page("Same title", children=[paragraph("The first of two pages with one title.")]),
        Page("Same title", children=[paragraph("The second of two pages with one title.")]),
        Page("External icon",
             icon=file_spec("ext-icon.png", media.png(16, 16, f"{seed}/icon2"), external=True),
             cover=file_spec("ext-cover.jpg", media.jpeg(64, 24, f"{seed}/cover2"),
                             external=True)),
        attachments,
    ]
    top = Page("Nested files", children=children,
               icon=_png("icon.png", f"{seed}/icon", 16, 16),
               cover=file_spec("cover.jpg", media.jpeg(96, 32, f"{seed}/cover")))
    unshared = Page("Unshared parent", shared=False, children=[
        Page("Shared child", children=[file_block("file", _txt("shared.txt", f"{seed}/shared"))]),
    ])
    return _finish(Workspace(name="Nested files", pages=[top, unshared],
                             seed=f"nested_files/{seed}"))


def wide_page(n_children: int = 250, seed: str = "wide") -> Workspace:
    """Page "Wide page" with ``n_children`` child blocks: child ``i`` is a child page
    "Child NNN" when ``i % 5 == 4`` (so ``n_children // 5`` pages), else a paragraph."""
    children: list[Node] = [
        Page(f"Child {i:03d}", children=[paragraph(f"Inside child {i}.")]) if i % 5 == 4
        else paragraph(f"Paragraph {i:03d}. " + media.prose(1, f"{seed}/{i}"))
        for i in range(n_children)
    ]
    return _finish(Workspace(name="Wide page", pages=[Page("Wide page", children=children)],
                             seed=f"wide_page/{seed}"))


_BIG_DB_SCHEMA = {
    "Name": "title", "Notes": "rich_text", "Score": "number", "Category": "select",
    "Tags": "multi_select", "Status": "status", "Due": "date", "Done": "checkbox",
    "Link": "url", "Email": "email", "Phone": "phone_number", "Attachments": "files",
}
_CATEGORIES = ("Alpha", "Beta", "Gamma", "Delta")
_TAGS = ("red", "green", "blue", "amber", "violet")
_STATUSES = ("Not started", "In progress", "Done")


def big_database(n_rows: int = 150, seed: str = "bigdb") -> Workspace:
    """Top-level database "Big database" (schema: every common property type) with rows
    "Row 001".. ; rows with ``i % 10 == 0`` (i from 0) carry one text attachment
    ``row-NNN.txt``; row 0 also has body content (one paragraph)."""
    rows = []
    for i in range(n_rows):
        name = f"Row {i + 1:03d}"
        rows.append(Page(name, properties={
            "Name": name,
            "Notes": media.prose(1, f"{seed}/{i}"),
            "Score": round(i * 1.5, 1),
            "Category": _CATEGORIES[i % len(_CATEGORIES)],
            "Tags": [_TAGS[i % 5], _TAGS[(i * 3 + 1) % 5]] if i % 3 else [],
            "Status": _STATUSES[i % 3],
            "Due": f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
            "Done": i % 2 == 0,
            "Link": f"https://example.com/rows/{i + 1}",
            "Email": f"row{i + 1}@example.com",
            "Phone": f"+1 555 {i:04d}",
            "Attachments": [_txt(f"row-{i + 1:03d}.txt", f"{seed}/file{i}")] if i % 10 == 0
            else [],
        }, children=[paragraph(f"Body of {name}.")] if i == 0 else []))
    database = Database("Big database", properties=dict(_BIG_DB_SCHEMA), rows=rows,
                        icon="\U0001f5c3\ufe0f")
    return _finish(Workspace(name="Big database", pages=[database], seed=f"big_database/{seed}"))


def gallery(n_images: int = 130, seed: str = "gallery") -> Workspace:
    """Page "Gallery" holding ``n_images`` image blocks ``image-NNN.png`` (96x64, distinct)."""
    children: list[Node] = [
        file_block("image", _png(f"image-{i + 1:03d}.png", f"{seed}/{i}", 96, 64))
        for i in range(n_images)
    ]
    return _finish(Workspace(name="Gallery", pages=[Page("Gallery", children=children)],
                             seed=f"gallery/{seed}"))


def flat_dir(n: int = 1000, seed: str = "flat") -> Workspace:
    """Page "Flat directory" holding ``n`` file blocks ``file-NNNN.bin`` of 512..4095
    pattern bytes each (content ``media.pattern_bytes(size, f"{seed}/{i}")``)."""
    children: list[Node] = []
    for i in range(n):
        size = 512 + (i * 997) % 3584
        data = media.pattern_bytes(size, f"{seed}/{i}")
        children.append(file_block("file", file_spec(f"file-{i + 1:04d}.bin", data)))
    return _finish(Workspace(name="Flat directory",
                             pages=[Page("Flat directory", children=children)],
                             seed=f"flat_dir/{seed}"))


def many_pages(n: int = 1000, seed: str = "many", fanout: int = 10) -> Workspace:
    """Exactly ``n`` pages in a tree at most three levels deep (``fanout`` children each),
    filled depth first from the workspace root: titles "Page 1", "Page 1.1", "Page 1.1.1"...
    Every 100th page (1st, 101st, ...) holds a small text file ``notes-K.txt``."""
    made = 0

    def level(depth: int, prefix: str) -> list[Node]:
        nonlocal made
        pages: list[Node] = []
        for i in range(1, fanout + 1):
            if made >= n:
                break
            made += 1
            page = Page(f"{prefix}{i}")
            if made % 100 == 1:
                page.children.append(file_block("file", _txt(f"notes-{made}.txt",
                                                              f"{seed}/{made}")))
            pages.append(page)
            if depth < 3:
                page.children.extend(level(depth + 1, f"{page.title}."))
        return pages

    top = [node for node in level(1, "Page ") if isinstance(node, Page)]
    return _finish(Workspace(name="Many pages", pages=list(top), seed=f"many_pages/{seed}"))


# Titles no file system accepts as they are, or that collide once cleaned.
HOSTILE_TITLES = (
    "/", "a/b", "//double//", "\\", "back\\slash", "nul\x00inside", "tab\there",
    "line\nbreak", "bell\x07", "\x1b[31mred", ".", "..", "...", ".hidden", "trailing. ",
    "trailing dot.", "   ", "", "  leading spaces", "trailing spaces   ",
    "\u202egnp.exe", "right\u202eto\u202cleft", "\u200ezero\u200bwidth",
    "🎉 party 🎈", "café", "cafe\u0301", "CON", "名前/ファイル",
    "long " + "é" * 150, "🦄" * 80, "x" * 300,
)  # fmt: skip
HOSTILE_FILE_NAMES = (
    "a/b.txt", "", ".", "..", ".hidden.txt", "\u202etxt.exe", "nul\x00.txt", "  .txt",
    "trailing.txt ", "name.TXT", "name.txt", "x" * 300 + ".txt", "🎉.png", "no-extension",
)  # fmt: skip


def hostile_titles(seed: str = "hostile") -> Workspace:
    """Names that break naive path mapping.

    Top level: pages "/", "" and ".." (empty), and page "Hostile titles" whose children are:
    one page per ``HOSTILE_TITLES`` entry; 50 pages titled "Duplicate"; "Readme", "README",
    "readme"; "Twin", "Twin", "Twin (1)", "Twin (2)" and "Twin (<first 8 hex digits of the
    second Twin's id>)" (the dedup suffix naming.py would give it); then page "Hostile file
    names" holding one file block per ``HOSTILE_FILE_NAMES`` entry plus 10 files named
    ``same.txt`` (distinct contents).
    """
    linker = Linker()
    twins = [Page("Twin"), Page("Twin")]
    lookalike = Page("Twin (?)")
    linker.later(lambda: setattr(lookalike, "title",
                                 f"Twin ({twins[1].id.replace('-', '')[:8]})"))
    files: list[Node] = [
        file_block("file", _txt(name, f"{seed}/file/{i}"))
        for i, name in enumerate(HOSTILE_FILE_NAMES)
    ]
    files += [file_block("file", _txt("same.txt", f"{seed}/same/{i}")) for i in range(10)]
    children: list[Node] = [Page(title) for title in HOSTILE_TITLES]
    children += [Page("Duplicate", children=[paragraph(f"Duplicate number {i + 1}.")])
                 for i in range(50)]
    children += [Page("Readme"), Page("README"), Page("readme")]
    children += [*twins, Page("Twin (1)"), Page("Twin (2)"), lookalike]
    children.append(Page("Hostile file names", children=files))
    pages: list[Page | Database] = [Page("/"), Page(""), Page(".."),
                                    Page("Hostile titles", children=children)]
    return linker.finish(Workspace(name="Hostile titles", pages=pages,
                                   seed=f"hostile_titles/{seed}"))


def big_file(data_dir: Path, size_bytes: int = 256 * media.MiB, seed: str = "big") -> Workspace:
    """Page "Big file" whose only child is a file block ``big.bin`` of ``size_bytes`` pattern
    bytes, kept on disk at ``data_dir / f"big-{seed}.bin"`` (reused across runs); its bytes
    at any offset are ``media.pattern_range(offset, size, f"big_file/{seed}")``."""
    path = Path(data_dir) / f"big-{seed}.bin"
    media.write_pattern_file(path, size_bytes, f"big_file/{seed}")
    spec = FileSpec(name="big.bin", path=path, content_type="application/octet-stream")
    page = Page("Big file", children=[file_block("file", spec)])
    return _finish(Workspace(name="Big file", pages=[page], seed=f"big_file/{seed}"))


def everything_blocks(seed: str = "every") -> Workspace:
    """Page "Every block" holding every block type the API returns, for rendering tests.

    Also at the top level: page "Link target" and database "Linked database", targets of the
    ``link_to_page`` blocks and mentions. Block types present: paragraph (every annotation,
    link, inline equation, page/database/date mentions), heading_1..3 (one toggleable),
    bulleted/numbered list items and to_do (nested), toggle, quote (with a child), callout,
    code (with caption), equation, divider, table (with table_row), bookmark, embed,
    link_preview, link_to_page (page and database), table_of_contents, breadcrumb,
    column_list/column, synced_block (original and copy), child_page, child_database,
    image, video, audio, file, pdf, and one ``unsupported`` block. Then cases for escaping
    and layout: a numbered list restarting after other blocks, a bullet holding a paragraph,
    text full of Markdown syntax and line breaks, a code block holding a backtick fence, a
    table without a header row (with "|" and a line break in cells), and a toggle holding
    image ``in toggle (1).png``. The styled paragraph mentions a page, a database, a date
    and a person (``person("Ada Lindqvist")``).
    """
    linker = Linker()
    target = Page("Link target", children=[paragraph("Links point here.")])
    linked_db = Database("Linked database", properties={"Name": "title"},
                         rows=[Page("Only row", properties={"Name": "Only row"})])
    styled = para(
        "Plain, ", rich_text("bold", bold=True), ", ", rich_text("italic", italic=True), ", ",
        rich_text("strike", strikethrough=True), ", ", rich_text("underline", underline=True),
        ", ", rich_text("code", code=True), ", ", rich_text("red", color="red"), ", ",
        rich_text("a link", href="https://developers.notion.com"), ", math ",
        inline_equation("e^{i\\pi} + 1 = 0"), ", a page ", linker.mention(target),
        ", a database ", linker.mention(linked_db), ", a date ", date_mention("2026-01-05"),
        " and a person ", user_mention(person("Ada Lindqvist")), ".",
    )
    original = synced([paragraph("Synced text, shown twice.")])
    children: list[Node] = [
        table_of_contents(),
        breadcrumb(),
        heading(1, "Heading one"),
        heading(2, "Heading two"),
        heading(3, "Heading three"),
        toggle_heading(2, "Toggleable heading", [paragraph("Hidden under the heading.")]),
        styled,
        bullet("Bullet", [bullet("Nested bullet", [bullet("Third level")])]),
        numbered("First", [numbered("First point one")]),
        numbered("Second"),
        todo("Done item", checked=True),
        todo("Open item", children=[todo("Nested open item")]),
        toggle("A toggle", [paragraph("Inside the toggle.")]),
        quote("A quote", [paragraph("A paragraph inside the quote.")]),
        callout("A callout with an emoji icon", [paragraph("Callout child.")],
                emoji="\u26a0\ufe0f"),
        code("def hello() -> str:\n    return \"hi\"\n", "python", caption="hello.py"),
        equation("\\int_0^1 x^2\\,dx = \\frac{1}{3}"),
        divider(),
        table([["Name", "Kind", "Size"], ["a.png", "image", "1 KB"], ["b.pdf", "pdf", "2 KB"]],
              row_header=True),
        bookmark("https://developers.notion.com/reference/block", caption="Block reference"),
        embed("https://example.com/embed"),
        link_preview("https://github.com/example/repo/pull/1"),
        linker.link_to_page(target),
        linker.link_to_page(linked_db),
        columns([paragraph("Left column.")], [paragraph("Right column.")]),
        original,
        synced_copy(original),
        Page("Child page", children=[paragraph("A child page.")]),
        Database("Inline database", properties={"Name": "title", "Done": "checkbox"},
                 rows=[Page("Row", properties={"Name": "Row", "Done": True})], inline=True),
        file_block("image", _png("image.png", f"{seed}/img"), caption="An image"),
        file_block("video", file_spec("video.avi", media.mjpeg_avi(2, 16, 16, 2, seed))),
        file_block("audio", file_spec("audio.wav", media.wav(0.1, seed, rate=8000))),
        file_block("file", _txt("file.txt", f"{seed}/file"), caption="A file"),
        file_block("pdf", file_spec("doc.pdf", media.pdf([("Doc", ["One page."])]))),
        Block("unsupported", {}),
        numbered("Numbering restarts"),
        numbered("after any other block"),
        bullet("A bullet with a paragraph", [paragraph("The paragraph under the bullet.")]),
        para("# Not a heading: *stars*, _under_, snake_case, [brackets](x), <b>tag</b>, "
             "&amp; | pipe | $5, back\\slash, ~tilde~, `ticks`"),
        para("1. Not a list\n- nor this\n> nor a quote"),
        code("Fences ``` inside\n", "markdown"),
        table([["a|b", "line\nbreak"], ["", "last"]], column_header=False),
        toggle("A toggle with an image", [
            file_block("image", _png("in toggle (1).png", f"{seed}/toggle"))]),
    ]
    page = Page("Every block", icon="\U0001f9f1", children=children)
    return linker.finish(Workspace(name="Every block", pages=[page, target, linked_db],
                                   seed=f"everything_blocks/{seed}"))


EVERY_PROPERTY_SCHEMA = {
    "Name": "title", "Notes": "rich_text", "Score": "number", "Kind": "select",
    "Tags": "multi_select", "Stage": "status", "When": "date", "Owners": "people",
    "Attachments": "files", "Done": "checkbox", "Link": "url", "Mail": "email",
    "Phone": "phone_number", "Formula text": "formula", "Formula number": "formula",
    "Formula flag": "formula", "Formula date": "formula", "Targets": "relation",
    "Points total": "rollup", "Latest target": "rollup", "Target names": "rollup",
    "Created": "created_time", "Created by": "created_by", "Edited": "last_edited_time",
    "Edited by": "last_edited_by", "Row ID": "unique_id", "Verified": "verification",
    "Action": "button",
}  # fmt: skip
_ROLLUPS = {
    "Points total": Rollup("Targets", "Points", "sum"),
    "Latest target": Rollup("Targets", "When", "latest_date"),
    "Target names": Rollup("Targets", "Name", "show_original"),
}


def every_property(seed: str = "props", n_targets: int = 30) -> Workspace:
    """Database "Every property" with a property of every type the API returns (schema
    ``EVERY_PROPERTY_SCHEMA``), and database "Targets" (``n_targets`` rows "Target 01"..,
    Points = N, When = 2026-02-NN) that its relation and rollups point at.

    Rows of "Every property":

    - "Full row": every value set. Notes mix annotations with page, user and date mentions;
      When is a range with a time zone; two Owners (one the workspace's own person); a
      hosted ``notes.txt`` and an external ``spec.pdf``; two Targets; formulas of each result
      type; rollups sum / latest_date / show_original over Targets; Row ID ``ROW-1``;
      verified by Ada Lindqvist.
    - "Many references": more than the 25 references a page object holds: every Target,
      ``n_targets`` Owners, Notes of ``n_targets`` page mentions; Row ID ``ROW-2``; the
      verification expired.
    - "Empty row": nothing set (computed properties still have values).
    """
    linker = Linker()
    targets = [Page(f"Target {i:02d}", properties={
        "Name": f"Target {i:02d}", "Points": i, "When": f"2026-02-{i:02d}"})
        for i in range(1, n_targets + 1)]
    target_db = Database("Targets", properties={"Name": "title", "Points": "number",
                                                "When": "date"}, rows=targets)
    ada = person("Ada Lindqvist")
    notes = runs("Mixed ", rich_text("bold", bold=True), " text about ",
                 linker.mention(targets[0]), " by ", user_mention(ada), " on ",
                 date_mention("2026-01-05"), ".\nSecond line, with \"quotes\": and a colon.")
    full = Page("Full row", properties={
        "Name": "Full row", "Notes": notes, "Score": 3.5, "Kind": "Alpha",
        "Tags": ["red", "blue"], "Stage": "In progress",
        "When": {"start": "2026-01-05T10:00:00.000", "end": "2026-01-05T12:30:00.000",
                 "time_zone": "Europe/Berlin"},
        "Done": True,
        "Attachments": [_txt("notes.txt", f"{seed}/notes"),
                        file_spec("spec.pdf", media.pdf([("Spec", ["One page."])]),
                                  external=True)],
        "Link": "https://example.com/full?a=1&b=2", "Mail": "full@example.com",
        "Phone": "+1 555 0100", "Formula text": "Alpha: 3.5", "Formula number": 7,
        "Formula flag": True, "Formula date": date(2026, 1, 5), "Targets": targets[:2],
        **_ROLLUPS, "Row ID": "ROW-1",
        "Verified": {"state": "verified", "date": "2026-01-05", "verified_by": ada},
    })
    many = Page("Many references", properties={
        "Name": "Many references",
        "Notes": runs(*[part for t in targets for part in (linker.mention(t), " ")]),
        "Owners": [person(f"Member {i:02d}") for i in range(1, n_targets + 1)],
        "Targets": list(targets), **_ROLLUPS, "Formula text": "", "Formula number": 0,
        "Formula flag": False, "Formula date": None, "Row ID": "ROW-2",
        "Verified": {"state": "expired",
                     "date": {"start": "2025-12-01", "end": "2026-01-01"}},
    })
    empty = Page("Empty row", properties={"Name": "Empty row", **_ROLLUPS, "Row ID": "ROW-3"})
    database = Database("Every property", properties=dict(EVERY_PROPERTY_SCHEMA),
                        rows=[full, many, empty])
    workspace = Workspace(name="Every property", pages=[database, target_db],
                          seed=f"every_property/{seed}")
    # The workspace's own member (the emulator renders them as a full user object).
    full.properties["Owners"] = [ada, person_user_id(workspace)]
    return linker.finish(workspace)
