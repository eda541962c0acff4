"""The bench's emulator process: serves one workspace and answers counter queries on stdin.

Run apart from the measuring process so the file host never shares its GIL. Prints one JSON
line when ready (URLs, token, one signed and one external URL per named file), then reads
commands, one per line, answering each with one JSON line:

- ``stats``: the file host's requests, body bytes and most responses in flight at once, and
  the API's calls by route and by status;
- ``reset``: counters back to zero (answers ``{}``);
- ``reset-peak``: the file host's most-in-flight count starts afresh (answers ``{}``);
- ``sign NAME``: a fresh signed URL for file NAME; ``sign-all``: one for every file.

The ``wan`` workspace is the demo plus pages that put a file six folders deep; its ready line
names (as title paths) that file, the demo page with the most nested containers and the
64 MiB file.

End of input stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from notionfs.emulator import media, samples
from notionfs.emulator.demo import build_demo
from notionfs.emulator.model import (
    Block,
    FileSpec,
    Node,
    Page,
    Workspace,
    columns,
    file_block,
    paragraph,
    toggle,
)
from notionfs.emulator.server import Emulator
from notionfs.emulator.wan import WanConditions

MiB = 1 << 20
DEEP_FOLDERS = 6
# Titles of the pages added below the demo's deepest page, as far as six folders need.
_DEEP_TITLES = ("Field sketches", "Crevasse notes", "Raw files", "Camera roll", "Unsorted",
                "Originals")


def data_workspace(data_dir: Path, big_bytes: int) -> Workspace:
    """Page "Bench" holding ``big.bin`` (on disk, sent with sendfile) and ``small.bin`` (1 MiB)."""
    big = FileSpec(name="big.bin", path=data_dir / f"bench-{big_bytes}.bin")
    media.write_pattern_file(big.path, big_bytes, "bench/big")  # type: ignore[arg-type]
    small = FileSpec(name="small.bin", data=media.pattern_bytes(MiB, "bench/small"))
    page = Page("Bench", children=[file_block("file", big), file_block("file", small)])
    workspace = Workspace(name="Bench", pages=[page], seed="bench")
    workspace.assign_ids()
    return workspace


def page_paths(workspace: Workspace) -> list[tuple[list[str], Page]]:
    """Every page a mount shows as a folder through pages alone (database rows left out),
    with the titles of the folders down to it."""
    found: list[tuple[list[str], Page]] = []

    def visit(page: Page, path: list[str]) -> None:
        found.append((path, page))
        for child in _child_pages(page.children):
            visit(child, [*path, child.title])

    for top in workspace.pages:
        if isinstance(top, Page) and top.shared and not top.in_trash:
            visit(top, [top.title])
    return found


def _child_pages(nodes: list[Node]) -> list[Page]:
    """Child pages, wherever they sit among the blocks (toggles, columns, callouts)."""
    pages: list[Page] = []
    for node in nodes:
        if isinstance(node, Page):
            if not node.in_trash:
                pages.append(node)
        elif isinstance(node, Block) and not node.in_trash:
            pages.extend(_child_pages(node.children))
    return pages


def containers(nodes: list[Node]) -> int:
    """Blocks holding other blocks (toggles, columns, callouts...) in a page's own content:
    each one costs a listing call of its own."""
    count = 0
    for node in nodes:
        if isinstance(node, Block) and not node.in_trash and node.children:
            count += 1 + containers(node.children)
    return count


def most_nested(workspace: Workspace) -> tuple[list[str], int]:
    """The folder path of the page with the most nested containers, and how many it has."""
    path, page = max(page_paths(workspace), key=lambda item: containers(item[1].children))
    return path, containers(page.children)


def add_deep_file(workspace: Workspace, folders: int = DEEP_FOLDERS) -> list[str]:
    """Put a file ``folders`` folders deep, adding pages (each in a toggle, as people file
    things away in Notion) below the deepest page; the file's path as titles."""
    path, page = max(page_paths(workspace), key=lambda item: len(item[0]))
    for title in _DEEP_TITLES[: max(0, folders - len(path))]:
        child = Page(title, children=[paragraph(f"Notes kept under {page.title}.")])
        page.children.append(toggle(f"More: {title}", [child]))
        path, page = [*path, title], child
    deep = FileSpec(name="crevasse-0417.jpg", data=media.jpeg(320, 240, "bench/deep"),
                    content_type="image/jpeg")
    page.children.append(columns([file_block("image", deep)], [paragraph("Blue ice.")]))
    workspace.assign_ids()
    return [*path, deep.name]


