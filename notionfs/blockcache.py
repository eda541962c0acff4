"""Byte-bounded, thread-safe, single-flight block cache, and the sequential read-ahead on it.

Files are cut into blocks of ``block_size_bytes``; the cache maps ``(file_key, block_index)``
to an *extent*: one contiguous run of bytes inside that block (usually the whole block; a
probed head, a right-sized random read or the file's last block give shorter ones). A read
asks for the bytes it needs; a block that only partly covers them is extended by fetching
just the missing part, so a probed head is never fetched twice and a random 256 KiB read
costs about 256 KiB, not a whole block.

Contiguous missing blocks are fetched with one ranged request (``RangeFetcher``), a *run*,
split into blocks as the bytes stream in: a reader waiting for the first block of a large
read-ahead does not wait for the last. An extent keeps the pieces as they arrived instead
of joining them: a read copies its bytes once, and no block-sized buffer is allocated
(fresh large allocations cost page faults on every block).

Each claimed block is a *flight*: other readers of that block join it (single flight), see
its error if it fails, and a failed block is never cached. Bytes being fetched are reserved
against the capacity, so cached + in-flight bytes never exceed it (a demand read larger
than half the capacity is the one exception: it is served anyway).

Why these flights are not flight.py's ``SingleFlight`` (the primitive every other single
flight uses): (1) claiming a block must be one step with looking it up in the LRU and
reserving its bytes, under the cache's one lock; a second table with its own lock would
split that step (two readers could both miss and fetch, or reservations overshoot the
capacity). (2) One ranged request settles many blocks, each as its bytes arrive; a
SingleFlight run has one key and one result at its end. (3) A run has no owner thread: when
its puller stops short (a reader that needed only the first blocks, a read-ahead cancelled
by a seek or a close), a waiter takes over the transfer, whereas a SingleFlight joiner
would wait for an owner that is gone. (4) A flight may settle with neither bytes nor error
(abandoned), and its readers plan again. And the read path is hot: a slotted object per
block, no per-block future and no second lock. Waiters here need no deadline of their own:
the FUSE adapter bounds the whole read.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import itertools
import logging
import platform
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cachetools import LRUCache

from .config import Settings
from .errors import NotionFSError, ResponseMismatch

__all__ = ["BlockCache", "CacheStats", "FileReader", "RangeFetcher", "ReadaheadPolicy"]

logger = logging.getLogger(__name__)

RangeFetcher = Callable[[int, int], Iterator[bytes]]
"""``fetch(start, end)`` yields the bytes of ``[start, end)`` in order, exactly that many."""

# Pieces smaller than this are joined while a block streams in: slow links deliver tiny ones.
_SMALL_PIECE_BYTES = 16 * 1024
# glibc's mallopt parameters (malloc.h) and the values the cache wants (see _tune_allocator).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 4 << 20
_TRIM_THRESHOLD_BYTES = 64 << 20
_allocator_tuned = False


def _tune_allocator() -> None:
    """Let glibc reuse the memory of freed pieces instead of mapping fresh pages for each.

    By default glibc maps every allocation of 128 KiB or more afresh (and unmaps it when
    freed) and hands a freed heap top back to the kernel at once, so a stream of received
    pieces costs a page fault per 4 KiB: about 40,000 per 256 MiB read, with the kernel
    zeroing each page. Served from the heap and kept there, freed pieces are reused. The
    cache bounds what is live; this only stops memory churning. Process-wide and harmless
    elsewhere; done once, on glibc only.
    """
    global _allocator_tuned
    if _allocator_tuned or platform.libc_ver()[0] != "glibc":
        return
    _allocator_tuned = True
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError) as exc:  # not the C library we thought
        logger.debug("allocator left as it is: %s", exc)


@dataclass(frozen=True, slots=True)
class _Extent:
    """Bytes ``[lo, hi)`` of one block (offsets inside the block), as a list of pieces."""

    lo: int
    parts: tuple[bytes, ...]
    ends: tuple[int, ...]  # running totals of the parts' lengths

    @property
    def size_bytes(self) -> int:
        return self.ends[-1]

    @property
    def hi(self) -> int:
        return self.lo + self.ends[-1]

    def views(self, lo: int, hi: int) -> Iterator[bytes | memoryview]:
        """Bytes ``[lo, hi)`` (inside this extent) without copying: whole parts or views."""
        pos, stop = lo - self.lo, hi - self.lo
        index = bisect_right(self.ends, pos)
        start = self.ends[index - 1] if index else 0
        while pos < stop:
            part, end = self.parts[index], self.ends[index]
            a, b = pos - start, min(stop, end) - start
            yield part if a == 0 and b == len(part) else memoryview(part)[a:b]
            pos, start, index = end, end, index + 1

    def pieces(self, lo: int, hi: int) -> list[bytes]:
        """Like views, as bytes: a part cut short is copied, so it does not pin the whole."""
        return [v if isinstance(v, bytes) else bytes(v) for v in self.views(lo, hi)]


def _extent(lo: int, parts: list[bytes]) -> _Extent:
    return _Extent(lo, tuple(parts), tuple(itertools.accumulate(len(p) for p in parts)))


class _Pieces:
    """One block's bytes as they stream in; tiny pieces are joined, large ones kept as is."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self._small: list[bytes] = []
        self._small_bytes = 0

    def add(self, piece: bytes) -> None:
        if len(piece) >= _SMALL_PIECE_BYTES:
            self._flush()
            self.parts.append(piece)
            return
        self._small.append(piece)
        self._small_bytes += len(piece)
        if self._small_bytes >= _SMALL_PIECE_BYTES:
            self._flush()

    def take(self) -> list[bytes]:
        self._flush()
        parts, self.parts = self.parts, []
        return parts

    def _flush(self) -> None:
        if self._small:
            self.parts.append(b"".join(self._small))
            self._small, self._small_bytes = [], 0


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made. A hit or miss is one block looked up by a read."""

    hits: int
    misses: int
    fetches: int  # ranged requests made through the cache (one per run of blocks)
    bytes_fetched: int
    evictions: int  # blocks dropped to stay within capacity


class _LRU(LRUCache[tuple[str, int], _Extent]):
    """cachetools' LRU, bounded in bytes, counting evictions."""

    def __init__(self, capacity_bytes: int) -> None:
        super().__init__(capacity_bytes, getsizeof=_extent_size)
        self.evictions = 0

    def popitem(self) -> tuple[tuple[str, int], _Extent]:
        item = super().popitem()
        self.evictions += 1
        return item


