"""Folder listings by folder key: TTL freshness, stale while revalidating, one fetch at a time.

A listing is immutable once made; a new one replaces it whole under the table's lock, so a
reader sees the old listing or the new one, never a mix. Fetching runs outside every lock,
through one single flight per folder: callers that find a listing held while another caller
re-lists it get the held one at once (stale while revalidating); callers with nothing held
join the fetch, each bounded by the deadline.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import priority
from .errors import ApiError, NetworkError, NotFoundError, ServerError
from .flight import SingleFlight
from .nodes import Node

__all__ = ["Listing", "Listings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listing:
    """One folder's contents as one fetch saw them."""

    children: Mapping[str, Node]  # name -> node, in listing order
    listed_at: float  # clock time of the fetch; -inf once invalidated
    source: Any = None  # what the fetch brought that the folder's generated file renders


Fetch = Callable[[Node, "Listing | None"], tuple[Mapping[str, Node], Any]]
"""``fetch(folder, held)``: ``(children, source)`` of ``folder`` asked anew (``held`` is the
listing they replace)."""


class Listings:
    """The listing cache. Thread-safe; see the module docstring for the waiting rules."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl_s: float,
        deadline_s: float,
        clock: Callable[[], float] = time.monotonic,
        background: Callable[[Callable[[], object]], object] | None = None,
    ) -> None:
        """``background(work)`` runs ``work`` off the caller's thread: given, a listing that
        merely outlived its TTL is answered at once and re-listed behind the answer (a change
        feed already drops the listings it knows changed, so the TTL is only a backstop);
        an invalidated listing is always waited for."""
        self._fetch = fetch
        self._background = background
        self._ttl_s = ttl_s
        self._deadline_s = deadline_s
        self._clock = clock
        self._lock = threading.Lock()  # guards _held only; never held across a fetch
        self._held: dict[str, Listing] = {}
        # Bumped by every invalidation: a fetch that started before one is stale on arrival.
        self._generation: dict[str, int] = {}
        # Bumped by every expiry: a fetch that started before one arrives expired.
        self._soft: dict[str, int] = {}
        # Fetches made as background work, by folder: promoted when a program joins one.
        self._running: dict[str, priority.Priority] = {}
        self._flights: SingleFlight[str, Listing] = SingleFlight(clock)

    def held(self, key: str) -> Listing | None:
        """The listing held for ``key``, fresh or stale; never fetches."""
        with self._lock:
            return self._held.get(key)

    def fresh(self, key: str) -> Listing | None:
        """The listing held for ``key`` if it is within the TTL."""
        listing = self.held(key)
        return listing if listing is not None and self._is_fresh(listing) else None

    def _is_fresh(self, listing: Listing) -> bool:
        return self._clock() - listing.listed_at < self._ttl_s

    def get(self, folder: Node) -> Listing:
        """A fresh listing of ``folder``; the held one while another caller re-lists it."""
        held = self.held(folder.key)
        if held is not None and (self._is_fresh(held) or self._flights.in_flight(folder.key)):
            return held
        if held is not None and self._background is not None and held.listed_at > float("-inf"):
            self._background(lambda: self._revalidate(folder))
            return held
        if not priority.in_background():
            self._promote(folder.key)  # a fetch under way in the background: now awaited
        return self._flights.run(
            folder.key,
            lambda: self._refresh(folder),
            timeout_s=self._deadline_s,
            what=f"listing of {folder.name or '/'!r}",
        )

    def _revalidate(self, folder: Node) -> None:
        try:
            self._flights.run(folder.key, lambda: self._refresh(folder))
        except Exception as exc:  # noqa: BLE001 (nobody waits for it: log, keep the held one)
            logger.info("background re-listing of %r failed: %s", folder.name, exc)

    def _promote(self, key: str) -> None:
        with self._lock:
            running = self._running.get(key)
        if running is not None:
            running.promote()

    def _refresh(self, folder: Node) -> Listing:
        work = priority.current()
        if work is None:
            return self._fetch_held(folder)
        with self._lock:
            self._running[folder.key] = work
        try:
            return self._fetch_held(folder)
        finally:
            with self._lock:
                if self._running.get(folder.key) is work:
                    del self._running[folder.key]

    def _fetch_held(self, folder: Node) -> Listing:
        with self._lock:
            held = self._held.get(folder.key)
            generation = self._generation.get(folder.key, 0)
            soft = self._soft.get(folder.key, 0)
        if held is not None and self._is_fresh(held):
            return held  # listed by the flight that landed just before this one started
        try:
            children, source = self._fetch(folder, held)
        except (NetworkError, ServerError, ApiError) as exc:
            if held is not None and not isinstance(exc, NotFoundError):
                logger.warning("serving stale listing of %r: Notion failed: %s", folder.name, exc)
                return held
            raise
        listing = Listing(children, self._clock(), source)
        with self._lock:
            if self._generation.get(folder.key, 0) != generation:
                # Invalidated while Notion was asked: the answer may predate the change.
                listing = dataclasses.replace(listing, listed_at=float("-inf"))
            elif self._soft.get(folder.key, 0) != soft:
                listing = dataclasses.replace(listing, listed_at=self._expired_at())
            self._held[folder.key] = listing
        return listing

    def seed(self, key: str, children: Mapping[str, Node], source: Any = None) -> None:
        """Hold ``children`` for ``key`` as if just listed (a listing read back from disk)."""
        with self._lock:
            self._held[key] = Listing(children, self._clock(), source)

    def expire(self, key: str) -> None:
        """List ``key`` anew behind its next answer: the held listing still answers at once
        (a layer above it shows what changed) while a background fetch replaces it; a fetch
        already under way may predate the change, so what it brings is expired too. Without
        background work this is ``invalidate``."""
        if self._background is None:
            self.invalidate(key)
            return
        with self._lock:
            self._soft[key] = self._soft.get(key, 0) + 1
            listing = self._held.get(key)
            if listing is not None and listing.listed_at > float("-inf"):
                self._held[key] = dataclasses.replace(listing, listed_at=self._expired_at())

    def _expired_at(self) -> float:
        return self._clock() - self._ttl_s - 1.0

    def invalidate(self, key: str) -> None:
        """List ``key`` anew on its next access (the held listing still answers meanwhile)."""
        with self._lock:
            self._generation[key] = self._generation.get(key, 0) + 1
            listing = self._held.get(key)
            if listing is not None:
                self._held[key] = dataclasses.replace(listing, listed_at=float("-inf"))
