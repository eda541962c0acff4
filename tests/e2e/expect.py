"""What a mount of a workspace model must show, computed from the model alone."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from notionfs.emulator.model import Block, Database, FileSpec, Page, Workspace

FILE_BLOCKS = {"image", "video", "audio", "file", "pdf"}


@dataclass
class Expected:
    pages: set[str] = field(default_factory=set)
    databases: set[str] = field(default_factory=set)
    files: Counter[str] = field(default_factory=Counter)  # sha256 -> how many files


def expected_view(workspace: Workspace) -> Expected:
    out = Expected()
    for top in workspace.pages:
        _visit(top, out)
    return out


def _visit(obj: Page | Database, out: Expected) -> None:
    if obj.in_trash:
        return
    if isinstance(obj, Database):
        if obj.shared:
            out.databases.add(obj.id)
            for ds in obj.data_sources:
                for row in ds.rows:
                    _visit(row, out)
        return
    specs: dict[str, FileSpec] = {}
    if obj.shared:
        out.pages.add(obj.id)
        if isinstance(obj.icon, FileSpec):
            specs["icon"] = obj.icon
        if obj.cover is not None:
            specs["cover"] = obj.cover
        for name, value in obj.properties.items():
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, FileSpec):
                        specs[f"prop:{name}:{i}"] = item
    _blocks(obj.children, specs, out, include_files=obj.shared)
    for spec in specs.values():
        out.files[spec.sha256()] += 1


def _blocks(nodes: list, specs: dict[str, FileSpec], out: Expected, include_files: bool) -> None:
    for node in nodes:
        if isinstance(node, (Page, Database)):
            _visit(node, out)
            continue
        assert isinstance(node, Block)
        if node.in_trash:
            continue
        if node.type in FILE_BLOCKS and node.file is not None and include_files:
            specs[f"block:{node.id}"] = node.file
        children = node.synced_from.children if node.synced_from is not None else node.children
        _blocks(children, specs, out, include_files)


@dataclass
class Seen:
    pages: set[str] = field(default_factory=set)
    databases: set[str] = field(default_factory=set)
    files: Counter[str] = field(default_factory=Counter)
    file_paths: list[Path] = field(default_factory=list)
    generated: list[Path] = field(default_factory=list)  # index.md / index.csv


def walk_mount(root: Path, sha256) -> Seen:
    """os.walk the mount; identify entries by their user.notion.* xattrs. Generated files
    (page text, row tables) are listed apart: they have no original in the model."""
    seen = Seen()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            path = Path(dirpath, d)
            kind = os.getxattr(path, "user.notion.type").decode()
            oid = os.getxattr(path, "user.notion.id").decode()
            if kind == "page":
                seen.pages.add(oid)
            elif kind == "database":
                seen.databases.add(oid)
        for f in filenames:
            path = Path(dirpath, f)
            if os.getxattr(path, "user.notion.type") == b"generated":
                seen.generated.append(path)
                continue
            seen.file_paths.append(path)
            seen.files[sha256(path)] += 1
    return seen