def _extent_size(extent: _Extent) -> int:
    return extent.size_bytes


class _Flight:
    """One block being fetched by a run; settled once: extent, error, or neither (abandoned)."""

    __slots__ = ("run", "position", "extent", "error")

    def __init__(self) -> None:
        self.run: _Run | None = None  # None once settled
        self.position = 0  # index of this block's claim in the run
        self.extent: _Extent | None = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Until settled: wait for the run's puller, or pull when nobody does."""
        run = self.run
        if run is not None:
            run.pull(self.position)


@dataclass(slots=True)
class _Claim:
    """A block a run fetches: bytes ``[lo, hi)`` of it, merged into ``base``."""

    index: int
    lo: int
    hi: int
    base: _Extent | None
    flight: _Flight
    prefetch: bool
    reserved_bytes: int  # what it adds to the cache at most: the new bytes and the base


def _is_set(event: threading.Event | None) -> bool:
    return event is not None and event.is_set()


def _claim_bytes(base: _Extent | None, lo: int, hi: int) -> int:
    """What fetching ``[lo, hi)`` onto ``base`` may add to the cache: the base may be
    evicted while the bytes arrive, and come back merged with them."""
    return hi - lo + (base.size_bytes if base is not None else 0)


def _covers(extent: _Extent | None, lo: int, hi: int) -> bool:
    return extent is not None and extent.lo <= lo and hi <= extent.hi


def _missing(extent: _Extent | None, lo: int, hi: int) -> tuple[int, int]:
    """The bytes to fetch so that ``extent`` merged with them covers ``[lo, hi)``."""
    if extent is None:
        return lo, hi
    have_lo, have_hi = extent.lo, extent.hi
    if have_lo <= lo <= have_hi:
        return have_hi, hi  # extend the cached bytes forward (a probed head, a sequential read)
    if lo < have_lo <= hi <= have_hi:
        return lo, have_lo  # extend them backward
    return lo, hi