def file_path(workspace: Workspace, name: str) -> tuple[list[str], FileSpec]:
    """The path (titles) and spec of the first file block called ``name`` in a page's own
    content, wherever it sits among the blocks."""
    def find(nodes: list[Node]) -> FileSpec | None:
        for node in nodes:
            if isinstance(node, Block) and not node.in_trash:
                if node.file is not None and node.file.name == name:
                    return node.file
                found = find(node.children)
                if found is not None:
                    return found
        return None

    for path, page in page_paths(workspace):
        spec = find(page.children)
        if spec is not None:
            return [*path, name], spec
    raise SystemExit(f"no file {name!r} in the workspace")


def wan_workspace(data_dir: Path) -> tuple[Workspace, dict[str, Any]]:
    """The demo with a file six folders deep, and the paths the WAN measurements use."""
    workspace = build_demo(data_dir)
    nested_path, nested_containers = most_nested(workspace)
    deep_path = add_deep_file(workspace)
    big_path, big = file_path(workspace, "sensor-log.bin")
    targets = {
        "deep_file": deep_path,
        "nested_page": nested_path,
        "nested_containers": nested_containers,
        "big_file": big_path,
        "big_size": big.size,
        "big_source": str(big.path),
        # Saved into last, after the walks: the demo's front page (its own containers).
        "save_folder": [workspace.pages[0].title],
    }
    return workspace, targets


def build(kind: str, data_dir: Path, big_bytes: int,
          flat_entries: int) -> tuple[Workspace, dict[str, Any]]:
    if kind == "data":
        return data_workspace(data_dir, big_bytes), {}
    if kind == "flat":
        return samples.flat_dir(flat_entries), {}
    if kind == "demo":
        return build_demo(data_dir), {}
    if kind == "wan":
        return wan_workspace(data_dir)
    raise SystemExit(f"unknown workspace {kind!r}")


def named_files(emulator: Emulator) -> dict[str, FileSpec]:
    return {spec.name: spec for spec in emulator.index.files.values()}


def ready_line(emulator: Emulator, files: dict[str, FileSpec],
               targets: dict[str, Any]) -> dict[str, Any]:
    host = emulator.filehost
    described = {}
    for name, spec in files.items():
        if name in ("big.bin", "small.bin"):
            described[name] = {
                "size": spec.size,
                "path": str(spec.path) if spec.path else None,
                "signed_url": host.signed_url(spec, 3600)[0],
                "external_url": host.external_url(spec),
            }
    return {
        "api_url": emulator.api_url,
        "files_url": emulator.files_url,
        "token": emulator.token,
        "files": described,
        "targets": targets,
    }


def stats(emulator: Emulator) -> dict[str, Any]:
    files = emulator.filehost.counters.snapshot()
    api = emulator.counters.snapshot()
    return {
        "file_requests": files.requests,
        "file_bytes_sent": files.bytes_sent,
        "file_peak_in_flight": files.peak_in_flight,
        "api_calls": api.total,
        "api_by_route": dict(api.by_route),
        "api_by_status": {str(status): n for status, n in api.by_status.items()},
    }


def answer(emulator: Emulator, files: dict[str, FileSpec], line: str) -> dict[str, Any]:
    command, _, argument = line.strip().partition(" ")
    if command == "stats":
        return stats(emulator)
    if command == "reset":
        emulator.reset()
        return {}
    if command == "reset-peak":
        emulator.filehost.counters.reset_peak()
        return {}
    if command == "sign":
        return {"url": emulator.filehost.signed_url(files[argument], 3600)[0]}
    if command == "sign-all":
        return {"urls": [emulator.filehost.signed_url(spec, 3600)[0] for spec in files.values()]}
    return {"error": f"unknown command {command!r}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", choices=["data", "flat", "demo", "wan"])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--flat-entries", type=int, default=1000)
    # No API rate limit by default: the loopback benchmarks measure notionfs, with its own
    # limiter set high. The WAN section sets Notion's rate and a network's delays.
    parser.add_argument("--rate-limit", type=float, default=0.0, help="requests/s; 0 = off")
    parser.add_argument("--api-latency-ms", type=float, default=0.0)
    parser.add_argument("--ttfb-ms", type=float, default=0.0)
    parser.add_argument("--conn-bandwidth", type=float, default=0.0, help="bytes/s")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    workspace, targets = build(args.workspace, args.data_dir, args.big_mib * MiB,
                               args.flat_entries)
    wan = WanConditions(args.api_latency_ms / 1e3, args.ttfb_ms / 1e3, args.conn_bandwidth)
    # Full pages: Notion may answer with fewer than page_size results, but rarely does; the
    # listing benchmark counts calls against ceil(entries / 100).
    with Emulator(workspace, rate_limit_rps=args.rate_limit, short_pages=False,
                  wan=wan) as emulator:
        files = named_files(emulator)
        print(json.dumps(ready_line(emulator, files, targets)), flush=True)
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(answer(emulator, files, line)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
