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


def test_background_waits_for_a_full_bucket_and_never_spends_the_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(10.0, 5, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        assert bucket.acquire() == 0.0  # foreground: the burst
    with background():
        assert in_background()
        assert bucket.acquire(max_wait_s=0.0) is None  # the bucket is not full: not now
        waited = bucket.acquire()
    assert not in_background()
    assert waited is not None and abs(waited - 0.3) < 1e-6  # until the 3 slots had passed
    # Right after a background call a foreground call still has its burst.
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
