"""Block cache and read-ahead: fetch counts, byte bounds, single flight, window policy."""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notionfs.blockcache import BlockCache
from notionfs.config import Settings
from notionfs.errors import FileHostError, ResponseMismatch
from notionfs.readahead import FileReader, ReadaheadPolicy, fill_level

KiB = 1024
MiB = 1024 * KiB


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes where a shifted slice would not match by accident."""
    unit = bytes((i * 7 + seed) % 251 for i in range(251 * 4))
    return (unit * (size // len(unit) + 1))[:size]


class FakeFetcher:
    """A RangeFetcher over ``data`` that records every call and the bytes it served."""

    def __init__(self, data: bytes, chunk_bytes: int = 64 * KiB) -> None:
        self.data = data
        self.chunk_bytes = chunk_bytes
        self.calls: list[tuple[int, int]] = []
        self.bytes_served = 0
        self.lock = threading.Lock()
        self.before: Callable[[int, int], None] | None = None  # hook run before serving

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        with self.lock:
            self.calls.append((start, end))
        if self.before is not None:
            self.before(start, end)
        for pos in range(start, end, self.chunk_bytes):
            chunk = self.data[pos : min(pos + self.chunk_bytes, end)]
            with self.lock:
                self.bytes_served += len(chunk)
            yield chunk


class InlineExecutor(concurrent.futures.Executor):
    """Runs read-ahead at once in the caller: request order becomes deterministic."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


class QueueExecutor(concurrent.futures.Executor):
    """Holds read-ahead tasks until the test runs them."""

    def __init__(self) -> None:
        self.tasks: list[tuple[concurrent.futures.Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.tasks.append((future, lambda: fn(*args, **kwargs)))
        return future

    def run_one(self) -> None:
        future, task = self.tasks.pop(0)
        if future.set_running_or_notify_cancel():
            future.set_result(task())

    def run_all(self) -> int:
        ran = 0
        for future, task in self.tasks:
            if future.set_running_or_notify_cancel():
                future.set_result(task())
                ran += 1
        self.tasks = []
        return ran


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for a state another thread reaches but cannot signal (it is blocked in the cache)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        block_size_bytes=1 * MiB,
        cache_size_bytes=256 * MiB,
        readahead_initial_bytes=1 * MiB,
        readahead_max_bytes=64 * MiB,
        max_request_bytes=16 * MiB,
    )
    base.update(overrides)
    return Settings(**base)


# ---- cache basics -------------------------------------------------------------------------


def test_read_fetches_once_then_hits() -> None:
    data = pattern(3 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), 0, 1 * MiB, fetch) == data[: 1 * MiB]
    assert cache.read("f", len(data), 100, 5000, fetch) == data[100:5000]
    stats = cache.stats()
    assert (stats.misses, stats.hits, stats.fetches) == (1, 1, 1)
    assert stats.bytes_fetched == 1 * MiB
    assert fetch.calls == [(0, 1 * MiB)]


def test_random_read_fetches_only_what_it_needs() -> None:
    data = pattern(4 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    start = 1 * MiB + 300 * KiB
    assert (
        cache.read("f", len(data), start, start + 128 * KiB, fetch)
        == data[start : start + 128 * KiB]
    )
    assert fetch.calls == [(start, start + 128 * KiB)]
    # The next bytes extend the same block without fetching the first ones again.
    nxt = start + 128 * KiB
    assert cache.read("f", len(data), nxt, nxt + 128 * KiB, fetch) == data[nxt : nxt + 128 * KiB]
    assert fetch.calls[-1] == (nxt, nxt + 128 * KiB)
    assert (
        cache.read("f", len(data), start, nxt + 128 * KiB, fetch) == data[start : nxt + 128 * KiB]
    )
    assert len(fetch.calls) == 2


def test_read_spanning_blocks_is_one_request_split_into_blocks() -> None:
    data = pattern(5 * MiB + 123)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data, chunk_bytes=300 * KiB)  # chunks straddle block boundaries
    assert cache.read("f", len(data), 0, len(data), fetch) == data
    assert fetch.calls == [(0, len(data))]
    for index in range(6):
        lo = index * MiB
        assert cache.read("f", len(data), lo, lo + MiB, fetch) == data[lo : lo + MiB]
    assert len(fetch.calls) == 1
    assert cache.stats().hits == 6


def test_reads_at_and_after_eof_are_empty_and_crossing_eof_is_short() -> None:
    data = pattern(MiB + 10)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), len(data), len(data) + 10, fetch) == b""
    assert cache.read("f", len(data), len(data) + 5, len(data) + 10, fetch) == b""
    assert cache.read("f", len(data), MiB, MiB + 4096, fetch) == data[MiB:]
    assert fetch.calls == [(MiB, MiB + 10)]


