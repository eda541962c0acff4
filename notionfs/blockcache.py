"""Byte-bounded, thread-safe, single-flight block cache shared by every reader of a mount.

Files are cut into blocks of ``block_size_bytes``; the cache maps ``(file_key, block_index)``
to an *extent* (blockextents.py): one contiguous run of bytes inside that block (usually the
whole block; a probed head, a right-sized random read or the file's last block give shorter
ones). A read asks for the bytes it needs; a block that only partly covers them is extended
by fetching just the missing part, so a probed head is never fetched twice and a random
256 KiB read costs about 256 KiB, not a whole block.

Missing blocks are claimed as *flights* and fetched in *runs*, one ranged request for
contiguous blocks (blockruns.py): readers of a block being fetched join its flight. Bytes
being fetched are reserved against the capacity, so cached + in-flight bytes never exceed it
(a demand read larger than half the capacity is the one exception: it is served anyway).
The sequential read-ahead of each open handle is readahead.py.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from cachetools import LRUCache

from .blockextents import Extent, assemble, block_span, covers, merge, missing, tune_allocator
from .blockruns import Claim, Flight, RangeFetcher, Run, group_runs, pull_all

__all__ = ["BlockCache", "CacheStats", "RangeFetcher"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made. A hit or miss is one block looked up by a read."""

    hits: int
    misses: int
    fetches: int  # ranged requests made through the cache (one per run of blocks)
    bytes_fetched: int
    evictions: int  # blocks dropped to stay within capacity


class _LRU(LRUCache[tuple[str, int], Extent]):
    """cachetools' LRU, bounded in bytes, counting evictions."""

    def __init__(self, capacity_bytes: int) -> None:
        super().__init__(capacity_bytes, getsizeof=_extent_size)
        self.evictions = 0

    def popitem(self) -> tuple[tuple[str, int], Extent]:
        item = super().popitem()
        self.evictions += 1
        return item


def _extent_size(extent: Extent) -> int:
    return extent.size_bytes


def _claim_bytes(base: Extent | None, lo: int, hi: int) -> int:
    """What fetching ``[lo, hi)`` onto ``base`` may add to the cache: the base may be
    evicted while the bytes arrive, and come back merged with them."""
    return hi - lo + (base.size_bytes if base is not None else 0)


