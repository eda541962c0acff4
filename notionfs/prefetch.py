"""The next click is already listed: while a person looks at a folder, its subfolders are
listed in the background, with the API budget nobody waits for.

Subfolders go in the order a file manager shows them, by name, breadth first. Going into
one of them keeps the rest of the queue behind the new folder's own subfolders (the person
may come back up to a sibling); going anywhere else drops it. Bounded: ``max_folders``
listings per folder visited, ``max_depth`` levels below it. Every call is a background
call (priority.py): a program waiting on the mount is never queued behind more than one of
them, and a folder being prefetched when the person opens it is promoted.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable

from .nodes import Kind, Node
from .priority import background

__all__ = ["Prefetcher"]

logger = logging.getLogger(__name__)

_FOLDERS = (Kind.PAGE, Kind.DATABASE, Kind.DATA_SOURCE)


class Prefetcher:
    """One background thread listing the subfolders of the folder in focus."""

    def __init__(
        self,
        list_folder: Callable[[Node], Iterable[Node]],
        is_held: Callable[[Node], bool],
        *,
        max_folders: int,
        max_depth: int = 2,
    ) -> None:
        self._list = list_folder
        self._is_held = is_held
        self._max_folders = max_folders
        self._max_depth = max_depth
        self._cond = threading.Condition()
        self._focus: str | None = None
        self._queue: collections.deque[tuple[Node, int]] = collections.deque()
        self._budget = 0
        self._near: set[str] = set()  # folders queued or listed for the current place
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="notionfs-prefetch", daemon=True)
        self._thread.start()
        self.listed = 0  # folders listed ahead (for tests and the log)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()

    def visited(self, folder: Node, children: Iterable[Node]) -> None:
        """A program listed ``folder``: it is the focus now; its subfolders go first."""
        with self._cond:
            if folder.key == self._focus:
                return  # a repeated listing of the same place: its queue stands
            within = folder.key in self._near
            self._focus = folder.key
            if not within:  # somewhere else: what was queued for the old place is dropped
                self._queue.clear()
                self._near.clear()
            mine = [(c, 1) for c in _by_name(children)]
            self._near.update(c.key for c, _ in mine)
            self._queue.extendleft(reversed(mine))
            self._budget = self._max_folders
            self._cond.notify_all()

    def _next(self) -> tuple[Node, int, str | None] | None:
        with self._cond:
            while not self._stopped and (not self._queue or self._budget <= 0):
                self._cond.wait()
            if self._stopped:
                return None
            node, depth = self._queue.popleft()
            self._budget -= 1
            return node, depth, self._focus

    def _run(self) -> None:
        while (task := self._next()) is not None:
            node, depth, focus = task
            if self._is_held(node):
                with self._cond:
                    self._budget += 1  # nothing to fetch: the budget stays for the next one
                continue
            try:
                with background():
                    children = list(self._list(node))
            except Exception as exc:  # noqa: BLE001 (nobody waits for it: log and go on)
                logger.debug("prefetch of %r failed: %s", node.name, exc)
                continue
            self.listed += 1
            if depth < self._max_depth:
                with self._cond:
                    if self._focus == focus:
                        deeper = [(c, depth + 1) for c in _by_name(children)]
                        self._near.update(c.key for c, _ in deeper)
                        self._queue.extend(deeper)


def _by_name(children: Iterable[Node]) -> list[Node]:
    """Subfolders in the order a file manager shows them (by name): the likeliest next
    click first."""
    return sorted((c for c in children if c.kind in _FOLDERS), key=lambda c: c.name.casefold())
