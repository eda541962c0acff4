"""How Notion reports changes (minute-rounded times, lagging search) and the edits tests make."""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

from notionfs.emulator.index import WorkspaceIndex, id_key
from notionfs.emulator.model import (
    Block,
    Database,
    DataSource,
    FileSpec,
    Node,
    Page,
    Workspace,
    file_block,
    rich_text,
)

__all__ = ["ChangeFeed", "Editor", "WorkspaceChanges"]

# Who makes an edit: a person in Notion's app, or another integration through the API.
Editor = Literal["person", "api"]

Searchable = Page | Database | DataSource
_Obj = TypeVar("_Obj", bound=Page | Database | DataSource | Block)

# Notion rounds these down to the minute on page, database and block objects (changelog,
# "Last edited and created time properties are now rounded to the nearest minute", 2021).
_ROUNDED_OBJECTS = frozenset({"page", "database", "data_source", "block"})
_TIME_KEYS = ("created_time", "last_edited_time")
# Pages and blocks end in "Z"; database times read "+00:00" (as Notion writes each).
_ISO_MS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d):\d\d\.\d{3}(Z|\+00:00)$")


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class _Pending:
    """An object search has not caught up with: until ``visible_at`` it shows ``indexed``
    (the object as it was before its first unseen change), or nothing for a new object."""

    visible_at: datetime
    indexed: Searchable | None