def test_read_cached_answers_only_from_memory() -> None:
    data = pattern(3 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    assert cache.read_cached("f", len(data), 0, 128 * KiB) is None
    cache.read("f", len(data), 0, 512 * KiB, fetch)
    assert cache.read_cached("f", len(data), 100, 300 * KiB) == data[100 : 300 * KiB]
    assert cache.read_cached("f", len(data), 256 * KiB, 768 * KiB) is None  # partly cached
    assert cache.read_cached("f", len(data), len(data), len(data) + 5) == b""
    assert fetch.calls == [(0, 512 * KiB)]
    assert cache.stats().hits == 1


def test_an_aligned_read_returns_the_received_piece_itself() -> None:
    data = pattern(2 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    received: list[bytes] = []

    def fetch(start: int, end: int) -> Iterator[bytes]:
        for pos in range(start, end, 128 * KiB):
            received.append(data[pos : pos + 128 * KiB])
            yield received[-1]

    cache.read("f", len(data), 0, 2 * MiB, fetch)
    answer = cache.read_cached("f", len(data), 384 * KiB, 512 * KiB)
    assert answer == data[384 * KiB : 512 * KiB]
    assert any(answer is piece for piece in received)  # no copy on the way out


def test_held_until_follows_the_bytes_held_without_a_gap() -> None:
    cache = BlockCache(capacity_bytes=16 * MiB, block_size_bytes=1 * MiB)
    cache.store("f", 0, b"a" * (2 * MiB))  # blocks 0 and 1
    cache.store("f", 2 * MiB, b"b" * (256 * KiB))  # the head of block 2
    cache.store("f", 4 * MiB, b"c" * MiB)  # block 4, after a gap
    size = 10 * MiB
    assert cache.held_until("f", 0, size, size) == 2 * MiB + 256 * KiB
    assert cache.held_until("f", 512 * KiB, size, 1 * MiB) == 1 * MiB  # at most the limit
    assert cache.held_until("f", 3 * MiB, size, size) == 3 * MiB  # not held: where it asked
    assert cache.held_until("f", 4 * MiB, size, size) == 5 * MiB
    assert cache.held_until("g", 0, size, size) == 0
    assert cache.bytes_due("f", 0, 10) == 0


def test_stored_head_is_reused_and_only_the_rest_is_fetched() -> None:
    data = pattern(3 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    cache.store("f", 0, data[: 128 * KiB])
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), 0, 64 * KiB, fetch) == data[: 64 * KiB]
    assert fetch.calls == []
    assert cache.read("f", len(data), 0, 2 * MiB, fetch) == data[: 2 * MiB]
    assert fetch.calls == [(128 * KiB, 2 * MiB)]


def test_keys_are_independent() -> None:
    a, b = pattern(MiB, 1), pattern(MiB, 2)
    cache = BlockCache(16 * MiB, 1 * MiB)
    assert cache.read("a", MiB, 0, MiB, FakeFetcher(a)) == a
    assert cache.read("b", MiB, 0, MiB, FakeFetcher(b)) == b
    assert cache.read("a", MiB, 0, MiB, FakeFetcher(b)) == a


# ---- bounds -------------------------------------------------------------------------------


def test_byte_bound_holds_with_evictions() -> None:
    data = pattern(20 * MiB)
    cache = BlockCache(4 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    seen: list[int] = []

    def check(start: int, end: int) -> None:
        seen.append(cache.cached_bytes + cache.reserved_bytes)

    fetch.before = check
    for index in range(20):
        assert (
            cache.read("f", len(data), index * MiB, (index + 1) * MiB, fetch)
            == data[index * MiB : (index + 1) * MiB]
        )
    assert max(seen) <= 4 * MiB
    assert cache.cached_bytes <= 4 * MiB
    assert cache.stats().evictions == 16
    # The oldest blocks are gone, the newest still there.
    cache.read("f", len(data), 19 * MiB, 20 * MiB, fetch)
    assert len(fetch.calls) == 20
    cache.read("f", len(data), 0, 1, fetch)
    assert len(fetch.calls) == 21


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["read", "prefetch", "store"]),
            st.integers(0, 12 * 64 * KiB),
            st.integers(1, 2 * 64 * KiB),  # demand reads up to half the capacity
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_sequence_returns_right_bytes_within_the_bound(
    ops: list[tuple[str, int, int]],
) -> None:
    block = 64 * KiB
    data = pattern(12 * block + 777)
    cache = BlockCache(4 * block, block)
    fetch = FakeFetcher(data, chunk_bytes=20_000)
    peaks: list[int] = []
    fetch.before = lambda s, e: peaks.append(cache.cached_bytes + cache.reserved_bytes)
    for op, offset, length in ops:
        end = offset + length
        if op == "read":
            assert cache.read("f", len(data), offset, end, fetch) == data[offset:end]
        elif op == "prefetch":
            cache.prefetch("f", len(data), offset, end, fetch)
        else:
            cache.store("f", offset, data[offset : min(end, len(data))])
        assert cache.cached_bytes <= 4 * block
        assert cache.reserved_bytes == 0
    assert all(peak <= 4 * block for peak in peaks)


def test_prefetch_stops_at_its_budget() -> None:
    data = pattern(16 * MiB)
    cache = BlockCache(8 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    cache.prefetch("f", len(data), 0, 16 * MiB, fetch)
    assert fetch.calls == [(0, 4 * MiB)]  # half the capacity
    assert cache.cached_bytes == 4 * MiB


# ---- single flight ------------------------------------------------------------------------


def run_threads(count: int, target: Callable[[], Any]) -> tuple[list[threading.Thread], list[Any]]:
    """Run ``target`` in ``count`` threads started together; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def body(slot: int) -> None:
        barrier.wait()
        try:
            results[slot] = target()
        except Exception as exc:
            results[slot] = exc

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    return threads, results


def test_concurrent_misses_of_one_block_cause_one_fetch() -> None:
    data = pattern(2 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    release = threading.Event()
    fetch.before = lambda s, e: release.wait(5)
    threads, results = run_threads(6, lambda: cache.read("f", len(data), 0, MiB, fetch))
    wait_until(lambda: cache.stats().misses == 6)  # every reader missed: one owns, five wait
    release.set()
    for t in threads:
        t.join(5)
    assert results == [data[:MiB]] * 6
    assert fetch.calls == [(0, MiB)]
    assert cache.stats().fetches == 1


def test_failed_fetch_reaches_every_waiter_and_is_not_cached() -> None:
    data = pattern(2 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    release = threading.Event()

    def failing(start: int, end: int) -> Iterator[bytes]:
        release.wait(5)
        raise FileHostError("host down", 503)
        yield b""  # pragma: no cover

    threads, results = run_threads(4, lambda: cache.read("f", len(data), 0, MiB, failing))
    wait_until(lambda: cache.stats().misses == 4)
    release.set()
    for t in threads:
        t.join(5)
    assert all(isinstance(r, FileHostError) for r in results)
    assert cache.stats().fetches == 1
    assert cache.cached_bytes == 0 and cache.reserved_bytes == 0
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), 0, MiB, fetch) == data[:MiB]
    assert fetch.calls == [(0, MiB)]


def test_short_body_is_an_error_but_completed_blocks_stay() -> None:
    data = pattern(3 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)

    def short(start: int, end: int) -> Iterator[bytes]:
        yield data[start : start + MiB + 5]

    with pytest.raises(ResponseMismatch):
        cache.read("f", len(data), 0, 3 * MiB, short)
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), 0, 3 * MiB, fetch) == data[: 3 * MiB]
    assert fetch.calls == [(MiB, 3 * MiB)]


def test_block_is_served_as_soon_as_it_arrives() -> None:
    data = pattern(4 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    first_done, go = threading.Event(), threading.Event()

    def slow(start: int, end: int) -> Iterator[bytes]:
        yield data[start : start + MiB]
        first_done.set()  # the cache asked for more: block 0 is complete
        go.wait(5)
        yield data[start + MiB : end]

    worker = threading.Thread(target=cache.prefetch, args=("f", len(data), 0, 4 * MiB, slow))
    worker.start()
    assert first_done.wait(5)
    assert cache.read("f", len(data), 0, MiB, FakeFetcher(b"")) == data[:MiB]
    go.set()
    worker.join(5)
    assert cache.read("f", len(data), 0, 4 * MiB, FakeFetcher(b"")) == data


def test_reader_waits_for_its_block_not_for_the_whole_run() -> None:
    data = pattern(4 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    go = threading.Event()

    def stalls_after_two_blocks(start: int, end: int) -> Iterator[bytes]:
        yield data[start : start + MiB]
        wait_until(lambda: cache.stats().misses == 1)  # the reader now waits on block 1
        yield data[start + MiB : start + 2 * MiB]
        go.wait(5)
        yield data[start + 2 * MiB : end]

    pump = threading.Thread(
        target=cache.prefetch, args=("f", len(data), 0, 4 * MiB, stalls_after_two_blocks)
    )
    pump.start()
    wait_until(lambda: cache.cached_bytes == MiB)  # block 0 is in, block 1 on its way
    got: list[bytes] = []
    reader = threading.Thread(
        target=lambda: got.append(cache.read("f", len(data), MiB, 2 * MiB, FakeFetcher(b"")))
    )
    reader.start()
    reader.join(5)
    stalled = pump.is_alive()
    go.set()
    pump.join(5)
    assert got == [data[MiB : 2 * MiB]]
    assert stalled  # the reader had its block while the rest of the run was still to come


def test_cancelled_prefetch_leaves_the_rest_to_readers() -> None:
    data = pattern(4 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    cancelled = threading.Event()

    def cancel_after_first(start: int, end: int) -> Iterator[bytes]:
        yield data[start : start + MiB]
        cancelled.set()
        yield data[start + MiB : start + MiB + 1000]

    cache.prefetch("f", len(data), 0, 4 * MiB, cancel_after_first, cancelled)
    assert cache.reserved_bytes == 0
    fetch = FakeFetcher(data)
    assert cache.read("f", len(data), 0, 4 * MiB, fetch) == data
    assert fetch.calls == [(MiB, 4 * MiB)]


# ---- read-ahead policy --------------------------------------------------------------------


def note(
    policy: ReadaheadPolicy, offset: int, end: int, size: int
) -> tuple[bool, list[tuple[int, int]]]:
    """A read, then every part the window holds now (a caller with room for all of them)."""
    seeked = policy.on_read(offset, end, size)
    parts: list[tuple[int, int]] = []
    while (part := policy.next_part(size)) is not None:
        parts.append(part)
    return seeked, parts


def sequential_parts(
    policy: ReadaheadPolicy, size: int, read_bytes: int, start: int = 0, stop: int | None = None
) -> list[tuple[int, int, int]]:
    """(read end, part start, part end) for every part handed out while reading in order
    from ``start`` to ``stop`` (the end of the file unless given)."""
    out: list[tuple[int, int, int]] = []
    for offset in range(start, size if stop is None else stop, read_bytes):
        end = min(offset + read_bytes, size)
        _, parts = note(policy, offset, end, size)
        out.extend((end, s, e) for s, e in parts)
    return out


def test_window_grows_with_the_run_up_to_the_cap_in_parts() -> None:
    size = 64 * MiB
    policy = ReadaheadPolicy(
        1 * MiB, 16 * MiB, tolerance_bytes=1 * MiB, parts=4, align_bytes=MiB
    )
    handed = sequential_parts(policy, size, 128 * KiB)
    # A run from the first byte is sequential after 256 KiB; the window then starts at the
    # next block (the reader fetches the rest of its own) and covers the file exactly once.
    assert handed[0][1] == 1 * MiB and handed[0][0] == 256 * KiB
    assert [(s, e) for _, s, e in handed] == list(
        zip([s for _, s, _ in handed], [s for _, s, _ in handed][1:] + [size], strict=True)
    )
    for read_end, start, end in handed:
        assert start % MiB == 0 and (end % MiB == 0 or end == size)
        # Ahead of the reader: at most eight times what it has read (counting at least the
        # initial size), and never past the cap.
        assert end - read_end <= min(8 * max(read_end, 1 * MiB), 16 * MiB)
    sizes = [e - s for _, s, e in handed]
    assert sizes[:3] == [2 * MiB] * 3  # the first window (8 x 1 MiB) in 4 parts at once
    assert max(sizes) == 4 * MiB  # the 16 MiB window in 4 parts
    assert sizes[-4:] == [1 * MiB] * 4  # what is left when the window reaches the end


def test_a_reader_the_read_ahead_keeps_ahead_of_gets_fewer_larger_parts() -> None:
    size = 256 * MiB

    def parts_after(waited: bool, part_bps: float | None) -> list[int]:
        policy = ReadaheadPolicy(
            1 * MiB, 64 * MiB, tolerance_bytes=1 * MiB, parts=8, align_bytes=MiB,
            max_part_bytes=16 * MiB,
        )
        sizes: list[int] = []
        for offset in range(0, 160 * MiB, 128 * KiB):
            # The first MiB always misses the cache; after it, ``waited`` says.
            policy.on_read(offset, offset + 128 * KiB, size, waited=waited or offset < MiB)
            if part_bps is not None and offset >= 8 * MiB:
                policy.part_done(part_bps, reader_bps=100e6)
            while (part := policy.next_part(size)) is not None:
                sizes.append(part[1] - part[0])
        return sizes

    waiting = parts_after(waited=True, part_bps=20e6)
    served_from_memory = parts_after(waited=False, part_bps=None)
    fast_host = parts_after(waited=True, part_bps=1e9)
    # A reader waiting on a slow host: the 64 MiB window in eighths, 8 MiB each.
    assert max(waiting) == 8 * MiB and waiting[-1] == 8 * MiB
    # The window kept ahead of the reader, or one request outrunning it: half-window parts
    # (up to max_request_bytes), fewer requests.
    for sizes in (served_from_memory, fast_host):
        assert sizes[:8] == [1 * MiB] * 8  # the first window goes out spread regardless
        assert sizes[-1] == 16 * MiB
        assert len(sizes) <= len(waiting) - 6
    for sizes in (waiting, served_from_memory, fast_host):
        assert sum(sizes) >= 159 * MiB  # everything the reader got to was read ahead


def test_fill_level_pours_the_rest_over_free_and_busy_slots() -> None:
    assert fill_level(8 * MiB, 8, []) == 1 * MiB
    # Two free slots beside busy ones holding 1, 3 and 9 MiB: 10 MiB more brings the free
    # ones and the first two busy ones to 3.5 MiB; the 9 MiB one gets none.
    assert fill_level(10 * MiB, 2, [9 * MiB, 1 * MiB, 3 * MiB]) == 3.5 * MiB
    assert fill_level(0, 1, [2 * MiB]) == 0


def test_the_last_parts_fill_the_slots_up_to_the_level_of_the_busy_ones() -> None:
    size = 40 * MiB
    policy = ReadaheadPolicy(
        1 * MiB, 64 * MiB, tolerance_bytes=1 * MiB, parts=8, align_bytes=MiB,
        max_part_bytes=16 * MiB,
    )
    for offset in range(0, 8 * MiB, 128 * KiB):  # the window (64 MiB) now reaches the end
        policy.on_read(offset, offset + 128 * KiB, size)
    ahead = 8 * MiB
    policy._ahead_until = ahead  # what earlier parts took; 32 MiB left to hand out
    # Five parts under way with 4 MiB each still to bring, two nearly done: the free slot
    # takes the level all eight reach, (32 + 20 + 0.2) / 8 = 6.5 MiB, not an eighth of the
    # rest (4 MiB), so it runs out with the slots busy now.
    busy = [4 * MiB] * 5 + [100 * KiB] * 2
    part = policy.next_part(size, under_way=lambda: busy)
    assert part == (ahead, ahead + 7 * MiB)  # 6.5 MiB to the nearest block
    # Nearly done, the two slots are about to take their share too: a part asked for now
    # leaves them what brings them to the same level.
    busy = [4 * MiB] * 5 + [7 * MiB]
    sizes = []
    while (part := policy.next_part(size, under_way=lambda: list(busy))) is not None:
        sizes.append(part[1] - part[0])
        busy.append(part[1] - part[0])
        if len(busy) == 8:  # the slots are full: the ones with least left come free
            busy[:] = sorted(busy)[2:]
    assert sum(sizes) == size - 15 * MiB
    # The old rule kept the first even share of the rest (32 / 8 = 4 MiB) to the end; now
    # the parts shrink as the rest runs out, the last one a single block.
    assert sizes[0] == 6 * MiB and sizes[-1] <= 2 * MiB
    assert sizes == sorted(sizes, reverse=True)


def test_a_waiting_reader_whose_next_bytes_landed_gets_parts_sized_for_where_it_goes() -> None:
    size = 256 * MiB

    def first_part_after_the_first_window(ready_until: int | None) -> tuple[int, int] | None:
        policy = ReadaheadPolicy(
            1 * MiB, 64 * MiB, tolerance_bytes=1 * MiB, parts=8, align_bytes=MiB,
            max_part_bytes=16 * MiB,
        )
        policy.on_read(0, 128 * KiB, size)
        policy.on_read(128 * KiB, 256 * KiB, size)
        first = []
        while (part := policy.next_part(size)) is not None:
            first.append(part)
        assert first[0] == (1 * MiB, 2 * MiB) and first[-1][1] == 8 * MiB  # 1 MiB parts
        policy.on_read(1 * MiB, 1 * MiB + 128 * KiB, size)  # waits on block 1
        return policy.next_part(size, ready_until=ready_until)

    # Blocks 1-7 landed while the reader waits at 1 MiB: it reads them next, so the free
    # slot takes a part of the window it will have there (8 x 8 MiB, in eighths).
    assert first_part_after_the_first_window(8 * MiB) == (8 * MiB, 16 * MiB)
    # Nothing after its read landed: sized from where it is (a window of 8 x 1.1 MiB, in
    # eighths rounded up to whole blocks).
    assert first_part_after_the_first_window(1 * MiB) == (8 * MiB, 10 * MiB)
    assert first_part_after_the_first_window(None) == (8 * MiB, 10 * MiB)


def test_nothing_is_read_ahead_before_a_run_is_long_enough() -> None:
    size = 64 * MiB
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, align_bytes=MiB)
    start = 10 * MiB  # not the head: a whole initial size before it counts as sequential
    for offset in range(start, start + 896 * KiB, 128 * KiB):
        assert note(policy, offset, offset + 128 * KiB, size) == (False, [])
    seeked, parts = note(policy, start + 896 * KiB, start + MiB, size)
    assert not seeked and parts and parts[0][0] == start + MiB
    # From the file's first byte a quarter of it is enough.
    head = ReadaheadPolicy(
        1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, parts=8, align_bytes=MiB
    )
    assert note(head, 0, 128 * KiB, size) == (False, [])
    assert note(head, 128 * KiB, 256 * KiB, size)[1][0] == (MiB, 2 * MiB)


def test_seek_resets_the_window() -> None:
    size = 64 * MiB
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, parts=8, align_bytes=MiB)
    handed = sequential_parts(policy, size, 128 * KiB, stop=8 * MiB)
    assert max(e - s for _, s, e in handed) == 4 * MiB  # the 32 MiB window in 8 parts
    # Past the window and its tolerance: a seek, and the next window starts small again.
    assert note(policy, 56 * MiB, 56 * MiB + 128 * KiB, size) == (True, [])
    handed = sequential_parts(policy, size, 128 * KiB, start=56 * MiB + 128 * KiB, stop=60 * MiB)
    assert handed[0] == (57 * MiB, 57 * MiB, 58 * MiB)


def test_out_of_order_reads_within_the_window_are_still_sequential() -> None:
    size = 32 * MiB
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, align_bytes=MiB)
    rng = random.Random(7)
    offsets = list(range(0, size, 128 * KiB))
    # The kernel's read-ahead arrives from several threads: shuffle within groups of four.
    shuffled: list[int] = []
    for i in range(0, len(offsets), 4):
        group = offsets[i : i + 4]
        rng.shuffle(group)
        shuffled.extend(group)
    ahead = 0
    for offset in shuffled:
        seeked, parts = note(policy, offset, offset + 128 * KiB, size)
        assert not seeked
        ahead += sum(e - s for s, e in parts)
    assert ahead == size - 1 * MiB  # one window, never restarted


def deep_kernel_readahead(size: int, seed: int = 11) -> list[int]:
    """128 KiB read offsets as a kernel reading far ahead delivers them from many threads:
    in order at first, then shuffled within 1 MiB, then within 4 MiB."""
    rng = random.Random(seed)
    offsets = list(range(0, size, 128 * KiB))
    out = offsets[:8]
    position = 8
    while position < len(offsets):
        group_len = 8 if position < 64 else 32
        group = offsets[position : position + group_len]
        rng.shuffle(group)
        out.extend(group)
        position += group_len
    return out


def test_deeper_kernel_readahead_is_tolerated_once_streaming() -> None:
    size = 96 * MiB
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, align_bytes=MiB)
    ahead = 0
    for offset in deep_kernel_readahead(size):
        seeked, parts = note(policy, offset, offset + 128 * KiB, size)
        assert not seeked, offset
        ahead += sum(e - s for s, e in parts)
    assert ahead == size - 1 * MiB  # one window, never restarted


def test_a_real_seek_while_streaming_is_still_a_seek() -> None:
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, align_bytes=MiB)
    sequential_parts(policy, 40 * MiB, 128 * KiB)
    assert note(policy, 20 * MiB, 20 * MiB + 128 * KiB, 64 * MiB) == (True, [])


def test_tail_read_then_head_read_reads_nothing_ahead() -> None:
    policy = ReadaheadPolicy(1 * MiB, 32 * MiB, tolerance_bytes=1 * MiB, align_bytes=MiB)
    size = 64 * MiB
    assert note(policy, size - 64 * KiB, size, size) == (False, [])
    assert note(policy, 0, 64 * KiB, size) == (True, [])


# ---- FileReader: the policy driving the cache ---------------------------------------------


def make_reader(
    data: bytes, executor: concurrent.futures.Executor, cache: BlockCache | None = None, **kw: Any
) -> tuple[FileReader, FakeFetcher, BlockCache]:
    cache = cache or BlockCache(256 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    reader = FileReader(cache, "f", len(data), fetch, settings(**kw), executor)
    return reader, fetch, cache


def test_sequential_reader_gets_a_growing_window_in_parts_and_right_bytes() -> None:
    data = pattern(40 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor())
    out = [reader.read(offset, 128 * KiB) for offset in range(0, len(data), 128 * KiB)]
    assert b"".join(out) == data
    # The first read fetches what it needs and as much again; at 256 KiB the run is called
    # sequential: the reader fetches the rest of its block, the window the blocks after it.
    assert fetch.calls[0] == (0, 256 * KiB)
    assert (256 * KiB, 1 * MiB) in fetch.calls
    parts = [(s, e) for s, e in fetch.calls if s >= MiB]
    assert [s for s, _ in parts] == [MiB] + [e for _, e in parts][:-1]  # in order, no gap
    assert parts[-1][1] == len(data)
    sizes = [e - s for s, e in parts]
    assert sizes[:2] == [1 * MiB, 1 * MiB]  # a small window first, in one-block parts
    assert max(sizes) >= 3 * MiB  # then larger parts as the window grows
    assert sizes[-1] == 1 * MiB  # and smaller ones again as the end nears
    assert len(fetch.calls) <= 30
    assert fetch.bytes_served == len(data)


def test_trying_the_cache_first_notes_each_read_once() -> None:
    """The FUSE adapter asks read_cached first and calls read only when that says None:
    the read-ahead must see each read once, exactly as with read alone."""
    data = pattern(40 * MiB)
    plain, plain_fetch, _ = make_reader(data, InlineExecutor())
    tried, tried_fetch, _ = make_reader(data, InlineExecutor())
    hits = 0
    for offset in range(0, len(data), 128 * KiB):
        expected = data[offset : offset + 128 * KiB]
        assert plain.read(offset, 128 * KiB) == expected
        cached = tried.read_cached(offset, 128 * KiB)
        hits += cached is not None
        assert (cached if cached is not None else tried.read(offset, 128 * KiB)) == expected
    assert tried_fetch.calls == plain_fetch.calls
    assert hits >= len(data) // (128 * KiB) - 16  # read-ahead keeps the reader in memory


def test_large_windows_are_split_into_parallel_requests() -> None:
    data = pattern(80 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor(), max_request_bytes=4 * MiB)
    for offset in range(0, len(data), 128 * KiB):
        reader.read(offset, 128 * KiB)
    assert max(end - start for start, end in fetch.calls) == 4 * MiB
    assert fetch.bytes_served == len(data)


def test_random_reads_cost_at_most_twice_the_bytes_read() -> None:
    data = pattern(64 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor())
    rng = random.Random(3)
    read_bytes = 0
    for _ in range(100):
        offset = rng.randrange(0, len(data) - 256 * KiB)
        # A 256 KiB read reaches the filesystem as two 128 KiB reads.
        assert reader.read(offset, 128 * KiB) == data[offset : offset + 128 * KiB]
        second = offset + 128 * KiB
        assert reader.read(second, 128 * KiB) == data[second : second + 128 * KiB]
        read_bytes += 256 * KiB
    assert fetch.bytes_served <= 2 * read_bytes


def test_a_random_read_smaller_than_the_kernel_s_largest_is_fetched_as_asked() -> None:
    """Under libfuse 3 a program's 256 KiB read arrives whole (the kernel reads up to 1 MiB):
    it is all the program wants there, so nothing past it is fetched."""
    data = pattern(64 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor(), kernel_read_bytes=1 * MiB)
    rng = random.Random(5)
    offsets = [rng.randrange(0, len(data) - 256 * KiB) for _ in range(50)]
    for offset in offsets:
        assert reader.read(offset, 256 * KiB) == data[offset : offset + 256 * KiB]
    assert len(fetch.calls) == len(offsets)
    assert fetch.bytes_served <= len(offsets) * 256 * KiB  # 1 byte fetched per byte read


def test_a_random_256k_read_costs_one_request() -> None:
    """FUSE delivers a program's 256 KiB read as two 128 KiB reads, the second only once
    the first is answered: the first fetch takes both halves."""
    data = pattern(64 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor())
    rng = random.Random(5)
    offsets = [rng.randrange(0, len(data) - 256 * KiB) for _ in range(50)]
    for offset in offsets:
        for half in (offset, offset + 128 * KiB):
            assert reader.read(half, 128 * KiB) == data[half : half + 128 * KiB]
    # About one request per read (a read landing beside an earlier one may need a second),
    # where right-sized fetches would make two.
    assert len(fetch.calls) < 1.2 * len(offsets)
    assert all(end - start <= 256 * KiB for start, end in fetch.calls)


def test_extra_bytes_stop_at_what_is_held() -> None:
    data = pattern(4 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    cache.read("f", len(data), 2 * MiB, 3 * MiB, fetch)
    # The read's fetch may run past its block, but not over block 2, which is cached.
    assert cache.read("f", len(data), MiB - 128 * KiB, MiB, fetch, extra_bytes=2 * MiB) == (
        data[MiB - 128 * KiB : MiB]
    )
    assert fetch.calls[-1] == (MiB - 128 * KiB, 2 * MiB)
    assert cache.read_cached("f", len(data), MiB, 2 * MiB) == data[MiB : 2 * MiB]


def test_tail_first_reader_fetches_little() -> None:
    data = pattern(64 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor())
    assert reader.read(len(data) - 64 * KiB, 64 * KiB) == data[-64 * KiB :]
    assert reader.read(len(data) - 4 * KiB, 64 * KiB) == data[-4 * KiB :]
    assert fetch.bytes_served <= 128 * KiB


def test_streaming_reader_frees_what_it_passed_but_keeps_the_head() -> None:
    data = pattern(48 * MiB)
    reader, fetch, cache = make_reader(data, InlineExecutor())
    cache.store("f", 0, data[: 128 * KiB])  # as a size probe leaves it
    for offset in range(0, len(data), 128 * KiB):
        assert reader.read(offset, 128 * KiB) == data[offset : offset + 128 * KiB]
    # The head, and what the out-of-order tolerance keeps behind the reader: not 48 MiB.
    assert cache.cached_bytes <= 10 * MiB
    calls = len(fetch.calls)
    assert reader.read(0, 64 * KiB) == data[: 64 * KiB]
    assert len(fetch.calls) == calls


def test_out_of_order_delivery_fetches_every_byte_once() -> None:
    data = pattern(64 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor())
    for offset in deep_kernel_readahead(len(data)):
        assert reader.read(offset, 128 * KiB) == data[offset : offset + 128 * KiB]
    assert fetch.bytes_served == len(data)  # nothing dropped behind is fetched again


def test_seek_cancels_queued_read_ahead() -> None:
    data = pattern(64 * MiB)
    executor = QueueExecutor()
    reader, fetch, _ = make_reader(data, executor)
    for offset in range(0, 2 * MiB, 128 * KiB):
        reader.read(offset, 128 * KiB)
    assert executor.tasks  # read-ahead queued
    reader.read(50 * MiB, 4096)  # a real seek
    assert executor.run_all() == 0
    assert all(end <= 2 * MiB or start >= 50 * MiB for start, end in fetch.calls)


def test_close_stops_read_ahead() -> None:
    data = pattern(8 * MiB)
    executor = QueueExecutor()
    reader, fetch, _ = make_reader(data, executor)
    for offset in range(0, MiB, 128 * KiB):
        reader.read(offset, 128 * KiB)
    reader.close()
    assert executor.run_all() == 0
    assert reader.read(0, 10) == data[:10]  # still readable through the cache


def test_readers_of_different_files_keep_their_own_windows() -> None:
    a, b = pattern(64 * MiB, 1), pattern(64 * MiB, 2)
    cache = BlockCache(256 * MiB, 1 * MiB)
    reader_a, fetch_a, _ = make_reader(a, InlineExecutor(), cache)
    fetch_b = FakeFetcher(b)
    reader_b = FileReader(cache, "g", len(b), fetch_b, settings(), InlineExecutor())
    for offset in range(0, 16 * MiB, 128 * KiB):
        assert reader_a.read(offset, 128 * KiB) == a[offset : offset + 128 * KiB]
        assert reader_b.read(offset, 128 * KiB) == b[offset : offset + 128 * KiB]
    # Read in lockstep, each file's window grows as if it were read alone.
    assert fetch_a.calls == fetch_b.calls
    assert max(end - start for start, end in fetch_a.calls) >= 2 * MiB


def test_read_ahead_is_capped_to_a_fraction_of_a_small_cache() -> None:
    data = pattern(64 * MiB)
    cache = BlockCache(16 * MiB, 1 * MiB)
    reader, fetch, _ = make_reader(data, InlineExecutor(), cache)
    peaks: list[int] = []
    fetch.before = lambda s, e: peaks.append(cache.cached_bytes + cache.reserved_bytes)
    for offset in range(0, len(data), 128 * KiB):
        assert reader.read(offset, 128 * KiB) == data[offset : offset + 128 * KiB]
    assert max(end - start for start, end in fetch.calls) <= 2 * MiB  # within capacity / 8
    assert max(peaks) <= 16 * MiB
    assert fetch.bytes_served == len(data)  # nothing evicted before it was read


def test_concurrent_sequential_readers_on_a_real_pool() -> None:
    data = pattern(24 * MiB)
    cache = BlockCache(64 * MiB, 1 * MiB)
    fetch = FakeFetcher(data)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        readers = [FileReader(cache, "f", len(data), fetch, settings(), pool) for _ in range(3)]

        def consume(reader: FileReader) -> bytes:
            parts = [reader.read(o, 128 * KiB) for o in range(0, len(data), 128 * KiB)]
            reader.close()
            return b"".join(parts)

        with concurrent.futures.ThreadPoolExecutor(3) as users:
            outs = list(users.map(consume, readers))
    assert outs == [data] * 3
    # Each streaming reader frees what it passed, so the others may fetch it again.
    assert fetch.bytes_served <= 3 * len(data)
    assert cache.reserved_bytes == 0


def test_first_read_is_one_request_with_nothing_ahead_of_it() -> None:
    """Time to first byte stays that of one request: no read-ahead is started before it."""
    data = pattern(64 * MiB)
    executor = QueueExecutor()
    reader, fetch, _ = make_reader(data, executor)
    assert reader.read(0, 128 * KiB) == data[: 128 * KiB]
    assert fetch.calls == [(0, 256 * KiB)]
    assert executor.tasks == []


def test_parts_in_flight_stay_within_fetch_workers_and_refill_as_they_end() -> None:
    data = pattern(64 * MiB)
    executor = QueueExecutor()
    reader, fetch, _ = make_reader(data, executor, fetch_workers=4)
    for offset in range(0, 4 * MiB, 128 * KiB):  # the window is 32 MiB by now
        reader.read(offset, 128 * KiB)
        assert len(executor.tasks) <= 4
    assert len(executor.tasks) == 4
    first_part = fetch.calls[-1]
    # A part that ends makes room for the next one at once, without waiting for a read.
    executor.run_one()
    assert len(executor.tasks) == 4
    assert fetch.calls[-1][0] >= first_part[0]
    executor.run_all()
    assert fetch.bytes_served <= len(data)


class GatedFetcher(FakeFetcher):
    """Holds requests from ``gate_from`` on until ``go`` is set; counts them in flight."""

    def __init__(self, data: bytes, gate_from: int) -> None:
        super().__init__(data)
        self.gate_from = gate_from
        self.go = threading.Event()
        self.in_flight = 0
        self.peak = 0

    def __call__(self, start: int, end: int) -> Iterator[bytes]:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            if start >= self.gate_from:
                self.go.wait(10)
            yield from super().__call__(start, end)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_sequential_reader_keeps_fetch_workers_parts_in_flight_on_a_real_pool() -> None:
    data = pattern(64 * MiB)
    cache = BlockCache(256 * MiB, 1 * MiB)
    fetch = GatedFetcher(data, gate_from=2 * MiB)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        reader = FileReader(cache, "f", len(data), fetch, settings(fetch_workers=4), pool)
        with concurrent.futures.ThreadPoolExecutor(1) as user:
            done = user.submit(
                lambda: [reader.read(o, 128 * KiB) for o in range(0, len(data), 128 * KiB)]
            )
            wait_until(lambda: fetch.in_flight >= 4)
            assert fetch.in_flight == 4  # a 16-thread pool, but this handle's 4 parts only
            fetch.go.set()
            assert b"".join(done.result(timeout=30)) == data
        reader.close()
    assert fetch.peak <= 4  # the parts and the reader's own fetches together
    assert cache.reserved_bytes == 0


def test_a_reader_asking_the_host_itself_takes_one_of_the_handle_s_slots() -> None:
    """A first 1 MiB read (libfuse 3) from a file whose head the size probe brought: the
    reader fetches the rest of its block and the read-ahead starts beside it; the two
    together keep within fetch_workers requests."""
    data = pattern(64 * MiB)
    cache = BlockCache(256 * MiB, 1 * MiB)
    cache.store("f", 0, data[: 128 * KiB])
    fetch = GatedFetcher(data, gate_from=0)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        reader = FileReader(
            cache, "f", len(data), fetch,
            settings(fetch_workers=4, kernel_read_bytes=1 * MiB), pool,
        )
        with concurrent.futures.ThreadPoolExecutor(1) as user:
            first = user.submit(reader.read, 0, 1 * MiB)
            wait_until(lambda: fetch.in_flight >= 4)
            time.sleep(0.2)  # room for a fifth, were one coming
            assert fetch.in_flight == 4
            fetch.go.set()
            assert first.result(timeout=30) == data[:MiB]
        reader.close()
    assert fetch.peak == 4
    assert (128 * KiB, 1 * MiB) in fetch.calls  # the reader's own was one of the four


def test_readers_on_a_small_cache_with_a_failing_host_never_stall() -> None:
    """Parts evicting each other from a cache a few windows large, a host failing one request
    in ten, reads in order, shuffled, random and a mapping's faults, all at once on a pool
    smaller than the parts wanted: every read ends (bytes or the host's error), and nothing
    stays claimed or reserved."""
    data = pattern(24 * MiB + 777)
    cache = BlockCache(8 * MiB, 1 * MiB)
    rng = random.Random(5)
    rng_lock = threading.Lock()

    def flaky(start: int, end: int) -> Iterator[bytes]:
        with rng_lock:
            fail = rng.random() < 0.1
        for pos in range(start, end, 128 * KiB):
            if fail and pos > start:
                raise FileHostError("connection reset", 503)
            time.sleep(0.0005)
            yield data[pos : min(pos + 128 * KiB, end)]

    orders = {
        "in order": list(range(0, len(data), 128 * KiB)),
        "shuffled": deep_kernel_readahead(len(data)),
        "random": [random.Random(1).randrange(len(data)) for _ in range(64)],
        "mapping": [o for o in range(0, len(data), 128 * KiB) if o % (3 * MiB) < MiB]
        + [random.Random(2).randrange(len(data)) for _ in range(16)],
    }
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(2) as pool, concurrent.futures.ThreadPoolExecutor(
        16
    ) as kernel:
        readers = {
            name: FileReader(cache, "f", len(data), flaky, settings(fetch_workers=4), pool)
            for name in orders
        }
        reads = [
            (name, offset, kernel.submit(readers[name].read, offset, 128 * KiB))
            for name, offsets in orders.items()
            for offset in offsets
        ]
        for _, offset, future in reads:
            try:
                assert future.result(timeout=20) == data[offset : offset + 128 * KiB]
            except FileHostError:
                failures += 1
        for reader in readers.values():
            reader.close()
    assert failures < len(reads) // 2
    assert cache.reserved_bytes == 0
    assert cache.cached_bytes <= 8 * MiB