def _merge(base: _Extent | None, lo: int, parts: list[bytes]) -> _Extent:
    """``parts`` (from ``lo``) joined with ``base`` when they touch; otherwise alone."""
    new = _extent(lo, parts)
    if base is None or new.hi < base.lo or lo > base.hi:
        return new  # disjoint: one extent per block, keep the newest
    merged = base.pieces(base.lo, lo) if base.lo < lo else []
    merged += parts
    if base.hi > new.hi:
        merged += base.pieces(new.hi, base.hi)
    return _extent(min(lo, base.lo), merged)


class _Run:
    """Adjacent claimed blocks fetched with one ranged request, split as the bytes arrive.

    One thread at a time receives (the *puller*: the reader that claimed the blocks, or a
    read-ahead worker). Others needing a block of the run wait for that block only, woken
    as each block completes; if the puller stops short of their block (it needed only the
    first ones, or was abandoned), a waiter becomes the puller: no block waits for nobody.
    """

    def __init__(
        self,
        cache: BlockCache,
        key: str,
        claims: list[_Claim],
        fetch: RangeFetcher,
        cancelled: threading.Event | None,
    ) -> None:
        self._cache = cache
        self._key = key
        self.claims = claims
        self._fetch = fetch
        self._cancelled = cancelled
        block = cache.block_size_bytes
        self.start = claims[0].index * block + claims[0].lo
        self.end = claims[-1].index * block + claims[-1].hi
        self._cond = threading.Condition()
        self._busy = False  # a puller is receiving
        self._abandon = False
        self._chunks: Iterator[bytes] | None = None
        self._pieces = _Pieces()
        self._have = 0  # bytes of the current claim received
        self._received = 0
        self.done = 0  # claims completed
        self.finished = False
        for position, claim in enumerate(claims):
            claim.flight.run, claim.flight.position = self, position

    def pull(self, position: int) -> None:
        """Until claim ``position`` is settled: wait for the puller, or be it.

        The puller's errors propagate to it; waiters find them on their flights.
        """
        with self._cond:
            while self._busy and not self._settled(position):
                self._cond.wait()
            if self._settled(position):
                return
            self._busy = True
        try:
            while not self._settled(position) and not _is_set(self._cancelled):
                self._step()
        finally:
            with self._cond:
                if (self._abandon or _is_set(self._cancelled)) and not self.finished:
                    self._finish(None)
                self._busy = False
                self._cond.notify_all()

    def abandon(self) -> None:
        """End the run, now or when its puller is done with the block it needs."""
        with self._cond:
            self._abandon = True
            if not self._busy and not self.finished:
                self._finish(None)
                self._cond.notify_all()

    def _settled(self, position: int) -> bool:
        return self.finished or self.done > position

    def _step(self) -> None:
        """Receive one chunk (as the puller)."""
        try:
            if self._chunks is None:
                self._cache._count_fetch()
                self._chunks = self._fetch(self.start, self.end)
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ResponseMismatch(
                    f"body ended after {self._received} of {self.end - self.start} bytes"
                )
            self._take(chunk)
        except BaseException as exc:
            if not self.finished:
                self._finish(exc)
            raise

    def _take(self, chunk: bytes) -> None:
        """Split a chunk into the run's blocks, completing each one as it fills."""
        chunk = chunk if type(chunk) is bytes else bytes(chunk)
        self._received += len(chunk)
        pos, claims = 0, self.claims
        while pos < len(chunk) and self.done < len(claims):
            claim = claims[self.done]
            want = claim.hi - claim.lo
            take = min(len(chunk) - pos, want - self._have)
            self._pieces.add(chunk if take == len(chunk) else chunk[pos : pos + take])
            pos, self._have = pos + take, self._have + take
            if self._have == want:
                self._cache._complete(self._key, claim, self._pieces.take())
                with self._cond:
                    self.done, self._have = self.done + 1, 0
                    self._cond.notify_all()
        if self.done == len(claims):
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        """Close the transfer and settle what it did not complete (by the puller, or idle)."""
        self.finished = True
        chunks, self._chunks = self._chunks, None
        try:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator closes its HTTP response
        finally:
            self._cache._settle(self._key, self.claims[self.done :], error, self._received)
            self.claims = []  # a finished run must not keep its blocks' bytes alive


