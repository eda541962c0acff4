"""What a listing found, made into nodes: named, numbered, files given their RemoteFile.

A listing fetched from Notion and one read back from disk go through the same making, so a
name and an inode never depend on where the listing came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from .lister import Found
from .listings import Listing, Listings
from .naming import NameRequest, assign_names
from .nodes import InodeTable, Kind, Node
from .pagetext import GeneratedText, Paths
from .relations import Relations
from .remotes import RemoteFiles

__all__ = ["NodeMaker"]


class NodeMaker:
    """Names (unique in their folder), inodes (stable for the mount's life), the files'
    RemoteFile and the folder's generated text, for one listing at a time; records the
    folder's relations and path on the way."""

    def __init__(
        self,
        *,
        writable: bool,
        listings: Listings,
        files: RemoteFiles,
        inodes: InodeTable,
        relations: Relations,
        paths: Paths,
    ) -> None:
        self._writable = writable
        self._listings = listings
        self._files = files
        self._inodes = inodes
        self._relations = relations
        self._paths = paths

    def make(
        self,
        folder: Node,
        found: list[Found],
        held: Listing | None,
        *,
        generated: str | None,
        text: Callable[[Mapping[str, Node], str | None], GeneratedText],
        block_ids: Iterable[str],
        sizes: Mapping[str, int] | None = None,
    ) -> Mapping[str, Node]:
        """Named, numbered nodes for what a listing found (fetched, or read back from disk)."""
        if not self._writable:  # read-only: a files property shows when it has files
            found = [f for f in found if f.kind is not Kind.FILES_PROPERTY or f.files]
        names = assign_names(
            [
                NameRequest(key=f.key, raw=f.raw_name, order=f.order, is_file=not f.kind.is_dir)
                for f in found
            ],
            reserved=(generated,) if generated else (),
        )
        previous = {n.key: n for n in held.children.values()} if held is not None else {}
        self._relations.record(folder.key, ((f.key, f.raw_name) for f in found), block_ids)
        children: dict[str, Node] = {}
        for f in found:
            before = previous.get(f.key)
            if before is not None and (
                f.kind is Kind.FILES_PROPERTY  # lists from this listing's data: always anew
                or (f.kind.is_dir and (before.mtime_s, before.ctime_s) != (f.mtime_s, f.ctime_s))
            ):
                self._listings.invalidate(f.key)  # edited in Notion: list it anew when opened
            remote = None
            if f.kind is Kind.FILE:
                assert f.file_key is not None and f.file_ref is not None and f.resolver
                known = sizes.get(f.file_key) if sizes is not None else None
                remote = self._files.remote_for(f.file_key, f.file_ref, f.resolver, known)
            # A file's inode follows its identity, so a replaced file is a new inode with a
            # page cache of its own; readers of the old version never see the new bytes.
            inode_key = f.key if f.file_key is None else f"{f.key}@{f.file_key}"
            node = Node(
                f.kind, f.key, names[f.key], self._inodes.inode(inode_key),
                object_id=f.object_id, ctime_s=f.ctime_s, mtime_s=f.mtime_s,
                notion_url=f.notion_url, role=f.role, remote=remote, files=f.files,
                owner_id=f.owner_id,
            )  # fmt: skip
            children[node.name] = node
        folder_path = self._paths.record(folder.key, children.values())
        if generated:
            key = f"{folder.key}/{generated}"
            children[generated] = Node(
                Kind.GENERATED, key, generated, self._inodes.inode(key),
                object_id=folder.object_id, ctime_s=folder.ctime_s, mtime_s=folder.mtime_s,
                notion_url=folder.notion_url, text=text(children, folder_path),
            )  # fmt: skip
        return children
