"""The demo workspace: contents worth browsing, media that open, deterministic and cached."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notionfs.emulator import demo, media, samples
from notionfs.emulator.model import Block, Database, FileSpec, Page, Workspace


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="module")
def workspace(data_dir: Path) -> Workspace:
    return demo.build_demo(data_dir)


def _below(nodes: list[Any]) -> Iterator[Any]:
    """Blocks, pages and databases below ``nodes`` in document order (rows excluded)."""
    for node in nodes:
        yield node
        if isinstance(node, (Block, Page)):
            yield from _below(node.children)


def _pages_with_depth(nodes: list[Any], depth: int = 1) -> Iterator[tuple[Page, int]]:
    for node in nodes:
        if isinstance(node, Page):
            yield node, depth
            yield from _pages_with_depth(node.children, depth + 1)
        elif isinstance(node, Block):
            yield from _pages_with_depth(node.children, depth)


def _find(workspace: Workspace, title: str) -> Any:
    matches = [o for o in workspace.walk() if isinstance(o, (Page, Database)) and o.title == title]
    assert len(matches) == 1, f"{title!r}: {len(matches)} matches"
    return matches[0]


def _blocks(workspace: Workspace) -> list[Block]:
    return [o for o in workspace.walk() if isinstance(o, Block)]


def _specs(workspace: Workspace) -> list[FileSpec]:
    return [o for o in workspace.walk() if isinstance(o, FileSpec)]


def test_pages_are_many_and_deep(workspace: Workspace) -> None:
    pages = list(_pages_with_depth(workspace.pages))
    assert len(pages) >= 25
    assert max(depth for _, depth in pages) >= 4
    assert _find(workspace, "Day 3 — Glacier walk") in [p for p, d in pages if d == 4]


def test_prose_uses_every_kind_of_block(workspace: Workspace) -> None:
    types = Counter(b.type for b in _blocks(workspace))
    for kind in ("heading_1", "heading_2", "heading_3", "paragraph", "bulleted_list_item",
                 "numbered_list_item", "to_do", "toggle", "quote", "callout", "code", "equation",
                 "table", "table_row", "divider", "bookmark", "embed", "column_list",
                 "synced_block", "table_of_contents", "link_to_page"):
        assert types[kind] >= 1, kind
    assert types["paragraph"] >= 20
    annotations = {flag for b in _blocks(workspace) for run in b.payload.get("rich_text", [])
                   for flag, on in run["annotations"].items() if on is True}
    assert annotations >= {"bold", "italic", "code"}
    assert any(run.get("href") for b in _blocks(workspace)
               for run in b.payload.get("rich_text", []))
    for kind in ("bulleted_list_item", "numbered_list_item", "to_do"):
        assert any(b.type == kind and any(isinstance(c, Block) and c.type == child_kind
                                          for c in b.children)
                   for b in _blocks(workspace)
                   for child_kind in ("bulleted_list_item", "to_do")), f"nested {kind}"
    languages = {b.payload["language"] for b in _blocks(workspace) if b.type == "code"}
    assert {"python", "shell"} <= languages


def test_trips_database(workspace: Workspace) -> None:
    trips = _find(workspace, "Trips")
    people = _find(workspace, "People")
    (ds,) = trips.data_sources
    assert 18 <= len(ds.rows) <= 25
    assert set(ds.properties.values()) >= {"title", "rich_text", "number", "select",
                                           "multi_select", "status", "date", "checkbox", "url",
                                           "email", "files", "relation"}
    file_counts = Counter(len(row.properties["Photos"]) for row in ds.rows)
    assert file_counts[0] and file_counts[1] and file_counts[2] and file_counts[3]
    people_rows = people.data_sources[0].rows
    related = [p for row in ds.rows for p in row.properties["Companions"]]
    assert related and all(any(p is q for q in people_rows) for p in related)
    assert any(row.children for row in ds.rows)
    for row in ds.rows:
        assert set(row.properties) == set(ds.properties)
        assert row.properties["Name"] == row.title
    assert set(ds.properties.values()) >= {"rollup", "formula", "people", "unique_id",
                                           "created_by"}
    # More relations than the 25 a page object holds: the rest come from the property
    # item endpoint.
    waypoints = _find(workspace, "Waypoints").data_sources[0].rows
    stops = {row.title: len(row.properties["Stops"]) for row in ds.rows}
    assert stops["Iceland ring road"] == len(waypoints) > 25


def test_inline_reading_list(workspace: Workspace) -> None:
    library = _find(workspace, "Library")
    (reading,) = [c for c in library.children if isinstance(c, Database)]
    assert reading.inline and len(reading.data_sources[0].rows) >= 5


def _media_kind(spec: FileSpec) -> str:
    return spec.name.rsplit(".", 1)[-1].lower()


def test_media_variety(workspace: Workspace) -> None:
    kinds = Counter(_media_kind(s) for s in _specs(workspace))
    assert kinds["jpg"] >= 8 and kinds["png"] >= 4
    for kind in ("pdf", "wav", "csv", "txt", "avi", "bin"):
        assert kinds[kind] >= 1, kind
    assert max(s.size for s in _specs(workspace)) >= 50 * media.MiB
    assert all(s.content_type != "application/octet-stream" for s in _specs(workspace)
               if _media_kind(s) != "bin")


def _require(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed; this check needs it to open the file")


def test_media_open_in_real_programs(workspace: Workspace) -> None:
    specs = {s.path: s for s in _specs(workspace) if s.path is not None}
    by_kind: dict[str, list[FileSpec]] = {}
    for spec in specs.values():
        by_kind.setdefault(_media_kind(spec), []).append(spec)
    _require("identify")
    pictures = by_kind["jpg"] + by_kind["png"]
    out = subprocess.run(["identify", "-format", "%m %w\n", *(str(s.path) for s in pictures)],
                         capture_output=True, check=True, timeout=60)
    formats = out.stdout.decode().split()
    assert formats[0::2] == ["JPEG"] * len(by_kind["jpg"]) + ["PNG"] * len(by_kind["png"])
    assert out.stderr == b""
    _require("pdfinfo")
    for spec in by_kind["pdf"]:
        info = subprocess.run(["pdfinfo", str(spec.path)], capture_output=True, check=True)
        assert info.stderr == b"" and int(re.search(rb"Pages:\s+(\d+)", info.stdout)[1]) >= 2
    _require("ffprobe")
    for kind, codec in (("wav", "pcm_s16le"), ("avi", "mjpeg")):
        for spec in by_kind[kind]:
            out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                  "stream=codec_name:format=duration", "-of", "csv=p=0",
                                  str(spec.path)], capture_output=True, check=True)
            lines = out.stdout.decode().split()
            assert lines[0] == codec and float(lines[1]) >= 2.0


def test_big_file_is_a_pattern(workspace: Workspace, data_dir: Path) -> None:
    (big,) = [s for s in _specs(workspace) if s.size >= 50 * media.MiB]
    assert big.path is not None and big.path.parent == data_dir
    with open(big.path, "rb") as f:
        for offset in (0, 17 * media.MiB - 5, big.size - 100):
            f.seek(offset)
            assert f.read(100) == media.pattern_range(offset, 100, "demo/sensor-log")


def _file_block_parents(workspace: Workspace) -> set[str]:
    """Types of the blocks that contain file blocks (at any depth)."""
    found: set[str] = set()

    def visit(nodes: list[Any], containers: tuple[str, ...]) -> None:
        for node in nodes:
            if isinstance(node, Block):
                if node.file is not None:
                    found.update(containers)
                visit(node.children, containers + (node.type,))
            elif isinstance(node, Page):
                visit(node.children, ())

    visit(list(workspace.pages), ())
    return found


def test_files_hide_in_containers(workspace: Workspace) -> None:
    assert _file_block_parents(workspace) >= {"toggle", "column", "callout", "synced_block"}
    synced = [b for b in _blocks(workspace) if b.type == "synced_block"]
    originals = [b for b in synced if b.synced_from is None]
    copies = [b for b in synced if b.synced_from is not None]
    assert copies and all(c.synced_from in originals and not c.children for c in copies)
    assert any(b.file is not None for b in _below(originals[0].children) if isinstance(b, Block))


def test_icons_and_covers(workspace: Workspace) -> None:
    objects = [o for o in workspace.walk() if isinstance(o, (Page, Database))]
    assert sum(isinstance(o.icon, FileSpec) for o in objects) >= 2
    assert sum(isinstance(o.icon, str) for o in objects) >= 10
    assert sum(o.cover is not None for o in objects) >= 4


def test_awkward_cases(workspace: Workspace) -> None:
    journal = _find(workspace, "Journal")
    titles = Counter(c.title for c in journal.children if isinstance(c, Page))
    assert titles["Meeting notes"] == 3
    recipes = _find(workspace, "Recipes")
    assert [c.title for c in recipes.children if isinstance(c, Page)].count("Sourdough") == 2
    all_titles = [o.title for o in workspace.walk() if isinstance(o, (Page, Database))]
    assert any("/" in t for t in all_titles)
    assert any(len(t.encode()) > 255 for t in all_titles)
    assert any(t.startswith(".") for t in all_titles)
    assert any(t.endswith("   ") for t in all_titles)
    assert any(re.search("[\U0001f300-\U0001faff]", t) for t in all_titles)
    assert "" in all_titles
    assert [p.title for p in workspace.walk() if isinstance(p, Page) and p.in_trash] == [
        "Old drafts"]
    trashed_blocks = [b for b in _blocks(workspace) if b.in_trash]
    assert len(trashed_blocks) == 1 and any(
        isinstance(c, Block) and c.file is not None for c in trashed_blocks[0].children)
    assert sum(s.external for s in _specs(workspace)) >= 1
    (private,) = [p for p in workspace.pages if isinstance(p, Page) and not p.shared]
    assert any(isinstance(c, Page) and c.shared for c in private.children)
    names = Counter(s.name for s in _specs(workspace))
    assert names["IMG_2041.jpg"] == 2


def test_rebuild_reuses_cached_media(workspace: Workspace, data_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_generation(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("media regenerated although cached")

    for name in ("jpeg", "png", "pdf", "wav", "mjpeg_avi", "csv_text", "_pattern_chunk"):
        monkeypatch.setattr(media, name, no_generation)
    again = demo.build_demo(data_dir)
    monkeypatch.undo()
    assert samples.signature(again) == samples.signature(workspace)


def test_fresh_build_is_identical(workspace: Workspace, tmp_path: Path) -> None:
    fresh = demo.build_demo(tmp_path)
    assert samples.signature(fresh) == samples.signature(workspace)


def test_emulator_serves_the_demo(workspace: Workspace) -> None:
    """Every block of every visible page lists through the API; small files download intact."""
    from notionfs.emulator.server import Emulator

    specs = {s.id.replace("-", ""): s for s in _specs(workspace)}
    seen_files = 0
    with Emulator(workspace) as emulator, httpx.Client(
            base_url=emulator.api_url, timeout=30,
            headers={"Authorization": f"Bearer {emulator.token}",
                     "Notion-Version": "2025-09-03"}) as api:
        results = _search_all(api)
        titles = {_plain_title(r) for r in results if r["object"] == "page"}
        assert "Shared packing list" in titles and "Private notes" not in titles
        stack = [r["id"] for r in results if r["object"] == "page"]
        while stack:
            body = api.get(f"/v1/blocks/{stack.pop()}/children", params={"page_size": 100})
            assert body.status_code == 200
            for block in body.json()["results"]:
                kind = block["type"]
                if kind in ("image", "video", "audio", "file", "pdf"):
                    seen_files += _check_download(block[kind], specs)
                if block["has_children"] and kind not in ("child_page", "child_database"):
                    stack.append(block["id"])
    assert seen_files >= 15


def _search_all(api: httpx.Client) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"page_size": 100}
    results: list[dict[str, Any]] = []
    while True:
        found = api.post("/v1/search", json=body).json()
        results += found["results"]
        if not found["has_more"]:
            return results
        body["start_cursor"] = found["next_cursor"]


def _plain_title(page: dict[str, Any]) -> str:
    for prop in page["properties"].values():
        if prop["type"] == "title":
            return "".join(run["plain_text"] for run in prop["title"])
    return ""


def _check_download(file_object: dict[str, Any], specs: dict[str, FileSpec]) -> int:
    """Download a file object; its bytes must be those of a spec with its name."""
    candidates = [s for s in specs.values() if s.name == file_object["name"]]
    if any(s.size > 2 * media.MiB for s in candidates):
        return 0
    url = (file_object.get("file") or file_object["external"])["url"]
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200
    assert any(s.read() == response.content for s in candidates)
    return 1
