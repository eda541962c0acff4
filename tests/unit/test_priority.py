"""Calls a program waits on go first: background calls take only the budget nobody waits
for, never reserve slots ahead, never spend the burst."""

from __future__ import annotations

import threading
import time

from notionfs.nodes import Kind, Node
from notionfs.prefetch import Prefetcher
from notionfs.priority import background, in_background
from notionfs.ratelimit import TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_background_leaves_half_the_burst_to_foreground_calls() -> None:
    t = FakeTime()
    bucket = TokenBucket(10.0, 5, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0.0  # foreground: 3 of the burst of 5
    with background():
        assert in_background()
        assert bucket.acquire(max_wait_s=0.0) is None  # fewer than half left: not now
        waited = bucket.acquire()
    assert not in_background()
    assert waited is not None and abs(waited - 0.1) < 1e-6  # until 3 were back in the bucket
    # Right after a background call a foreground call still has half its burst.
    for _ in range(2):
        assert bucket.acquire() == 0.0


def test_a_waiting_call_never_sits_behind_more_than_one_background_call() -> None:
    bucket = TokenBucket(50.0, 1)  # one slot every 20 ms, no burst
    stop = threading.Event()
    background_calls = [0]

    def flood() -> None:
        with background():
            while not stop.is_set():
                bucket.acquire()
                background_calls[0] += 1

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    waits = []
    for _ in range(10):
        started = time.monotonic()
        bucket.acquire()
        waits.append(time.monotonic() - started)
        time.sleep(0.03)
    stop.set()
    for thread in threads:
        thread.join(2)
    assert background_calls[0] > 3  # the background had the spare budget
    # At most one interval (one background call) of waiting, with scheduling slack.
    assert max(waits) < 0.02 + 0.03, waits


def _folder(name: str) -> Node:
    return Node(Kind.PAGE, f"page:{name}", name, hash(name) & 0xFFFF)


def test_prefetch_lists_subfolders_breadth_first_within_its_budget() -> None:
    tree = {"top": ["a", "b", "c"], "a": ["a1", "a2"], "b": ["b1"], "c": [], "a1": ["deep"]}
    listed: list[str] = []
    done = threading.Event()

    def list_folder(node: Node) -> list[Node]:
        listed.append(node.name)
        if len(listed) >= 5:
            done.set()
        return [_folder(n) for n in tree.get(node.name, [])]

    prefetch = Prefetcher(list_folder, lambda node: False, max_folders=5, max_depth=2)
    try:
        prefetch.visited(_folder("top"), [_folder(n) for n in tree["top"]])
        assert done.wait(5)
        time.sleep(0.1)
        assert listed == ["a", "b", "c", "a1", "a2"]  # breadth first, 5 at most, depth 2
    finally:
        prefetch.stop()


def test_prefetch_drops_what_was_queued_for_a_place_left_behind() -> None:
    gate = threading.Event()
    listed: list[str] = []

    def list_folder(node: Node) -> list[Node]:
        listed.append(node.name)
        gate.wait(5)
        return []

    prefetch = Prefetcher(list_folder, lambda node: False, max_folders=10)
    try:
        prefetch.visited(_folder("one"), [_folder(n) for n in ("x1", "x2", "x3")])
        deadline = time.monotonic() + 5
        while not listed and time.monotonic() < deadline:
            time.sleep(0.01)
        prefetch.visited(_folder("two"), [_folder("y1")])  # the person went elsewhere
        gate.set()
        deadline = time.monotonic() + 5
        while "y1" not in listed and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert listed == ["x1", "y1"]
    finally:
        prefetch.stop()


def test_prefetch_skips_folders_already_listed_without_spending_budget() -> None:
    listed: list[str] = []
    prefetch = Prefetcher(lambda node: listed.append(node.name) or [],
                          lambda node: node.name.startswith("held"), max_folders=1)
    try:
        prefetch.visited(_folder("top"), [_folder("held1"), _folder("held2"), _folder("new")])
        deadline = time.monotonic() + 5
        while not listed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listed == ["new"]
    finally:
        prefetch.stop()


def test_going_into_a_subfolder_keeps_its_siblings_queued_behind_it() -> None:
    listed: list[str] = []
    gate = threading.Event()

    def list_folder(node: Node) -> list[Node]:
        listed.append(node.name)
        gate.wait(5)
        return []

    prefetch = Prefetcher(list_folder, lambda node: False, max_folders=10, max_depth=1)
    try:
        prefetch.visited(_folder("top"), [_folder(n) for n in ("a", "b", "c")])
        deadline = time.monotonic() + 5
        while not listed and time.monotonic() < deadline:
            time.sleep(0.01)
        prefetch.visited(_folder("a"), [_folder("a1")])  # into "a", still near
        gate.set()
        deadline = time.monotonic() + 5
        while len(listed) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listed == ["a", "a1", "b", "c"]
    finally:
        prefetch.stop()


def test_a_prefetch_a_program_comes_to_wait_on_is_promoted() -> None:
    from notionfs.listings import Listings

    started, promoted = threading.Event(), threading.Event()
    folder = _folder("x")

    def fetch(node: Node, held: object) -> tuple[dict[str, Node], None]:
        started.set()
        assert promoted.wait(5)
        return {}, None

    listings = Listings(fetch, ttl_s=60, deadline_s=5)
    thread = threading.Thread(
        target=lambda: _run_in_background(lambda: listings.get(folder)), daemon=True)
    thread.start()
    assert started.wait(5)
    with background() as work:
        assert in_background()
        # The program's own call joins the flight: the background work is promoted.
        joiner = threading.Thread(target=listings.get, args=(folder,), daemon=True)
        joiner.start()
        deadline = time.monotonic() + 5
        running = listings._running.get(folder.key)
        while running is not None and running.background and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running is not None and not running.background
        assert work.background  # only the fetch the program waits on is promoted
    promoted.set()
    thread.join(5)
    joiner.join(5)


def _run_in_background(work: object) -> None:
    with background():
        work()  # type: ignore[operator]


def test_background_calls_never_exceed_the_rate() -> None:
    """However background and foreground calls mix, no window of time lets more through
    than the bucket allows (a background token spent from the spare half of the burst
    must push the schedule forward, never back)."""
    t = FakeTime()
    bucket = TokenBucket(10.0, 10, clock=t.clock, sleep=t.sleep)
    start = t.now
    sent = []
    for i in range(200):
        if i % 3 == 0:
            bucket.acquire()
        else:
            with background():
                bucket.acquire()
        sent.append(t.now)
    elapsed = sent[-1] - start
    # 200 calls at 10/s with a burst of 10: at least (200 - 10) / 10 seconds.
    assert elapsed >= (200 - 10) / 10 - 1e-6, elapsed