@dataclass
class ChangeFeed:
    """Switches for how the emulated Notion reports changes; all off by default.

    ``round_times_to_minute``: ``created_time`` and ``last_edited_time`` of pages, databases,
    data sources and blocks (and row properties of those types) are rounded down to the
    minute in every answer, as Notion does; search sorts by the rounded time, ties in a
    fixed order. ``search_lag_s``: an object created or edited through ``WorkspaceChanges``
    appears in search (new, or with its new title and time) only this many seconds later;
    ``GET`` and block children show the change at once (Notion: "Search indexing is not
    immediate"). ``api_edits_move_edit_time``: whether a content edit made through the API by
    another integration moves the page's ``last_edited_time`` (dvanoni/notero#571 reports it
    does not). All may be changed while the emulator runs. Edits are stamped, and search
    catches up, by the emulator's clock (``Emulator.clock``, bound with ``use_clock``).
    """

    round_times_to_minute: bool = False
    search_lag_s: float = 0.0
    api_edits_move_edit_time: bool = True
    _clock: Callable[[], datetime] = field(
        default=lambda: datetime.now(UTC), init=False, repr=False, compare=False
    )
    _pending: dict[str, _Pending] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def use_clock(self, clock: Callable[[], datetime]) -> None:
        """Read the time from ``clock`` (an aware datetime), as the rest of the emulator does."""
        self._clock = clock

    def now(self) -> datetime:
        """The time an edit made now gets (UTC, millisecond precision as Notion's)."""
        moment = self._clock().astimezone(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def shown(self, moment: datetime) -> datetime:
        """A stored time as answers carry it."""
        return floor_minute(moment) if self.round_times_to_minute else moment

    # ---- what search has indexed ----------------------------------------------------------

    def stage(self, obj: Searchable | Block, *, new: bool = False) -> None:
        """Call before ``obj`` changes (or once a ``new`` object has its id): search keeps
        showing the object as it is now (or nothing) for ``search_lag_s`` more seconds.
        A database's data sources with it; blocks, which search never shows, not at all."""
        if isinstance(obj, Block) or not obj.id:
            return  # not in search (an object without an id is not in the workspace yet)
        if isinstance(obj, Database):
            for source in obj.data_sources:
                self.stage(source, new=new)
        lag_s = self.search_lag_s
        key = _key(obj)
        indexed = None if new else _snapshot(obj)
        with self._lock:
            now = self.now()
            earlier = self._pending.get(key)
            if earlier is not None and now < earlier.visible_at:
                indexed = earlier.indexed  # search has not seen the previous change either
            if lag_s <= 0:
                self._pending.pop(key, None)
            else:
                self._pending[key] = _Pending(now + timedelta(seconds=lag_s), indexed)

    def search_view(self, obj: _Obj) -> _Obj | None:
        """``obj`` as search shows it now: itself, an older copy, or None (not indexed yet)."""
        key = _key(obj)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return obj
            if self.now() >= pending.visible_at:
                del self._pending[key]
                return obj
            return pending.indexed  # type: ignore[return-value]  # staged as obj's type

    def search_time(self, obj: Searchable | Block, index: WorkspaceIndex) -> datetime:
        """The ``last_edited_time`` search sorts ``obj`` (a ``search_view``) by and shows.
        A data source carries its database's, as search has indexed that database."""
        source: Page | Database | Block
        if isinstance(obj, DataSource):
            database = index.database_of(obj)
            seen = self.search_view(database)
            source = seen if isinstance(seen, Database) else database
        else:
            source = obj
        moment = source.last_edited_time
        assert isinstance(moment, datetime), "times are filled in by assign_ids"
        return self.shown(moment)

    def settled(self) -> bool:
        """Whether search shows every change made so far."""
        with self._lock:
            now = self.now()
            return all(now >= p.visible_at for p in self._pending.values())

    # ---- answers --------------------------------------------------------------------------

    def present(self, body: dict[str, Any]) -> dict[str, Any]:
        """An answer body as Notion words it: times rounded when the switch says so."""
        if self.round_times_to_minute:
            _round_times(body, inside=False)
        return body


def _key(obj: Searchable | Block) -> str:
    key = id_key(obj.id)
    if key is None:
        raise ValueError(f"object {obj!r} has no id yet (call refresh)")
    return key


def _snapshot(obj: Searchable) -> Searchable:
    """A copy that keeps the fields search shows (title, properties, time) as they are now."""
    snap = copy.copy(obj)
    if isinstance(snap, Page):
        snap.properties = dict(snap.properties)
    return snap


def _round_times(value: Any, *, inside: bool) -> None:
    """Round, in place, the times of every page/database/data source/block object in
    ``value`` and of the time properties within them."""
    if isinstance(value, list):
        for item in value:
            _round_times(item, inside=inside)
        return
    if not isinstance(value, dict):
        return
    inside = inside or value.get("object") in _ROUNDED_OBJECTS
    for key, item in value.items():
        if inside and key in _TIME_KEYS and isinstance(item, str):
            found = _ISO_MS.match(item)
            if found:
                value[key] = f"{found.group(1)}:00.000{found.group(2)}"
        elif isinstance(item, (dict, list)):
            _round_times(item, inside=inside)


# ---- the edits a person (or another integration) makes ------------------------------------


class _Host(Protocol):
    """The part of the emulator the edits need (see server.Emulator)."""

    workspace: Workspace
    feed: ChangeFeed

    @property
    def index(self) -> WorkspaceIndex: ...

    def editing(self) -> AbstractContextManager[None]: ...


Container = Page | Block | None  # None: the workspace's top level
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _edit(
    method: Callable[Concatenate[WorkspaceChanges, _P], _R],
) -> Callable[Concatenate[WorkspaceChanges, _P], _R]:
    """Run an edit alone (requests wait) and re-index after it, so no answer shows half of
    it (a child listed before it is indexed, a page in neither parent)."""

    @functools.wraps(method)
    def run(changes: WorkspaceChanges, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with changes._host.editing():
            return method(changes, *args, **kwargs)

    return run


class WorkspaceChanges:
    """Changes to the live workspace as Notion makes them: each stamps ``last_edited_time``
    where Notion would (by the emulator's clock, as ``feed``'s switches say), tells search,
    and re-indexes, while requests wait (``Emulator.editing``).

    A person's edit of a page's blocks moves that page's time, never its parent's; the same
    edit made through the API by another integration (``by="api"``) moves it only while
    ``feed.api_edits_move_edit_time``. Titles, moves and trash are page properties: they
    always move the page's own time. Adding, moving or trashing a page edits the content of
    the page (or block's page) it leaves or joins. A new row edits no other object.
    """

    def __init__(self, host: _Host) -> None:
        self._host = host

    @property
    def _feed(self) -> ChangeFeed:
        return self._host.feed

    # ---- one object ---------------------------------------------------------------------

    @_edit
    def touch(self, obj: Page | Database | Block) -> None:
        """Mark ``obj`` edited now; nothing else changes."""
        self._stamp(obj, self._feed.now())

    # ---- pages and databases ----------------------------------------------------------------

    @_edit
    def rename(self, obj: Page | Database, title: str) -> None:
        """A new title (a row's title property too; a database's only data source's name
        when it was the database's)."""
        self._stamp(obj, self._feed.now())
        if isinstance(obj, Page):
            source = self._host.index.data_source_of(obj)
            name = _title_property(source) if source is not None else None
            if name is not None and name in obj.properties:
                obj.properties[name] = title
        elif len(obj.data_sources) == 1 and obj.data_sources[0].title == obj.title:
            obj.data_sources[0].title = title
        obj.title = title

    @_edit
    def add_page(
        self,
        parent: Page | Block | None,
        title: str,
        children: Sequence[Node] = (),
        *,
        by: Editor = "person",
    ) -> Page:
        """A new page at the end of ``parent``'s children (None: top level)."""
        now = self._feed.now()
        page = Page(title, children=list(children))
        self._edit_content_of(parent, now, by)
        _children_of(self._host.workspace, parent).append(page)
        self._created(page, now)
        return page

    @_edit
    def move(
        self, obj: Page | Database, parent: Page | Block | None, *, by: Editor = "person"
    ) -> None:
        """Move a page (or inline database) to the end of ``parent``'s children."""
        index = self._host.index
        if parent is not None and (parent is obj or _is_under(index, parent, obj)):
            raise ValueError("a page cannot move into itself")
        old = index.entry_of(obj).parent
        now = self._feed.now()
        self._stamp(obj, now)
        self._edit_content_of(old, now, by)
        self._edit_content_of(parent, now, by)
        _remove(self._host.workspace, old, obj)
        _children_of(self._host.workspace, parent).append(obj)

    @_edit
    def trash(self, obj: Page | Database | Block, *, by: Editor = "person") -> None:
        """Move to the trash: gone from search and from its parent's children at once."""
        now = self._feed.now()
        self._stamp(obj, now)
        # A block is its page's content; a page is its parent's (a child_page block there).
        container = obj if isinstance(obj, Block) else self._host.index.entry_of(obj).parent
        self._edit_content_of(container, now, by)
        obj.in_trash = True

    @_edit
    def add_row(
        self,
        database: Database | DataSource,
        title: str,
        properties: dict[str, Any] | None = None,
    ) -> Page:
        """A new row (in the database's first data source unless one is given)."""
        source = database if isinstance(database, DataSource) else database.data_sources[0]
        row = Page(title, properties=dict(properties or {}))
        name = _title_property(source)
        if name is not None:
            row.properties.setdefault(name, title)
        source.rows.append(row)
        self._created(row, self._feed.now())
        return row

    # ---- a page's content ----------------------------------------------------------------

    @_edit
    def add_file(
        self,
        parent: Page | Block,
        spec: FileSpec,
        *,
        kind: str = "file",
        caption: str = "",
        by: Editor = "person",
    ) -> Block:
        """A new file block (kind: image, video, audio, file or pdf) at the end of
        ``parent`` (a page, or a toggle, column or callout in one)."""
        now = self._feed.now()
        block = file_block(kind, spec, caption=caption)
        self._edit_content_of(parent, now, by)
        parent.children.append(block)
        self._created(block, now)
        return block

    @_edit
    def replace_file(
        self, block: Block, data: bytes | FileSpec, *, by: Editor = "person"
    ) -> FileSpec:
        """A new file in a file block: a new file object, so a new URL path (same name and
        type unless a FileSpec is given)."""
        old = block.file
        if old is None:
            raise ValueError(f"block {block.id} holds no file")
        spec = data if isinstance(data, FileSpec) else FileSpec(
            old.name, data=data, content_type=old.content_type, external=old.external
        )
        now = self._feed.now()
        self._stamp(block, now)
        self._edit_content_of(block, now, by)
        block.file = spec
        return spec

    @_edit
    def edit_text(self, block: Block, text: str, *, by: Editor = "person") -> None:
        """New text in a text block (paragraph, heading, toggle, callout, list item...)."""
        if "rich_text" not in block.payload:
            raise ValueError(f"a {block.type} block holds no text")
        now = self._feed.now()
        self._stamp(block, now)
        self._edit_content_of(block, now, by)
        block.payload["rich_text"] = rich_text(text)

    # ---- stamping -----------------------------------------------------------------------

    def _stamp(self, obj: Page | Database | Block, now: datetime) -> None:
        """``obj`` edited at ``now``; search learns of it after the lag."""
        self._feed.stage(obj)
        obj.last_edited_time = now

    def _edit_content_of(self, container: object, now: datetime, by: Editor) -> None:
        """The blocks of ``container``'s page changed: that page is edited (unless another
        integration made the change and the switch says such edits leave no trace)."""
        if not isinstance(container, (Page, Block)):
            return  # the top level and a database's rows are no page's content
        if by == "api" and not self._feed.api_edits_move_edit_time:
            return
        owner = self._host.index.entry_of(container).owner
        self._stamp(owner, now)

    def _created(self, obj: Page | Block, now: datetime) -> None:
        """``obj`` and everything in it were made at ``now``; search learns of new pages
        and databases after the lag."""
        fresh = list(_subtree(obj))
        for item in fresh:
            if isinstance(item, (Page, Database, Block)):
                item.created_time = item.last_edited_time = now
        self._host.workspace.assign_ids()
        for item in fresh:
            if isinstance(item, (Page, Database)):
                self._feed.stage(item, new=True)


def _title_property(source: DataSource) -> str | None:
    return next((n for n, kind in source.properties.items() if kind == "title"), None)


def _children_of(workspace: Workspace, parent: Page | Block | None) -> list[Any]:
    return workspace.pages if parent is None else parent.children


def _remove(workspace: Workspace, parent: object, obj: Page | Database) -> None:
    if isinstance(parent, DataSource):
        parent.rows.remove(obj)  # type: ignore[arg-type]
    elif isinstance(parent, (Page, Block)):
        parent.children.remove(obj)
    else:
        workspace.pages.remove(obj)


def _is_under(index: WorkspaceIndex, node: Page | Block, ancestor: Page | Database) -> bool:
    parent: object = index.entry_of(node).parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = index.entry_of(parent).parent  # type: ignore[arg-type]
    return False


def _subtree(obj: Any) -> list[Any]:
    """``obj`` and every page, database, data source and block below it."""
    found = [obj]
    if isinstance(obj, (Page, Block)):
        for child in obj.children:
            found.extend(_subtree(child))
    elif isinstance(obj, Database):
        for source in obj.data_sources:
            found.append(source)
            for row in source.rows:
                found.extend(_subtree(row))
    return found
