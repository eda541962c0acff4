"""Test workspace builders: contents as documented, deterministic, valid media."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from notionfs.emulator import media, samples
from notionfs.emulator.model import Block, Database, DataSource, FileSpec, Page, Workspace

Builder = Callable[[], Workspace]

# Small sizes keep these fast; the defaults are exercised where they are cheap.
BUILDERS: dict[str, Builder] = {
    "nested_files": samples.nested_files,
    "wide_page": samples.wide_page,
    "big_database": lambda: samples.big_database(40),
    "gallery": lambda: samples.gallery(12),
    "flat_dir": lambda: samples.flat_dir(50),
    "many_pages": lambda: samples.many_pages(150),
    "hostile_titles": samples.hostile_titles,
    "everything_blocks": samples.everything_blocks,
    "every_property": lambda: samples.every_property(n_targets=30),
}


def _nodes(nodes: list[Any]) -> Iterator[Any]:
    """Depth-first over blocks and pages below ``nodes`` (not into databases)."""
    for node in nodes:
        yield node
        if isinstance(node, (Block, Page)):
            yield from _nodes(node.children)


def _by_title(nodes: list[Any], title: str) -> Any:
    matches = [n for n in nodes if isinstance(n, (Page, Database)) and n.title == title]
    assert len(matches) == 1, f"{title!r}: {len(matches)} matches"
    return matches[0]


def _files(nodes: list[Any]) -> list[str]:
    return [n.file.name for n in _nodes(nodes) if isinstance(n, Block) and n.file is not None]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builders_are_deterministic_with_unique_ids(name: str) -> None:
    first, second = BUILDERS[name](), BUILDERS[name]()
    assert samples.signature(first) == samples.signature(second)
    objects = list(first.walk())
    ids = [obj.id for obj in objects]
    assert all(ids) and len(set(ids)) == len(ids)


def test_seed_changes_ids() -> None:
    a, b = samples.nested_files("one"), samples.nested_files("two")
    assert {o.id for o in a.walk()}.isdisjoint({o.id for o in b.walk()})
    assert samples.wide_page(5, "one").pages[0].id != samples.wide_page(5, "two").pages[0].id


_SUBPROCESS_SIGNATURE = """
import hashlib
from notionfs.emulator import samples
ws = [samples.nested_files(), samples.hostile_titles(), samples.everything_blocks()]
print(hashlib.sha256(repr([samples.signature(w) for w in ws]).encode()).hexdigest())
"""


def test_builders_do_not_depend_on_the_process() -> None:
    digests = {
        subprocess.run([sys.executable, "-c", _SUBPROCESS_SIGNATURE], check=True,
                       capture_output=True, timeout=60,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(digests) == 1


# ---- nested_files ----------------------------------------------------------------------------


def test_nested_files_layout() -> None:
    ws = samples.nested_files()
    top, unshared = ws.pages
    assert isinstance(top, Page) and isinstance(unshared, Page)
    assert top.title == "Nested files" and isinstance(top.icon, FileSpec)
    assert top.cover is not None and top.cover.content_type == "image/jpeg"
    kinds = [c.type if isinstance(c, Block) else type(c).__name__ for c in top.children]
    assert kinds == ["paragraph", "image", "toggle", "column_list", "callout", "synced_block",
                     "synced_block", "image", "toggle", "Page", "Page", "Page", "Page",
                     "Database"]
    c = top.children
    assert _files(c[2].children) == ["in-toggle.png", "notes.txt", "report.pdf", "deep.png"]
    assert [k.type for k in c[2].children[:3]] == ["image", "file", "pdf"]
    assert _by_title(c[2].children, "Page in toggle").icon == "\U0001f4c1"
    col1, col2 = c[3].children
    assert [b.type for b in col1.children] == ["video", "audio"]
    assert _files(col2.children) == ["in-column.jpg", "column-notes.txt"]
    assert isinstance(col2.children[1], Page) and col2.children[1].title == "Page in column"
    assert _files(c[4].children) == ["data.csv", "in-callout.png"]
    original, copy = c[5], c[6]
    assert original.payload == {"synced_from": None} and _files([original]) == [
        "synced.png", "synced.txt"]
    assert copy.synced_from is original and copy.children == []
    assert c[7].file is not None and c[7].file.external
    assert c[8].in_trash and _files([c[8]]) == ["trashed.txt"]
    assert c[9].title == "Trashed page" and c[9].in_trash
    assert c[10].title == c[11].title == "Same title" and c[10].id != c[11].id
    ext = c[12]
    assert isinstance(ext.icon, FileSpec) and ext.icon.external and ext.cover.external
    db = c[13]
    assert db.inline and db.data_sources[0].properties == {"Name": "title", "Files": "files"}
    rows = {row.title: row.properties["Files"] for row in db.data_sources[0].rows}
    assert [f.name for f in rows["Two files"]] == ["a.txt", "b.png"]
    assert [f.external for f in rows["External"]] == [True]
    same = rows["Same names"]
    assert [f.name for f in same] == ["same.txt", "same.txt"] and same[0].data != same[1].data
    assert rows["Empty"] == []
    assert not unshared.shared
    (child,) = unshared.children
    assert child.shared and _files([child]) == ["shared.txt"]


def test_nested_files_media_open(tmp_path: Path) -> None:
    ws = samples.nested_files()
    specs = {s.name: s for s in ws.walk() if isinstance(s, FileSpec)}
    _require("identify")
    for name, expected in (("top.png", "PNG 48x32"), ("in-column.jpg", "JPEG 48x32"),
                           ("icon.png", "PNG 16x16"), ("cover.jpg", "JPEG 96x32"),
                           ("ext-cover.jpg", "JPEG 64x24")):
        out = subprocess.run(["identify", "-format", "%m %wx%h", "-"], input=specs[name].read(),
                             capture_output=True, check=True).stdout
        assert out.decode() == expected
    _require("ffprobe")
    for name, kind in (("clip.avi", "video"), ("tone.wav", "audio")):
        path = tmp_path / name
        path.write_bytes(specs[name].read())
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                              "-of", "csv=p=0", str(path)], capture_output=True, check=True)
        assert out.stdout.decode().strip() == kind
    _require("pdfinfo")
    path = tmp_path / "report.pdf"
    path.write_bytes(specs["report.pdf"].read())
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True).stdout
    assert re.search(rb"^Pages:\s+2$", info, re.MULTILINE)
    assert all(spec.content_type != "application/octet-stream" for spec in specs.values())


def _require(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed; this check needs it to open the file")


# ---- the size-parameterised builders ---------------------------------------------------------


def test_wide_page() -> None:
    (page,) = samples.wide_page(23).pages
    assert isinstance(page, Page) and len(page.children) == 23
    pages = [c for c in page.children if isinstance(c, Page)]
    assert [p.title for p in pages] == ["Child 004", "Child 009", "Child 014", "Child 019"]
    assert all(c.type == "paragraph" for c in page.children if isinstance(c, Block))
    (default,) = samples.wide_page().pages
    assert len(default.children) == 250


def test_big_database() -> None:
    (db,) = samples.big_database(150).pages
    assert isinstance(db, Database) and not db.inline
    (ds,) = db.data_sources
    assert len(ds.rows) == 150 and ds.rows[0].title == "Row 001" and ds.rows[-1].title == "Row 150"
    assert set(ds.properties.values()) >= {"title", "rich_text", "number", "select",
                                           "multi_select", "status", "date", "checkbox", "url",
                                           "email", "phone_number", "files"}
    for row in ds.rows:
        assert set(row.properties) == set(ds.properties)
    with_files = [r.title for r in ds.rows if r.properties["Attachments"]]
    assert len(with_files) == 15 and with_files[0] == "Row 001"
    assert ds.rows[0].children and not ds.rows[1].children


def test_gallery_images_are_small_distinct_pngs() -> None:
    (page,) = samples.gallery(130).pages
    images = [b for b in page.children if isinstance(b, Block)]
    assert len(images) == 130 and {b.type for b in images} == {"image"}
    datas = [b.file.read() for b in images if b.file is not None]
    assert len(set(datas)) == 130
    assert all(d.startswith(b"\x89PNG") and 500 < len(d) < 8192 for d in datas)
    assert len({b.file.name for b in images if b.file is not None}) == 130


def test_flat_dir() -> None:
    (page,) = samples.flat_dir(1000).pages
    files = [b.file for b in page.children if isinstance(b, Block) and b.file is not None]
    assert len(files) == 1000 and len({f.name for f in files}) == 1000
    assert all(512 <= f.size < 4096 for f in files)
    assert files[7].read() == media.pattern_bytes(files[7].size, "flat/7")


@pytest.mark.parametrize(("n", "fanout"), [(1000, 10), (37, 3), (1, 10)])
def test_many_pages_tree(n: int, fanout: int) -> None:
    ws = samples.many_pages(n, fanout=fanout)
    pages = [o for o in ws.walk() if isinstance(o, Page)]
    assert len(pages) == n
    assert all(len(p.title.split()[1].split(".")) <= 3 for p in pages)
    assert all(len([c for c in p.children if isinstance(c, Page)]) <= fanout for p in pages)
    assert len(ws.pages) == min(fanout, n)
    files = [o for o in ws.walk() if isinstance(o, FileSpec)]
    assert len(files) == -(-n // 100)
    if n == 1000:
        assert [p.title for p in ws.pages][:2] == ["Page 1", "Page 2"]
        assert _by_title(ws.pages[0].children, "Page 1.10").children[-1].title == "Page 1.10.10"


def test_hostile_titles() -> None:
    ws = samples.hostile_titles()
    assert [p.title for p in ws.pages] == ["/", "", "..", "Hostile titles"]
    container = ws.pages[3]
    titles = Counter(c.title for c in container.children if isinstance(c, Page))
    for title in samples.HOSTILE_TITLES:
        assert titles[title] >= 1
    assert titles["Duplicate"] == 50
    assert titles["Readme"] == titles["README"] == titles["readme"] == 1
    twins = [c for c in container.children if isinstance(c, Page) and c.title == "Twin"]
    assert len(twins) == 2
    assert titles[f"Twin ({twins[1].id.replace('-', '')[:8]})"] == 1
    assert any(len(t.encode()) > 255 for t in titles)
    files = _files([_by_title(container.children, "Hostile file names")])
    assert files[:len(samples.HOSTILE_FILE_NAMES)] == list(samples.HOSTILE_FILE_NAMES)
    assert files.count("same.txt") == 10


def test_big_file_is_pattern_on_disk(tmp_path: Path) -> None:
    size = 2 * media.MiB + 3
    ws = samples.big_file(tmp_path, size_bytes=size, seed="t")
    (spec,) = [o for o in ws.walk() if isinstance(o, FileSpec)]
    (page,) = ws.pages
    assert isinstance(page, Page) and len(page.children) == 1 and page.children[0].file is spec
    assert spec.name == "big.bin" and spec.data is None and spec.path == tmp_path / "big-t.bin"
    assert spec.size == size
    with open(spec.path, "rb") as f:
        f.seek(media.MiB - 2)
        assert f.read(10) == media.pattern_range(media.MiB - 2, 10, "big_file/t")
    mtime = spec.path.stat().st_mtime_ns
    samples.big_file(tmp_path, size_bytes=size, seed="t")
    assert spec.path.stat().st_mtime_ns == mtime


# ---- everything_blocks -----------------------------------------------------------------------

# The payload keys Notion's API publishes for each block type.
_PAYLOAD_KEYS = {
    "paragraph": {"rich_text", "color"},
    "heading_1": {"rich_text", "color", "is_toggleable"},
    "heading_2": {"rich_text", "color", "is_toggleable"},
    "heading_3": {"rich_text", "color", "is_toggleable"},
    "bulleted_list_item": {"rich_text", "color"},
    "numbered_list_item": {"rich_text", "color"},
    "to_do": {"rich_text", "color", "checked"},
    "toggle": {"rich_text", "color"},
    "quote": {"rich_text", "color"},
    "callout": {"rich_text", "icon", "color"},
    "code": {"rich_text", "caption", "language"},
    "equation": {"expression"},
    "divider": set(),
    "table": {"table_width", "has_column_header", "has_row_header"},
    "table_row": {"cells"},
    "bookmark": {"url", "caption"},
    "embed": {"url", "caption"},
    "link_preview": {"url"},
    "link_to_page": {"type"},
    "table_of_contents": {"color"},
    "breadcrumb": set(),
    "column_list": set(),
    "column": set(),
    "synced_block": set(),
    "image": {"caption"}, "video": {"caption"}, "audio": {"caption"}, "file": {"caption"},
    "pdf": {"caption"},
    "unsupported": set(),
}  # fmt: skip


def test_everything_blocks_has_every_type_with_api_shapes() -> None:
    ws = samples.everything_blocks()
    page, target, linked_db = ws.pages
    blocks = [n for n in _nodes(page.children) if isinstance(n, Block)]
    assert {b.type for b in blocks} == set(_PAYLOAD_KEYS)
    for block in blocks:
        assert set(block.payload) >= _PAYLOAD_KEYS[block.type], block.type
    others = [n for n in page.children if not isinstance(n, Block)]
    assert [type(n).__name__ for n in others] == ["Page", "Database"] and others[1].inline
    links = [b.payload for b in blocks if b.type == "link_to_page"]
    assert links == [{"type": "page_id", "page_id": target.id},
                     {"type": "database_id", "database_id": linked_db.id}]
    tables = [b for b in blocks if b.type == "table"]
    assert [t.payload["has_column_header"] for t in tables] == [True, False]
    for table in tables:
        assert all(len(row.payload["cells"]) == table.payload["table_width"]
                   for row in table.children)
    to_dos = [b for b in blocks if b.type == "to_do"]
    assert {b.payload["checked"] for b in to_dos} == {True, False}
    assert any(b.children for b in to_dos)
    code = next(b for b in blocks if b.type == "code")
    assert code.payload["language"] == "python" and code.payload["caption"]


def test_everything_blocks_rich_text_runs() -> None:
    page = samples.everything_blocks().pages[0]
    target = samples.everything_blocks().pages[1]
    styled = next(b for b in page.children if isinstance(b, Block) and b.type == "paragraph"
                  and len(b.payload["rich_text"]) > 5)
    runs = styled.payload["rich_text"]
    kinds = Counter(r["type"] for r in runs)
    assert kinds["equation"] == 1 and kinds["mention"] == 4
    for flag in ("bold", "italic", "strikethrough", "underline", "code"):
        assert any(r["annotations"][flag] for r in runs)
    assert any(r["href"] == "https://developers.notion.com" for r in runs)
    mentions = [r["mention"] for r in runs if r["type"] == "mention"]
    assert mentions[0] == {"type": "page", "page": {"id": target.id}}
    assert mentions[2]["date"]["start"] == "2026-01-05"
    user = mentions[3]["user"]
    assert user["object"] == "user" and user["name"] == "Ada Lindqvist"
    assert runs[-2]["plain_text"] == "@Ada Lindqvist"
    for run in runs:
        assert set(run) >= {"type", "annotations", "plain_text", "href", run["type"]}


def test_walk_reaches_data_sources() -> None:
    ws = samples.everything_blocks()
    assert sum(isinstance(o, DataSource) for o in ws.walk()) == 2