class BlockCache:
    """Blocks of many files, bounded in bytes, shared by every reader of a mount."""

    def __init__(self, capacity_bytes: int, block_size_bytes: int) -> None:
        if block_size_bytes <= 0 or capacity_bytes < block_size_bytes:
            raise ValueError("the cache must hold at least one block")
        self.capacity_bytes = capacity_bytes
        self.block_size_bytes = block_size_bytes
        tune_allocator()
        # Read-ahead may reserve at most this much, so demand reads always find room.
        self.prefetch_budget_bytes = capacity_bytes // 2
        self._lock = threading.Lock()
        self._lru = _LRU(capacity_bytes)
        self._flights: dict[tuple[str, int], Flight] = {}
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

    def bytes_due(self, key: str, first: int, end: int) -> int:
        """Bytes of blocks ``first`` .. ``end - 1`` of ``key`` being fetched and not yet
        received."""
        due = 0
        with self._lock:
            for index in range(first, end):
                flight = self._flights.get((key, index))
                if flight is not None and (run := flight.run) is not None:
                    due += run.due(flight.position)
        return due

    def unclaimed(self, key: str, offset: int, end: int) -> bool:
        """Whether some byte of ``[offset, end)`` is neither held nor being fetched: a read
        of it makes a request of its own."""
        block = self.block_size_bytes
        with self._lock:
            for index in range(offset // block, (end - 1) // block + 1):
                if (key, index) in self._flights:
                    continue
                if not covers(self._lru.get((key, index)), *block_span(index, offset, end, block)):
                    return True
        return False

    def held_until(self, key: str, offset: int, file_size: int, limit: int) -> int:
        """Where the bytes of ``key`` held without a gap from ``offset`` end (at most
        ``limit``); ``offset`` itself when its byte is not held."""
        block = self.block_size_bytes
        pos = offset
        with self._lock:
            while pos < min(limit, file_size):
                index = pos // block
                extent = self._lru.get((key, index))
                if extent is None or not extent.lo <= pos - index * block < extent.hi:
                    break
                pos = index * block + extent.hi
        return min(pos, limit, file_size)

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
        block = self.block_size_bytes
        first, last = offset // block, (end - 1) // block
        fetch_end = min(file_size, (last + 1) * block) if whole_blocks else end
        fetch_end = max(fetch_end, min(file_size, end + extra_bytes))
        got: dict[int, Extent] = {}
        pending = list(range(first, last + 1))
        first_pass = True
        while pending:
            runs, waits = self._plan(key, pending, (offset, end, fetch_end), got, fetch, first_pass)
            first_pass = False
            pull_all(runs)
            for index, flight in waits:
                flight.wait()
                if flight.error is not None:
                    raise flight.error
                if covers(flight.extent, *block_span(index, offset, end, block)):
                    assert flight.extent is not None
                    got[index] = flight.extent
            # Blocks whose flight fetched other bytes, or was abandoned, go round again.
            pending = [index for index in pending if index not in got]
        return assemble(got, first, last, offset, end, block)

    def read_cached(self, key: str, file_size: int, offset: int, end: int) -> bytes | None:
        """Like read when every byte asked for is cached now; None (and no fetch) otherwise.

        Never waits on the network: what a caller may do without a deadline.
        """
        end = min(end, file_size)
        if offset >= end:
            return b""
        block = self.block_size_bytes
        first, last = offset // block, (end - 1) // block
        got: dict[int, Extent] = {}
        with self._lock:
            for index in range(first, last + 1):
                extent = self._lru.get((key, index))
                if not covers(extent, *block_span(index, offset, end, block)):
                    return None
                assert extent is not None
                got[index] = extent
            self._hits += last - first + 1
        return assemble(got, first, last, offset, end, block)

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
        pull_all(self._claim_ahead(key, file_size, start, end, fetch, cancelled))

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
                self._insert(key, index, merge(self._lru.get((key, index)), lo, [piece]))

    def discard(self, key: str, first: int, end: int) -> None:
        """Forget blocks ``first`` .. ``end - 1`` of ``key`` (those in flight are kept)."""
        with self._lock:
            for index in range(first, end):
                if (key, index) not in self._flights:
                    self._lru.pop((key, index), None)

    # ---- internals ---------------------------------------------------------------------

    def _plan(
        self,
        key: str,
        pending: list[int],
        span: tuple[int, int, int],
        got: dict[int, Extent],
        fetch: RangeFetcher,
        count: bool,
    ) -> tuple[list[Run], list[tuple[int, Flight]]]:
        """Under the lock: take cached blocks, claim missing ones in runs for this thread.

        Returns the new runs and every flight to see through (joined ones and our own).
        ``span`` is (start, end, fetch_end): the bytes needed, and how far a fetch may go.
        """
        start, end, fetch_end = span
        block = self.block_size_bytes
        claims: list[Claim] = []
        waits: list[tuple[int, Flight]] = []
        with self._lock:
            for index in pending:
                lo, hi = block_span(index, start, end, block)
                extent = self._lru.get((key, index))
                if covers(extent, lo, hi):
                    assert extent is not None
                    got[index] = extent
                    self._hits += count
                    continue
                self._misses += count
                flight = self._flights.get((key, index))
                if flight is not None:
                    waits.append((index, flight))
                else:
                    lo, hi = missing(extent, lo, block_span(index, start, fetch_end, block)[1])
                    claim = self._claim(key, index, lo, hi, extent, prefetch=False)
                    claims.append(claim)
                    waits.append((index, claim.flight))
            if count and claims and claims[-1].index == pending[-1] and claims[-1].hi == block:
                claims += self._claim_beyond(key, pending[-1] + 1, fetch_end)
            runs = [Run(self, key, run, fetch, None) for run in group_runs(claims, block)]
        return runs, waits

    def _claim_beyond(self, key: str, index: int, fetch_end: int) -> list[Claim]:
        """Claims continuing a read's run past its last block, up to ``fetch_end``, while
        the blocks are wholly missing (lock held). Nobody waits for them: the run's puller
        brings them in on its way."""
        block = self.block_size_bytes
        claims: list[Claim] = []
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
    ) -> list[Run]:
        """Claim the missing blocks of ``[start, end)`` within the read-ahead budget."""
        end = min(end, file_size)
        if start >= end:
            return []
        claims: list[Claim] = []
        block = self.block_size_bytes
        with self._lock:
            for index in range(start // block, (end - 1) // block + 1):
                lo, hi = block_span(index, start, end, block)
                extent = self._lru.get((key, index))
                if covers(extent, lo, hi) or (key, index) in self._flights:
                    continue
                lo, hi = missing(extent, lo, hi)
                if self._prefetch_reserved_bytes + _claim_bytes(extent, lo, hi) > (
                    self.prefetch_budget_bytes
                ):
                    logger.debug("read-ahead of %s trimmed at block %d: budget spent", key, index)
                    break
                claims.append(self._claim(key, index, lo, hi, extent, prefetch=True))
            return [Run(self, key, run, fetch, cancelled) for run in group_runs(claims, block)]

    def _claim(
        self, key: str, index: int, lo: int, hi: int, base: Extent | None, *, prefetch: bool
    ) -> Claim:
        """Register a flight and reserve its bytes (lock held)."""
        flight = Flight()
        self._flights[(key, index)] = flight
        reserved = _claim_bytes(base, lo, hi)
        self._reserved_bytes += reserved
        if prefetch:
            self._prefetch_reserved_bytes += reserved
        self._make_room(0)
        return Claim(index, lo, hi, base, flight, prefetch, reserved)

    def _release(self, claim: Claim) -> None:
        self._reserved_bytes -= claim.reserved_bytes
        if claim.prefetch:
            self._prefetch_reserved_bytes -= claim.reserved_bytes

    def _make_room(self, size_bytes: int) -> None:
        """Evict least recently used blocks until ``size_bytes`` more fit (lock held)."""
        lru = self._lru
        while lru and lru.currsize + self._reserved_bytes + size_bytes > self.capacity_bytes:
            lru.popitem()

    def _insert(self, key: str, index: int, extent: Extent) -> None:
        self._lru.pop((key, index), None)
        self._make_room(extent.size_bytes)
        self._lru[(key, index)] = extent

    def _count_fetch(self) -> None:
        with self._lock:
            self._fetches += 1

    def _complete(self, key: str, claim: Claim, parts: list[bytes]) -> None:
        extent = merge(claim.base, claim.lo, parts)
        flight = claim.flight
        with self._lock:
            self._release(claim)
            self._insert(key, claim.index, extent)
            del self._flights[(key, claim.index)]
            flight.extent, flight.run = extent, None

    def _settle(
        self, key: str, claims: list[Claim], error: BaseException | None, received: int
    ) -> None:
        """End a run: flights it did not complete fail with ``error`` or are abandoned."""
        with self._lock:
            self._bytes_fetched += received
            for claim in claims:
                self._release(claim)
                del self._flights[(key, claim.index)]
                flight = claim.flight
                flight.error, flight.run = error, None
