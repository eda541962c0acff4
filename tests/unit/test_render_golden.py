"""Golden files: every block and property type, fetched from the emulator, rendered.

The emulator answers in each API version's shapes; the rendered files must not depend on the
version. Regenerate the goldens with ``UPDATE_GOLDEN=1 pytest tests/unit/test_render_golden.py``
and review the diff.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.emulator import samples
from notionfs.emulator.model import Workspace
from notionfs.emulator.server import Emulator
from notionfs.models import Page
from notionfs.render import (
    BlockNode,
    StaticLinks,
    collect_nodes,
    relative_link,
    render_csv,
    render_page,
    row_properties,
)

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = ["2022-06-28", "2025-09-03", "2026-03-11"]
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def markdown_parser() -> MarkdownIt:
    """CommonMark plus the GFM pieces the renderer writes (tables, strikethrough)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def read_exact(path: Path) -> str:
    """The file's text with its line ends as they are (CSV uses CRLF)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def in_2026_form(text: str, version: str) -> str:
    """The page's own ``url`` (front matter) is Notion's, passed through: at 2022-06-28 the
    emulator answers www.notion.so/<slug>-<id> and later app.notion.com/p/<slug>-<id>, as
    each version's recordings do. The goldens hold the later form."""
    if version != "2022-06-28":
        return text
    swapped, count = re.subn(r'^url: "https://www\.notion\.so/', 'url: "https://app.notion.com/p/',
                             text, count=1, flags=re.MULTILINE)
    assert count == 1, "a 2022-06-28 page url names www.notion.so"
    return swapped


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1"
    assert text == read_exact(path)


@dataclass
class Fetched:
    client: NotionClient
    titles: dict[str, str]


