"""Listings: TTL freshness, stale while revalidating, one fetch per folder, stale on failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from notionfs.errors import DeadlineExceeded, NotFoundError, ServerError
from notionfs.listings import Listing, Listings
from notionfs.nodes import Kind, Node

FOLDER = Node(Kind.PAGE, "page:1", "Folder", 2, object_id="1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Counts fetches; can block until released, or fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: threading.Event | None = None
        self.error: Exception | None = None
        self.started = threading.Event()

    def __call__(self, folder: Node, held: Listing | None) -> tuple[Mapping[str, Node], Any]:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            self.gate.wait(5)
        if self.error is not None:
            raise self.error
        child = Node(Kind.FILE, f"{folder.key}/f{self.calls}", f"f{self.calls}", 10 + self.calls)
        return {child.name: child}, {"fetch": self.calls}


def _listings(fetch: Fetcher, clock: Clock, deadline_s: float = 5.0) -> Listings:
    return Listings(fetch, ttl_s=60.0, deadline_s=deadline_s, clock=clock)


def test_fresh_listing_costs_no_fetch_and_expires_after_the_ttl() -> None:
    fetch, clock = Fetcher(), Clock()
    listings = _listings(fetch, clock)
    first = listings.get(FOLDER)
    assert list(first.children) == ["f1"] and first.source == {"fetch": 1}
    clock.now += 59
    assert listings.get(FOLDER) is first
    assert fetch.calls == 1
    clock.now += 2
    assert list(listings.get(FOLDER).children) == ["f2"]
    assert fetch.calls == 2


def test_invalidate_relists_on_next_access_but_keeps_answering_meanwhile() -> None:
    fetch, clock = Fetcher(), Clock()
    listings = _listings(fetch, clock)
    listings.get(FOLDER)
    listings.invalidate(FOLDER.key)
    assert listings.fresh(FOLDER.key) is None
    held = listings.held(FOLDER.key)
    assert held is not None and list(held.children) == ["f1"]
    assert list(listings.get(FOLDER).children) == ["f2"]


def test_stale_while_revalidating_answers_at_once() -> None:
    fetch, clock = Fetcher(), Clock()
    listings = _listings(fetch, clock)
    listings.get(FOLDER)
    clock.now += 120
    fetch.gate = threading.Event()
    fetch.started.clear()
    relister = threading.Thread(target=listings.get, args=(FOLDER,), daemon=True)
    relister.start()
    assert fetch.started.wait(5)
    started = time.monotonic()
    answer = listings.get(FOLDER)  # while the re-list waits on "Notion"
    assert time.monotonic() - started < 1
    assert list(answer.children) == ["f1"]
    fetch.gate.set()
    relister.join(5)
    assert fetch.calls == 2
    assert list(listings.get(FOLDER).children) == ["f2"]


def test_concurrent_first_listings_share_one_fetch() -> None:
    fetch, clock = Fetcher(), Clock()
    fetch.gate = threading.Event()
    listings = _listings(fetch, clock)
    results: list[Listing] = []
    threads = [
        threading.Thread(target=lambda: results.append(listings.get(FOLDER)), daemon=True)
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    assert fetch.started.wait(5)
    time.sleep(0.1)
    fetch.gate.set()
    for thread in threads:
        thread.join(5)
    assert fetch.calls == 1
    assert len(results) == 6 and all(r is results[0] for r in results)


def test_a_joiner_with_nothing_held_is_bounded_by_the_deadline() -> None:
    fetch, clock = Fetcher(), Clock()
    fetch.gate = threading.Event()
    listings = _listings(fetch, clock, deadline_s=0.2)
    owner = threading.Thread(target=listings.get, args=(FOLDER,), daemon=True)
    owner.start()
    assert fetch.started.wait(5)
    with pytest.raises(DeadlineExceeded):
        listings.get(FOLDER)
    fetch.gate.set()
    owner.join(5)


def test_notion_failing_serves_the_held_listing_but_not_found_does_not() -> None:
    fetch, clock = Fetcher(), Clock()
    listings = _listings(fetch, clock)
    first = listings.get(FOLDER)
    clock.now += 120
    fetch.error = ServerError(503, "service_unavailable", "down")
    assert listings.get(FOLDER) is first
    fetch.error = NotFoundError(404, "object_not_found", "gone")
    with pytest.raises(NotFoundError):
        listings.get(FOLDER)


def test_failure_with_nothing_held_raises() -> None:
    fetch, clock = Fetcher(), Clock()
    fetch.error = ServerError(503, "service_unavailable", "down")
    with pytest.raises(ServerError):
        _listings(fetch, clock).get(FOLDER)


def test_an_invalidation_during_a_fetch_leaves_its_answer_stale() -> None:
    fetch, clock = Fetcher(), Clock()
    listings = _listings(fetch, clock)
    fetch.gate = threading.Event()
    result: list[Listing] = []
    thread = threading.Thread(target=lambda: result.append(listings.get(FOLDER)), daemon=True)
    thread.start()
    assert fetch.started.wait(5)
    listings.invalidate(FOLDER.key)  # a change reported while Notion was being asked
    fetch.gate.set()
    thread.join(5)
    assert list(result[0].children) == ["f1"]  # the waiter gets what arrived ...
    assert listings.fresh(FOLDER.key) is None  # ... but it is not trusted for the next one
    assert list(listings.get(FOLDER).children) == ["f2"]


def test_expire_answers_at_once_and_relists_behind_the_answer() -> None:
    """After a write the layer above shows: the held listing answers, a background fetch
    replaces it; a fetch under way when it expired arrives expired. Without background
    work an expiry is an invalidation."""
    fetch, clock = Fetcher(), Clock()
    queued: list[Any] = []
    listings = Listings(fetch, ttl_s=60.0, deadline_s=5.0, clock=clock,
                        background=queued.append)
    listings.get(FOLDER)
    listings.expire(FOLDER.key)
    assert listings.fresh(FOLDER.key) is None
    assert list(listings.get(FOLDER).children) == ["f1"] and fetch.calls == 1
    assert len(queued) == 1  # the re-list, behind the answer
    fetch.gate = threading.Event()
    worker = threading.Thread(target=queued.pop(), daemon=True)
    worker.start()
    assert fetch.started.wait(5)
    listings.expire(FOLDER.key)  # written again while that fetch was under way
    fetch.gate.set()
    worker.join(5)
    assert fetch.calls == 2 and listings.fresh(FOLDER.key) is None
    assert list(listings.get(FOLDER).children) == ["f2"] and len(queued) == 1
    plain = _listings(Fetcher(), Clock())  # no background work: waited for, as invalidate
    plain.get(FOLDER)
    plain.expire(FOLDER.key)
    assert list(plain.get(FOLDER).children) == ["f2"]
