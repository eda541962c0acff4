"""NotionWorkspace without FUSE: a command-line tool's view of the mount source, over the
emulator on loopback, with API calls counted."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest

from notionfs.client import NotionClient
from notionfs.config import Settings
from notionfs.emulator import samples
from notionfs.emulator.server import Emulator
from notionfs.nodes import Kind, Node
from notionfs.remote import file_host_client
from notionfs.workspace import NotionWorkspace


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(samples.nested_files()) as emulator:
        yield emulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workspace(
    request: pytest.FixtureRequest, emulator: Emulator, clock: Clock
) -> Iterator[NotionWorkspace]:
    """Without a change feed unless parametrized with a poll interval (indirect)."""
    settings = Settings(
        token=emulator.token, api_url=emulator.api_url, rate_limit_rps=1000.0,
        rate_limit_burst=1000, poll_interval_s=getattr(request, "param", 0.0),
    )  # fmt: skip
    client = NotionClient(settings)
    files = file_host_client(settings)
    source = NotionWorkspace(client, files, settings, clock=clock)
    yield source
    source.close()
    files.close()
    client.close()


def _names(nodes: list[Node]) -> set[str]:
    return {n.name for n in nodes}


def test_walk_without_fuse_finds_pages_files_and_generated_text(
    workspace: NotionWorkspace,
) -> None:
    top = workspace.listdir(workspace.root)
    assert _names(top) == {"Nested files", "Shared child"}
    page = workspace.lookup("/Nested files")
    assert page is not None and page.kind is Kind.PAGE and page.is_dir
    names = _names(workspace.listdir(page))
    assert {"index.md", "top.png", "notes.txt", "report.pdf", "Page in toggle"} <= names
    assert "trashed.txt" not in names
    text = workspace.lookup("/Nested files/index.md")
    assert text is not None and text.kind is Kind.GENERATED
    body = workspace.open(text).read(0, 1 << 20)
    assert body.startswith(b"---\n") and b"# Nested files" in body
    assert workspace.size(text) == len(body)
    notes = workspace.lookup("/Nested files/notes.txt")
    assert notes is not None and notes.remote is not None
    reader = workspace.open(notes)
    try:
        data = reader.read(0, workspace.size(notes))
    finally:
        reader.close()
    assert len(data) == workspace.size(notes) > 0
    assert workspace.xattrs(notes)["type"] == "file"
    assert workspace.lookup("/Nested files/no such thing") is None


def test_lookups_within_the_ttl_cost_no_call_and_expire_after_it(
    workspace: NotionWorkspace, emulator: Emulator, clock: Clock
) -> None:
    assert workspace.lookup("/Nested files/Page in toggle") is not None
    before = emulator.counters.total
    for _ in range(5):
        assert workspace.lookup("/Nested files/Page in toggle") is not None
        assert workspace.lookup_memory("/Nested files/top.png")[0] is True
    assert emulator.counters.total == before
    clock.now += 3600
    assert workspace.lookup_memory("/Nested files") == (False, None)
    assert workspace.lookup_held("/Nested files/top.png") is not None  # stale, no I/O
    assert emulator.counters.total == before
    assert workspace.lookup("/Nested files/top.png") is not None
    assert emulator.counters.total > before  # re-listed root and page


def test_probe_names_cost_nothing_listed_or_not(
    workspace: NotionWorkspace, emulator: Emulator
) -> None:
    before = emulator.counters.total
    assert workspace.lookup("/.Trash-1000") is None
    assert workspace.lookup("/._something") is None
    assert emulator.counters.total == before


def test_inodes_are_stable_across_relistings(
    workspace: NotionWorkspace, clock: Clock
) -> None:
    first = workspace.lookup("/Nested files/top.png")
    clock.now += 3600
    again = workspace.lookup("/Nested files/top.png")
    assert first is not None and again is not None
    assert again is not first  # a new immutable node from the new listing ...
    assert again.inode == first.inode  # ... with the same identity
    assert again.remote is first.remote  # and the same RemoteFile (bytes cached stay valid)


def test_generated_text_renders_once_and_is_sized_before_read(
    workspace: NotionWorkspace, emulator: Emulator
) -> None:
    text = workspace.lookup("/Nested files/index.md")
    assert text is not None
    assert workspace.known_size(text) is None
    size = workspace.size(text)
    before = emulator.counters.total
    assert workspace.known_size(text) == size
    assert workspace.identity(text) == workspace.identity(text)
    assert emulator.counters.total == before


@pytest.mark.parametrize("workspace", [15.0], indirect=True)
def test_with_a_feed_an_expired_listing_answers_at_once_and_relists_behind(
    workspace: NotionWorkspace, emulator: Emulator, clock: Clock
) -> None:
    assert workspace.lookup("/Nested files/top.png") is not None
    before = emulator.counters.total
    clock.now += 601  # past the backstop TTL
    assert workspace.lookup_memory("/Nested files") == (False, None)
    assert workspace.lookup("/Nested files/top.png") is not None  # the held answer, at once
    deadline = time.monotonic() + 5
    while emulator.counters.total == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.counters.total > before  # re-listed in the background
    deadline = time.monotonic() + 5
    while workspace.lookup_memory("/Nested files")[1] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert workspace.lookup_memory("/Nested files")[1] is not None  # fresh again


@pytest.mark.parametrize("workspace", [15.0], indirect=True)
def test_with_a_feed_a_reported_change_drops_exactly_its_listings(
    workspace: NotionWorkspace, emulator: Emulator
) -> None:
    from notionfs.feed import Change

    page = workspace.lookup("/Nested files")
    toggle_child = workspace.lookup("/Nested files/Page in toggle")
    assert page is not None and toggle_child is not None and toggle_child.object_id
    assert workspace.is_fresh(page) and workspace.is_fresh(workspace.root)
    assert page.object_id is not None
    edited = Change(toggle_child.object_id, "page", 0.0, "page_id", page.object_id, None,
                    "Page in toggle")
    dropped = workspace.apply_changes([edited])
    assert f"page:{toggle_child.object_id}" in dropped
    assert workspace.is_fresh(page) and workspace.is_fresh(workspace.root)
    renamed = Change(toggle_child.object_id, "page", 0.0, "page_id", page.object_id, None,
                     "Page in a toggle, renamed")
    workspace.apply_changes([renamed])
    assert not workspace.is_fresh(page)  # the folder that shows its name
    assert workspace.is_fresh(workspace.root)


def test_sibling_containers_are_fetched_at_once_with_the_same_result() -> None:
    from notionfs.emulator.model import FileSpec, Page, Workspace, file_block, toggle
    from notionfs.lister import NotionLister, Titles
    from notionfs.render.markdown import collect_nodes

    toggles = [toggle(f"T{i}", [file_block("file", FileSpec(f"f{i}.txt", b"x" * (i + 1))),
                                toggle(f"inner {i}", [Page(f"P{i}")])]) for i in range(4)]
    with Emulator(Workspace(name="Toggles", pages=[Page("Top", children=toggles)])) as emu:
        settings = Settings(token=emu.token, api_url=emu.api_url, rate_limit_rps=1000.0,
                            rate_limit_burst=1000)
        with NotionClient(settings) as client, \
                concurrent.futures.ThreadPoolExecutor(4) as pool:
            top_id = emu.workspace.pages[0].id
            parallel = NotionLister(client, Titles(), pool)._block_tree(top_id)
            # The same tree (file URLs aside: each fetch signs them anew).
            assert _shape(parallel) == _shape(collect_nodes(top_id, client.block_children))
            emu.faults.latency_s = 0.5
            before = len(emu.counters.snapshot().log)
            NotionLister(client, Titles(), pool)._block_tree(top_id)
            log = emu.counters.snapshot().log[before:]
    first_level = [r for r in log if any(t.id.replace("-", "") in r.path.replace("-", "")
                                         for t in toggles)]
    assert len(first_level) == 4
    answered = [r.at_s for r in first_level]
    # One after another they would be answered 0.5 s apart; at once, together.
    assert max(answered) - min(answered) < 0.5


def _shape(nodes: tuple[Any, ...]) -> list[Any]:
    return [(n.block.id, n.block.type, _shape(n.children)) for n in nodes]
