"""The change feed: what changed in Notion, from search sorted by last edit, newest first.

Every poll asks ``POST /v1/search`` sorted by ``last_edited_time`` descending and pages only
until it reaches edits older than the previous poll (less an overlap), so an idle workspace
costs one call per poll. Two facts of Notion's shape the rules:

- ``last_edited_time`` is rounded to the minute, so a second edit within the same minute
  carries the same time as the first: an object edited within ``rounding_window_s`` of a poll
  is reported again at every poll until that window has passed.
- search is eventually consistent: an edit can appear late, with its (older) edit time. Each
  poll therefore reaches back ``lag_window_s`` before the previous one, and reports an object
  whose edit time differs from the one last seen.

What search cannot show (an object moved to the trash simply disappears; content changed by
another integration may keep its edit time; an edit inside a child page does not move its
parent's) is left to the listings' backstop TTL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .client import NotionClient
from .errors import NotionFSError
from .models import MalformedResponse, parse_data_source, parse_database, parse_page
from .priority import background

__all__ = ["Change", "ChangeFeed", "FeedPoller", "SEARCH_NEWEST_FIRST"]

logger = logging.getLogger(__name__)

SEARCH_NEWEST_FIRST = {"sort": {"timestamp": "last_edited_time", "direction": "descending"}}


@dataclass(frozen=True)
class Change:
    """An object search reports as edited."""

    object_id: str
    kind: str  # "page" | "database" | "data_source"
    edited_at: float  # epoch seconds (as Notion rounds it)
    parent_type: str  # "workspace" | "page_id" | "block_id" | "database_id" | "data_source_id"
    parent_id: str | None
    database_id: str | None  # a row's database, or a data source's
    title: str | None = None  # as search shows it now

    @property
    def is_row(self) -> bool:
        return self.parent_type in ("database_id", "data_source_id")


def parse_change(item: Mapping[str, Any]) -> Change | None:
    """A search result as a Change; None for objects the mount does not show."""
    kind = item.get("object")
    if kind == "page":
        page = parse_page(item)
        parent = page.parent
        return Change(
            page.id, "page", page.last_edited_time.timestamp(), parent.type, parent.id,
            parent.database_id, page.title,
        )  # fmt: skip
    if kind == "database":
        database = parse_database(item)
        parent = database.parent
        return Change(
            database.id, "database", database.last_edited_time.timestamp(), parent.type,
            parent.id, None, database.title,
        )  # fmt: skip
    if kind == "data_source":
        source = parse_data_source(item)
        return Change(
            source.id, "data_source", source.last_edited_time.timestamp(), "database_id",
            source.parent.database_id, source.parent.database_id, source.name,
        )  # fmt: skip
    return None


class ChangeFeed:
    """One poll at a time (not thread-safe: FeedPoller is its one caller)."""

    def __init__(
        self,
        client: NotionClient,
        *,
        mark: float | None = None,
        lag_window_s: float = 300.0,
        rounding_window_s: float = 90.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._mark = mark  # wall time the last complete poll started; None before the first
        self._lag_window_s = lag_window_s
        self._rounding_window_s = rounding_window_s
        self._wall_clock = wall_clock
        self._seen: dict[str, float] = {}  # object id -> edit time last reported or passed

    @property
    def mark(self) -> float | None:
        """The high-water mark to keep across mounts: where the next poll resumes."""
        return self._mark

    def poll(self) -> list[Change]:
        """Objects edited since the previous poll (overlapping it, see the module docstring).
        Raises notionfs errors when Notion fails; the mark then stays where it was."""
        started = self._wall_clock()
        since = started if self._mark is None else self._mark
        cutoff = since - self._lag_window_s
        recent = started - self._rounding_window_s
        changes: list[Change] = []
        seen: dict[str, float] = {}
        for item in self._client.paginate("POST", "/v1/search", body=SEARCH_NEWEST_FIRST):
            try:
                change = parse_change(item)
            except MalformedResponse as exc:
                logger.info("change feed: skipping a search result: %s", exc)
                continue
            if change is None:
                continue
            if change.edited_at < cutoff:
                break  # older than anything this poll must look at: the rest is older still
            if self._seen.get(change.object_id) != change.edited_at or change.edited_at >= recent:
                changes.append(change)
            seen[change.object_id] = change.edited_at
        self._seen = seen
        self._mark = started
        return changes


class FeedPoller:
    """Runs a ChangeFeed every ``interval_s`` on its own thread and hands each poll's changes
    to ``apply``. Failures are logged once per outage; polling goes on by itself."""

    def __init__(
        self,
        feed: ChangeFeed,
        apply: Callable[[Iterable[Change]], object],
        interval_s: float,
        *,
        on_mark: Callable[[float], None] | None = None,
    ) -> None:
        self._feed = feed
        self._apply = apply
        self._interval_s = interval_s
        self._on_mark = on_mark
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notionfs-feed", daemon=True)
        self._failing = False
        self.polls = 0  # completed polls (for tests and the log)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def poll_now(self) -> list[Change]:
        """One poll on the caller's thread (the poller's own thread calls it too)."""
        changes = self._feed.poll()
        if changes:
            logger.info("change feed: %d changed: %s", len(changes),
                        ", ".join(c.object_id for c in changes[:5]))
            self._apply(changes)
        self.polls += 1
        mark = self._feed.mark
        if self._on_mark is not None and mark is not None:
            self._on_mark(mark)
        return changes

    def _run(self) -> None:
        # The first poll runs at once: a mount restored from disk learns what changed while
        # it was away before anyone waits on a stale folder.
        while True:
            with background():  # a poll never delays a call a program waits on
                self._poll_logged()
            if self._stop.wait(self._interval_s):
                return

    def _poll_logged(self) -> None:
        try:
            self.poll_now()
        except NotionFSError as exc:
            if not self._failing:
                logger.warning("change feed: poll failed (%s); trying again every %g s",
                               exc, self._interval_s)
            self._failing = True
            return
        except Exception:
            logger.exception("change feed: poll failed unexpectedly")
            return
        if self._failing:
            logger.info("change feed: Notion answers again; polling resumed")
            self._failing = False
