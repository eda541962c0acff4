"""Fixtures for the emulator tests: a small workspace with every feature, and a running emulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from notionfs.emulator.model import (
    Block,
    Database,
    DataSource,
    FileSpec,
    Page,
    Workspace,
    callout,
    columns,
    file_block,
    paragraph,
    synced,
    synced_copy,
    toggle,
)
from notionfs.emulator.server import Emulator

TOKEN = "secret_test_token"
UUID_DASHED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BIG_PAGE_CHILDREN = 130
TASK_ROWS = 120
ROW_SCHEMA = {
    "Name": "title",
    "Notes": "rich_text",
    "Count": "number",
    "Kind": "select",
    "Tags": "multi_select",
    "State": "status",
    "Due": "date",
    "Done": "checkbox",
    "Link": "url",
    "Mail": "email",
    "Phone": "phone_number",
    "Attachments": "files",
    "Related": "relation",
    "Owners": "people",
    "Created": "created_time",
    "Edited": "last_edited_time",
    "Author": "created_by",
    "Editor": "last_edited_by",
}


@dataclass
class Refs:
    """Handles on the objects tests look at."""

    home: Page
    nested: Page  # inside a toggle: parent block_id
    in_column: Page  # inside a column
    trashed_page: Page
    secret: Page  # not shared with the integration
    secret_child: Page  # shared, under the unshared page
    big_page: Page
    tasks: Database
    rows: list[Page]
    trashed_row: Page
    wiki: Database  # two data sources
    image: FileSpec
    external: FileSpec
    attachment: FileSpec
    cover: FileSpec
    image_block: Block
    external_block: Block
    trashed_block: Block
    toggle_block: Block
    synced_original: Block
    synced_dup: Block
    extra: dict[str, object] = field(default_factory=dict)


def build_workspace() -> tuple[Workspace, Refs]:
    """Every feature the API must render, in a workspace small enough to build per test."""
    image = FileSpec(
        "cat photo.png", data=b"\x89PNG\r\n" + bytes(range(256)) * 8, content_type="image/png"
    )
    external = FileSpec(
        "remote.pdf", data=b"%PDF-1.4 external", external=True, content_type="application/pdf"
    )
    attachment = FileSpec("notes.txt", data=b"row attachment", content_type="text/plain")
    cover = FileSpec("cover.jpg", data=b"\xff\xd8cover", content_type="image/jpeg")

    nested = Page("Nested in toggle", children=[paragraph("deep")])
    in_column = Page("In a column")
    image_block = file_block("image", image, caption="a cat")
    external_block = file_block("pdf", external)
    trashed_block = paragraph("gone")
    trashed_block.in_trash = True
    toggle_block = toggle("More", [nested, paragraph("inside toggle")])
    synced_original = synced([paragraph("synced text")])
    synced_dup = synced_copy(synced_original)

    rows = [
        Page(f"Task {i:03d}", properties={"Count": i, "Done": i % 2 == 0}) for i in range(TASK_ROWS)
    ]
    first = rows[0]
    first.properties.update(
        {
            "Name": "First task",
            "Notes": "some notes",
            "Count": 3.5,
            "Kind": "Bug",
            "Tags": ["red", "blue"],
            "State": "In progress",
            "Due": "2026-02-01",
            "Done": True,
            "Link": "https://example.com",
            "Mail": "a@example.com",
            "Phone": "+1 555 0100",
            "Attachments": [attachment],
            "Related": rows[1:31],  # 30 relations: past the 25 a page object carries
            "Owners": ["6a1c3c55-0000-4000-8000-000000000001"],
        }
    )
    trashed_row = Page("Trashed row", in_trash=True)
    tasks = Database("Tasks", properties=dict(ROW_SCHEMA), rows=[*rows, trashed_row], inline=True)

    wiki = Database(
        "Wiki",
        data_sources=[
            DataSource("Articles", rows=[Page("Article A"), Page("Article B")]),
            DataSource(
                "Drafts",
                properties={"Title": "title", "Words": "number"},
                rows=[Page("Draft", properties={"Words": 12})],
            ),
        ],
    )

    trashed_page = Page("Trashed page", in_trash=True, children=[paragraph("x")])
    secret_child = Page("Shared under secret")
    secret = Page("Secret", shared=False, children=[secret_child])
    big_page = Page("Big page", children=[paragraph(f"line {i}") for i in range(BIG_PAGE_CHILDREN)])

    home = Page(
        "Home Page",
        icon="\U0001f3e0",
        cover=cover,
        children=[
            paragraph("Welcome"),
            image_block,
            external_block,
            trashed_block,
            toggle_block,
            columns([in_column], [paragraph("right")]),
            callout("note", [paragraph("in callout")]),
            synced_original,
            synced_dup,
            tasks,
            trashed_page,
        ],
    )
    workspace = Workspace(name="Test Space", pages=[home, secret, big_page, wiki])
    refs = Refs(
        home=home,
        nested=nested,
        in_column=in_column,
        trashed_page=trashed_page,
        secret=secret,
        secret_child=secret_child,
        big_page=big_page,
        tasks=tasks,
        rows=rows,
        trashed_row=trashed_row,
        wiki=wiki,
        image=image,
        external=external,
        attachment=attachment,
        cover=cover,
        image_block=image_block,
        external_block=external_block,
        trashed_block=trashed_block,
        toggle_block=toggle_block,
        synced_original=synced_original,
        synced_dup=synced_dup,
    )
    return workspace, refs


def plain_http_client(**options: object) -> httpx.Client:
    """An httpx client for the emulator's plain-HTTP loopback URLs. No TLS is involved, so
    skip loading the CA bundle (which costs ~40 ms per client)."""
    return httpx.Client(verify=False, timeout=10.0, **options)  # type: ignore[arg-type]


@dataclass
class World:
    """A running emulator over ``build_workspace()`` plus clients for it."""

    emulator: Emulator
    refs: Refs
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, version: str = "2025-09-03", token: str | None = TOKEN) -> httpx.Client:
        headers = {"Notion-Version": version} if version else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = plain_http_client(base_url=self.emulator.api_url, headers=headers)
        self._clients.append(client)
        return client

    def download(self, url: str) -> bytes:
        """GET a file URL (signed or external) and return its bytes."""
        client = plain_http_client()
        self._clients.append(client)
        response = client.get(url)
        response.raise_for_status()
        return response.content

    def close(self) -> None:
        for client in self._clients:
            client.close()


def start_world(**emulator_options: object) -> World:
    workspace, refs = build_workspace()
    emulator = Emulator(workspace, token=TOKEN, **emulator_options)  # type: ignore[arg-type]
    return World(emulator.start(), refs)


@pytest.fixture
def world() -> Iterator[World]:
    world = start_world()
    try:
        yield world
    finally:
        world.close()
        world.emulator.stop()


@pytest.fixture
def emulator(world: World) -> Emulator:
    return world.emulator


@pytest.fixture
def refs(world: World) -> Refs:
    return world.refs


# ---- helpers for the tests ----------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error"
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert UUID_DASHED.match(body["request_id"])
    return body


def children(client: httpx.Client, block_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every child, following cursors."""
    results: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"start_cursor": cursor} if cursor else {})}
        body = client.get(f"/v1/blocks/{block_id}/children", params=query).json()
        results.extend(body["results"])
        if not body["has_more"]:
            return results
        cursor = body["next_cursor"]


def search_all(client: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    """Every search result, following cursors."""
    results: list[dict[str, Any]] = []
    while True:
        page = client.post("/v1/search", json=body).json()
        results.extend(page["results"])
        if not page["has_more"]:
            return results
        body["start_cursor"] = page["next_cursor"]