class BlockCache:
    """Blocks of many files, bounded in bytes, shared by every reader of a mount."""

    def __init__(self, capacity_bytes: int, block_size_bytes: int) -> None:
        if block_size_bytes <= 0 or capacity_bytes < block_size_bytes:
            raise ValueError("the cache must hold at least one block")
        self.capacity_bytes = capacity_bytes
        self.block_size_bytes = block_size_bytes
        _tune_allocator()
        # Read-ahead may reserve at most this much, so demand reads always find room.
        self.prefetch_budget_bytes = capacity_bytes // 2
        self._lock = threading.Lock()
        self._lru = _LRU(capacity_bytes)
        self._flights: dict[tuple[str, int], _Flight] = {}
        self._reserved_bytes = 0
        self._prefetch_reserved_bytes = 0
        self._hits = 0
        self._misses = 0
        self._fetches = 0
        self._bytes_fetched = 0

    # ---- observation -------------------------------------------------------------------

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                fetches=self._fetches,
                bytes_fetched=self._bytes_fetched,
                evictions=self._lru.evictions,
            )

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    @property
    def reserved_bytes(self) -> int:
        """Bytes claimed by fetches not complete yet."""
        with self._lock:
            return self._reserved_bytes

    # ---- reads -------------------------------------------------------------------------

    def read(
        self,
        key: str,
        file_size: int,
        offset: int,
        end: int,
        fetch: RangeFetcher,
        *,
        whole_blocks: bool = False,
        extra_bytes: int = 0,
    ) -> bytes:
        """Bytes ``[offset, min(end, file_size))`` of file ``key``, fetching what is missing.

        ``whole_blocks``: a block that must be fetched is fetched to its end (the caller reads
        sequentially and will want the rest); otherwise only the bytes asked for are fetched.
        ``extra_bytes``: a fetch this read makes goes on that far past ``end``, in the same
        request, over bytes nobody holds (the caller expects to read them next).
        """
        end = min(end, file_size)
        if offset >= end:
            return b""
        first, last = offset // self.block_size_bytes, (end - 1) // self.block_size_bytes
        fetch_end = min(file_size, (last + 1) * self.block_size_bytes) if whole_blocks else end
        fetch_end = max(fetch_end, min(file_size, end + extra_bytes))
        got: dict[int, _Extent] = {}
        pending = list(range(first, last + 1))
        first_pass = True
        while pending:
            runs, waits = self._plan(key, pending, (offset, end, fetch_end), got, fetch, first_pass)
            first_pass = False
            self._pull_all(runs)
            for index, flight in waits:
                flight.wait()
                if flight.error is not None:
                    raise flight.error
                if _covers(flight.extent, *self._need(index, offset, end)):
                    assert flight.extent is not None
                    got[index] = flight.extent
            # Blocks whose flight fetched other bytes, or was abandoned, go round again.
            pending = [index for index in pending if index not in got]
        return self._assemble(got, first, last, offset, end)

    def read_cached(self, key: str, file_size: int, offset: int, end: int) -> bytes | None:
        """Like read when every byte asked for is cached now; None (and no fetch) otherwise.

        Never waits on the network: what a caller may do without a deadline.
        """
        end = min(end, file_size)
        if offset >= end:
            return b""
        block = self.block_size_bytes
        first, last = offset // block, (end - 1) // block
        got: dict[int, _Extent] = {}
        with self._lock:
            for index in range(first, last + 1):
                extent = self._lru.get((key, index))
                if not _covers(extent, *self._need(index, offset, end)):
                    return None
                assert extent is not None
                got[index] = extent
            self._hits += last - first + 1
        return self._assemble(got, first, last, offset, end)

    def prefetch(
        self,
        key: str,
        file_size: int,
        start: int,
        end: int,
        fetch: RangeFetcher,
        cancelled: threading.Event | None = None,
    ) -> None:
        """Bring ``[start, end)`` into the cache now; blocks cached or in flight are skipped.

        Best effort: claims stop at the read-ahead budget, and setting ``cancelled`` stops
        the transfer at its next chunk (blocks completed stay; readers fetch the rest).
        """
        self._pull_all(self._claim_ahead(key, file_size, start, end, fetch, cancelled))

    def store(self, key: str, offset: int, data: bytes) -> None:
        """Keep bytes fetched elsewhere (a size probe's head); blocks in flight are left alone."""
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            index, lo = divmod(offset + pos, self.block_size_bytes)
            take = min(len(data) - pos, self.block_size_bytes - lo)
            piece = bytes(view[pos : pos + take]) if take < len(data) else data
            pos += take
            with self._lock:
                if (key, index) in self._flights:
                    continue
                self._insert(key, index, _merge(self._lru.get((key, index)), lo, [piece]))

    def discard(self, key: str, first: int, end: int) -> None:
        """Forget blocks ``first`` .. ``end - 1`` of ``key`` (those in flight are kept)."""
        with self._lock:
            for index in range(first, end):
                if (key, index) not in self._flights:
                    self._lru.pop((key, index), None)

    # ---- internals ---------------------------------------------------------------------

    def _need(self, index: int, start: int, end: int) -> tuple[int, int]:
        """The part of block ``index`` inside ``[start, end)``, relative to the block."""
        block_start = index * self.block_size_bytes
        return (
            max(start, block_start) - block_start,
            min(end, block_start + self.block_size_bytes) - block_start,
        )

    def _plan(
        self,
        key: str,
        pending: list[int],
        span: tuple[int, int, int],
        got: dict[int, _Extent],
        fetch: RangeFetcher,
        count: bool,
    ) -> tuple[list[_Run], list[tuple[int, _Flight]]]:
        """Under the lock: take cached blocks, claim missing ones in runs for this thread.

        Returns the new runs and every flight to see through (joined ones and our own).
        ``span`` is (start, end, fetch_end): the bytes needed, and how far a fetch may go.
        """
        start, end, fetch_end = span
        claims: list[_Claim] = []
        waits: list[tuple[int, _Flight]] = []
        with self._lock:
            for index in pending:
                lo, hi = self._need(index, start, end)
                extent = self._lru.get((key, index))
                if _covers(extent, lo, hi):
                    assert extent is not None
                    got[index] = extent
                    self._hits += count
                    continue
                self._misses += count
                flight = self._flights.get((key, index))
                if flight is not None:
                    waits.append((index, flight))
                else:
                    lo, hi = _missing(extent, lo, self._need(index, start, fetch_end)[1])
                    claim = self._claim(key, index, lo, hi, extent, prefetch=False)
                    claims.append(claim)
                    waits.append((index, claim.flight))
            block = self.block_size_bytes
            if count and claims and claims[-1].index == pending[-1] and claims[-1].hi == block:
                claims += self._claim_beyond(key, pending[-1] + 1, fetch_end)
            runs = [_Run(self, key, run, fetch, None) for run in self._runs(claims)]
        return runs, waits

    def _claim_beyond(self, key: str, index: int, fetch_end: int) -> list[_Claim]:
        """Claims continuing a read's run past its last block, up to ``fetch_end``, while
        the blocks are wholly missing (lock held). Nobody waits for them: the run's puller
        brings them in on its way."""
        block = self.block_size_bytes
        claims: list[_Claim] = []
        while index * block < fetch_end:
            if (key, index) in self._flights or (key, index) in self._lru:
                break
            hi = min(fetch_end - index * block, block)
            claims.append(self._claim(key, index, 0, hi, None, prefetch=False))
            if hi < block:
                break
            index += 1
        return claims

    def _claim_ahead(
        self,
        key: str,
        file_size: int,
        start: int,
        end: int,
        fetch: RangeFetcher,
        cancelled: threading.Event | None,
    ) -> list[_Run]:
        """Claim the missing blocks of ``[start, end)`` within the read-ahead budget."""
        end = min(end, file_size)
        if start >= end:
            return []
        claims: list[_Claim] = []
        block = self.block_size_bytes
        with self._lock:
            for index in range(start // block, (end - 1) // block + 1):
                lo, hi = self._need(index, start, end)
                extent = self._lru.get((key, index))
                if _covers(extent, lo, hi) or (key, index) in self._flights:
                    continue
                lo, hi = _missing(extent, lo, hi)
                if self._prefetch_reserved_bytes + _claim_bytes(extent, lo, hi) > (
                    self.prefetch_budget_bytes
                ):
                    logger.debug("read-ahead of %s trimmed at block %d: budget spent", key, index)
                    break
                claims.append(self._claim(key, index, lo, hi, extent, prefetch=True))
            return [_Run(self, key, run, fetch, cancelled) for run in self._runs(claims)]

    def _pull_all(self, runs: list[_Run]) -> None:
        """Pull each run to its end; if one fails, the rest are abandoned, not left claimed."""
        for number, run in enumerate(runs):
            try:
                run.pull(len(run.claims) - 1)
            except BaseException:
                for later in runs[number + 1 :]:
                    later.abandon()
                raise

    def _claim(
        self, key: str, index: int, lo: int, hi: int, base: _Extent | None, *, prefetch: bool
    ) -> _Claim:
        """Register a flight and reserve its bytes (lock held)."""
        flight = _Flight()
        self._flights[(key, index)] = flight
        reserved = _claim_bytes(base, lo, hi)
        self._reserved_bytes += reserved
        if prefetch:
            self._prefetch_reserved_bytes += reserved
        self._make_room(0)
        return _Claim(index, lo, hi, base, flight, prefetch, reserved)

    def _release(self, claim: _Claim) -> None:
        self._reserved_bytes -= claim.reserved_bytes
        if claim.prefetch:
            self._prefetch_reserved_bytes -= claim.reserved_bytes

    def _make_room(self, size_bytes: int) -> None:
        """Evict least recently used blocks until ``size_bytes`` more fit (lock held)."""
        lru = self._lru
        while lru and lru.currsize + self._reserved_bytes + size_bytes > self.capacity_bytes:
            lru.popitem()

    def _insert(self, key: str, index: int, extent: _Extent) -> None:
        self._lru.pop((key, index), None)
        self._make_room(extent.size_bytes)
        self._lru[(key, index)] = extent

    def _runs(self, claims: list[_Claim]) -> list[list[_Claim]]:
        """Group claims that one ranged request can serve: adjacent blocks, no gap between."""
        runs: list[list[_Claim]] = []
        for claim in claims:
            if runs:
                prev = runs[-1][-1]
                if (
                    prev.index + 1 == claim.index
                    and prev.hi == self.block_size_bytes
                    and claim.lo == 0
                ):
                    runs[-1].append(claim)
                    continue
            runs.append([claim])
        return runs

    def _count_fetch(self) -> None:
        with self._lock:
            self._fetches += 1

    def _complete(self, key: str, claim: _Claim, parts: list[bytes]) -> None:
        extent = _merge(claim.base, claim.lo, parts)
        flight = claim.flight
        with self._lock:
            self._release(claim)
            self._insert(key, claim.index, extent)
            del self._flights[(key, claim.index)]
            flight.extent, flight.run = extent, None

    def _settle(
        self, key: str, claims: list[_Claim], error: BaseException | None, received: int
    ) -> None:
        """End a run: flights it did not complete fail with ``error`` or are abandoned."""
        with self._lock:
            self._bytes_fetched += received
            for claim in claims:
                self._release(claim)
                del self._flights[(key, claim.index)]
                flight = claim.flight
                flight.error, flight.run = error, None

    def _assemble(
        self, got: dict[int, _Extent], first: int, last: int, offset: int, end: int
    ) -> bytes:
        """The answer, copied once (not at all when it is exactly one cached piece)."""
        views: list[bytes | memoryview] = []
        for index in range(first, last + 1):
            lo, hi = self._need(index, offset, end)
            views.extend(got[index].views(lo, hi))
        if len(views) == 1 and isinstance(views[0], bytes):
            return views[0]
        return b"".join(views)


class ReadaheadPolicy:
    """What one open handle should read ahead; pure bookkeeping, no I/O.

    Following mountpoint-s3's prefetcher: nothing is read ahead until a run of sequential
    reads has consumed ``initial_bytes`` (random readers get right-sized requests only);
    then chunks of ``initial_bytes``, doubling up to ``max_chunk_bytes``, are requested
    whenever the reader enters the newest chunk, so at most two chunks are ahead of it.
    Reads within a tolerance of the run (the kernel delivers its read-ahead from several
    threads, not always in order) continue it; any other read is a seek and starts a new
    run from the initial size. The tolerance is ``tolerance_bytes``, and while streaming it
    grows with the chunk size up to ``max_tolerance_bytes``: a kernel reading further ahead
    (a raised ``read_ahead_kb``) delivers its reads further out of order, and calling those
    seeks would restart the window and refetch what was dropped behind, again and again.
    """

    def __init__(
        self,
        initial_bytes: int,
        max_chunk_bytes: int,
        tolerance_bytes: int,
        max_tolerance_bytes: int = 8 << 20,
    ) -> None:
        self._initial_bytes = initial_bytes
        self._max_chunk_bytes = max(initial_bytes, max_chunk_bytes)
        self._tolerance_bytes = tolerance_bytes
        self._max_tolerance_bytes = max(tolerance_bytes, max_tolerance_bytes)
        self._run_start: int | None = None
        self._run_end = 0
        self._chunk_bytes = initial_bytes
        self._ahead_until: int | None = None  # end of what was requested ahead
        self._newest_chunk_start = 0

    @property
    def streaming(self) -> bool:
        """True once the current run is sequential enough to be read ahead."""
        return self._ahead_until is not None

    def left_behind(self) -> int | None:
        """While streaming: the offset before which the run will not read again."""
        return self._run_end - self._tolerance() if self.streaming else None

    def _tolerance(self) -> int:
        if not self.streaming:
            return self._tolerance_bytes
        return min(max(self._tolerance_bytes, self._chunk_bytes), self._max_tolerance_bytes)

    def on_read(self, offset: int, end: int, file_size: int) -> tuple[bool, list[tuple[int, int]]]:
        """Record a read of ``[offset, end)``: (was it a seek?, ranges to fetch ahead now)."""
        if self._run_start is not None and self._continues_run(offset):
            self._run_start = min(self._run_start, offset)
            self._run_end = max(self._run_end, end)
            return False, self._next_chunks(file_size)
        seeked = self._run_start is not None
        self._run_start, self._run_end = offset, end
        self._chunk_bytes = self._initial_bytes
        self._ahead_until = None
        return seeked, self._next_chunks(file_size)

    def _continues_run(self, offset: int) -> bool:
        horizon = max(self._run_end, self._ahead_until or 0)
        tolerance = self._tolerance()
        return self._run_end - tolerance <= offset <= horizon + tolerance

    def _next_chunks(self, file_size: int) -> list[tuple[int, int]]:
        assert self._run_start is not None
        if self._ahead_until is None:
            if self._run_end - self._run_start < self._initial_bytes:
                return []  # too short to call sequential
            self._ahead_until = self._newest_chunk_start = self._run_end
            entered_newest = True
        else:
            self._ahead_until = max(self._ahead_until, self._run_end)
            entered_newest = self._run_end > self._newest_chunk_start
        chunks: list[tuple[int, int]] = []
        while entered_newest and self._ahead_until < file_size:
            start = self._ahead_until
            self._ahead_until = min(start + self._chunk_bytes, file_size)
            self._newest_chunk_start = start
            chunks.append((start, self._ahead_until))
            self._chunk_bytes = min(self._chunk_bytes * 2, self._max_chunk_bytes)
            entered_newest = self._run_end > start
        return chunks


class FileReader:
    """One open handle: reads through the cache and keeps a read-ahead going when sequential."""

    def __init__(
        self,
        cache: BlockCache,
        key: str,
        file_size: int,
        fetch: RangeFetcher,
        settings: Settings,
        executor: concurrent.futures.Executor | None,
    ) -> None:
        self._cache = cache
        self._key = key
        self._size = file_size
        self._fetch = fetch
        self._executor = executor
        self._max_request_bytes = max(cache.block_size_bytes, settings.max_request_bytes)
        # Two chunks are ahead at most: together within readahead_max and a quarter of the cache.
        max_chunk_bytes = min(settings.readahead_max_bytes // 2, cache.capacity_bytes // 8)
        self._policy = ReadaheadPolicy(
            settings.readahead_initial_bytes,
            max_chunk_bytes,
            tolerance_bytes=settings.readahead_initial_bytes,
        )
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._pending: list[concurrent.futures.Future[None]] = []
        self._closed = False
        self._drop_from = 0  # first block of the current run not yet dropped behind it

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``; short at end of file, b"" at or after it."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        streaming = self._read_ahead(offset, end) if self._executor is not None else False
        # A sequential reader that overtakes its read-ahead fetches whole blocks, not 128 KiB.
        # Any other reader that must fetch takes as much again in the same request: FUSE cuts
        # a program's read into 128 KiB pieces and asks for the next only once this one is
        # answered, so a 256 KiB read costs one round trip instead of two (and random 128 KiB
        # reads at most twice their bytes).
        return self._cache.read(
            self._key, self._size, offset, end, self._fetch, whole_blocks=streaming,
            extra_bytes=0 if streaming else end - offset,
        )

    def read_cached(self, offset: int, size: int) -> bytes | None:
        """Like read when the cache holds every byte asked for; None otherwise, and then
        the read is not noted: the caller goes on to ``read``, which notes it once."""
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        data = self._cache.read_cached(self._key, self._size, offset, end)
        if data is not None and self._executor is not None:
            self._read_ahead(offset, end)
        return data

    def close(self) -> None:
        """Stop this handle's read-ahead; blocks already fetched stay cached."""
        with self._lock:
            self._closed = True
            self._cancel_pending()

    def _read_ahead(self, offset: int, end: int) -> bool:
        """Note the read, start any read-ahead it calls for; True if the run is sequential."""
        with self._lock:
            if self._closed:
                return False
            seeked, chunks = self._policy.on_read(offset, end, self._size)
            if seeked:
                self._cancel_pending()
                self._drop_from = offset // self._cache.block_size_bytes
            self._pending = [f for f in self._pending if not f.done()]
            for start, stop in chunks:
                for piece in range(start, stop, self._max_request_bytes):
                    self._submit(piece, min(piece + self._max_request_bytes, stop))
            self._drop_behind()
            return self._policy.streaming

    def _drop_behind(self) -> None:
        """Free blocks a streaming run has passed: their memory serves the next blocks.

        The kernel's page cache keeps what was read; keeping it here too would only grow
        the heap (fresh pages are costly) and evict blocks other readers still need. The
        file's first block stays: its header is what file managers come back for.
        """
        behind = self._policy.left_behind()
        if behind is None:
            return
        upto = behind // self._cache.block_size_bytes
        if upto > self._drop_from:
            self._cache.discard(self._key, max(self._drop_from, 1), upto)
            self._drop_from = upto

    def _submit(self, start: int, end: int) -> None:
        assert self._executor is not None
        try:
            future = self._executor.submit(self._prefetch, start, end, self._cancelled)
        except RuntimeError:  # the pool is shut down: the mount is going away
            return
        self._pending.append(future)

    def _cancel_pending(self) -> None:
        """Drop queued read-ahead and stop the running one at its next chunk."""
        self._cancelled.set()
        self._cancelled = threading.Event()
        for future in self._pending:
            future.cancel()
        self._pending = []

    def _prefetch(self, start: int, end: int, cancelled: threading.Event) -> None:
        # The reader may have got past the start while this waited in the queue: what it
        # left behind is not fetched again (it is dropped from the cache already).
        behind = self._policy.left_behind() or 0
        start = max(start, behind - behind % self._cache.block_size_bytes)
        if cancelled.is_set() or start >= end:
            return
        try:
            self._cache.prefetch(self._key, self._size, start, end, self._fetch, cancelled)
        except NotionFSError as exc:
            # The reader that needs these bytes fetches them itself and sees the error.
            logger.debug("read-ahead of %s [%d, %d) failed: %s", self._key, start, end, exc)
        except Exception:
            logger.exception("read-ahead of %s [%d, %d) failed", self._key, start, end)