@pytest.fixture(scope="module", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(emulator: Emulator, version: str) -> NotionClient:
    settings = Settings(token=emulator.token, api_url=emulator.api_url,
                        notion_version=version, rate_limit_rps=1000.0, rate_limit_burst=1000)
    return NotionClient(settings)


@pytest.fixture(scope="module")
def blocks_workspace() -> Workspace:
    return samples.everything_blocks()


@pytest.fixture(scope="module")
def properties_workspace() -> Workspace:
    return samples.every_property()


def _fetched(workspace: Workspace, version: str) -> Iterator[Fetched]:
    with Emulator(workspace) as emulator, _client(emulator, version) as client:
        titles = {obj.id: obj.title for obj in client.search_all()}
        yield Fetched(client, titles)


@pytest.fixture(scope="module")
def blocks_api(blocks_workspace: Workspace, version: str) -> Iterator[Fetched]:
    yield from _fetched(blocks_workspace, version)


@pytest.fixture(scope="module")
def properties_api(properties_workspace: Workspace, version: str) -> Iterator[Fetched]:
    yield from _fetched(properties_workspace, version)


def folder_links(nodes: tuple[BlockNode, ...], titles: dict[str, str]) -> StaticLinks:
    """What the tree knows about a page folder: its child folders and its files."""
    children: dict[str, str] = {}
    files: dict[str, str] = {}

    def visit(level: tuple[BlockNode, ...]) -> None:
        for node in level:
            block = node.block
            if block.type in ("child_page", "child_database"):
                children[block.id] = relative_link(block.title or "Untitled", directory=True)
            elif block.file is not None:
                files[block.id] = relative_link(block.file.name or block.type, directory=False)
            visit(node.children)

    visit(nodes)
    return StaticLinks(children=children, files=files, titles=titles)


def render_every_block(api: Fetched, page_id: str) -> str:
    page = api.client.get_page(page_id)
    nodes = collect_nodes(page.id, api.client.block_children)
    return render_page(page, nodes, folder_links(nodes, api.titles))


def every_property_rows(api: Fetched, workspace: Workspace) -> tuple[list[Page], list[str]]:
    database = api.client.get_database(workspace.pages[0].id)
    source = database.data_sources[0]
    rows = list(api.client.query_rows(database, source.id))
    schema = api.client.get_data_source(source.id).raw_properties
    return rows, list(schema)


# ---- the goldens -----------------------------------------------------------------------------


def test_every_block_markdown(blocks_api: Fetched, blocks_workspace: Workspace) -> None:
    text = render_every_block(blocks_api, blocks_workspace.pages[0].id)
    check_golden("everything_blocks.md", in_2026_form(text, blocks_api.client.version))


def test_every_property_csv(properties_api: Fetched, properties_workspace: Workspace) -> None:
    rows, columns = every_property_rows(properties_api, properties_workspace)
    data = render_csv(rows, columns=columns, fetch=properties_api.client.page_property,
                      title=properties_api.titles.get)
    check_golden("every_property.csv", data.decode("utf-8"))


@pytest.mark.parametrize("row_name", ["Full row", "Many references", "Empty row"])
def test_every_property_row_markdown(
    properties_api: Fetched, properties_workspace: Workspace, row_name: str
) -> None:
    rows, _ = every_property_rows(properties_api, properties_workspace)
    (row,) = [r for r in rows if r.title == row_name]
    texts = row_properties(row, fetch=properties_api.client.page_property,
                           title=properties_api.titles.get)
    text = render_page(row, (), StaticLinks(titles=properties_api.titles), properties=texts)
    check_golden(f"every_property_{row_name.lower().replace(' ', '_')}.md",
                 in_2026_form(text, properties_api.client.version))


# ---- the goldens read back by real parsers ---------------------------------------------------


def _golden_markdown() -> list[Path]:
    return sorted(GOLDEN.glob("*.md"))


def links_in(markdown: str) -> list[str]:
    """Every link and image destination a CommonMark parser finds, in order."""
    found: list[str] = []

    def visit(tokens: list) -> None:  # type: ignore[type-arg]
        for token in tokens:
            if token.type in ("link_open", "image"):
                found.append(str(token.attrs.get("href") or token.attrs.get("src")))
            if token.children:
                visit(token.children)

    visit(markdown_parser().parse(markdown))
    return found


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    data = yaml.safe_load(head)
    assert isinstance(data, dict)
    return data, body


@pytest.mark.parametrize("path", _golden_markdown(), ids=lambda p: p.name)
def test_goldens_parse_as_markdown_with_yaml_front_matter(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    data, body = split_front_matter(text)
    assert {"title", "id", "url", "created", "edited"} <= set(data)
    html = markdown_parser().render(body)
    assert html.startswith("<h1>")


def test_every_block_golden_links_are_the_expected_ones() -> None:
    _, body = split_front_matter((GOLDEN / "everything_blocks.md").read_text(encoding="utf-8"))
    links = links_in(body)
    relative = [link for link in links if "://" not in link]
    assert relative == [
        "Child%20page/index.md", "Inline%20database/", "image.png", "video.avi", "audio.wav",
        "file.txt", "doc.pdf", "in%20toggle%20%281%29.png",
    ]
    absolute = [link for link in links if "://" in link]
    assert "https://developers.notion.com" in absolute
    assert "https://developers.notion.com/reference/block" in absolute
    assert "https://example.com/embed" in absolute
    assert "https://github.com/example/repo/pull/1" in absolute
    # Mentions and link_to_page blocks of pages outside the folder point at notion.so.
    assert sum(link.startswith("https://www.notion.so/") for link in absolute) == 4
    # No signed file URL is ever written into a file.
    assert not any("X-Amz" in link or "Signature" in link or "expires" in link.lower()
                   for link in links)


def test_every_block_golden_text_survives_the_parser() -> None:
    """What the escaping protects reads back as the text Notion holds."""
    _, body = split_front_matter((GOLDEN / "everything_blocks.md").read_text(encoding="utf-8"))
    html = markdown_parser().render(body)
    assert ("# Not a heading: *stars*, _under_, snake_case, [brackets](x), &lt;b&gt;tag&lt;/b&gt;"
            ", &amp;amp; | pipe | $5, back\\slash, ~tilde~, `ticks`") in html
    assert "1. Not a list<br />\n- nor this<br />\n&gt; nor a quote" in html
    assert "<code class=\"language-markdown\">Fences ``` inside\n</code>" in html
    assert "<td>a|b</td>" in html and "<td>line<br>break</td>" in html
    assert '<ol>\n<li>Numbering restarts</li>\n<li>after any other block</li>\n</ol>' in html
    assert "<strong>bold</strong>" in html and "<em>italic</em>" in html
    assert "<s>strike</s>" in html and "<code>code</code>" in html


def test_every_property_csv_golden_parses() -> None:
    text = read_exact(GOLDEN / "every_property.csv")
    assert not text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    assert header[0] == "Name" and len(header) == len(samples.EVERY_PROPERTY_SCHEMA)
    assert [row[0] for row in body] == ["Full row", "Many references", "Empty row"]
    assert all(len(row) == len(header) for row in body)
    many = dict(zip(header, body[1], strict=True))
    # Past the 25 references a page object holds: fetched whole.
    assert len(many["Targets"].split(", ")) == 30
    assert len(many["Owners"].split(", ")) == 30
    assert many["Notes"].count("Target ") == 30
